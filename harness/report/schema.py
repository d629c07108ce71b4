"""report.json's version and identity fields, its file form, and reading one back (a baseline, a side of `diff`).

In memory every cell carries every field (null when it does not apply). The file is kept small
without losing anything: a cell omits its null fields, an error's hint when it is its cause's fix,
a save error that its artifact entry holds, and the source's evaluate() figures that its
reference entry holds; an expected cell names its expectation by index into `expectations`
and a pre-flight verdict omits an empty `why`; one cell per line. expand() restores the
in-memory form.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.agent.protocol import CellKey
from harness.errors import UsageError
from harness.rundir import REPORT_FILES
from harness.untrusted import UnsafeFile, read_named

# Every cell carries every field (null when it does not apply): a stable contract.
CELL_DEFAULTS: dict[str, Any] = {
    "max_abs_diff": None, "max_rel_diff": None, "max_ulp": None, "bit_exact": None,
    "argmax_agreement": None, "evaluate": None, "error": None, "reason": None, "seconds": None,
    "predict_call": None, "signal": None, "exit_code": None, "expected": None, "expectation": None,
    "hint": None, "loader_options": None, "preflight": None, "stage": None, "cause": None, "route_status": None,
    "noise": None,
}
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # a baseline from before the upgrade is still compared cell by cell
KEY_FIELDS = CellKey._fields  # one cell's identity: source, target, model, format, loader
ALWAYS = (*KEY_FIELDS, "status", "route_status", "expected")  # cell fields written even when null
ONE_PER_LINE = ("cells", "tracebacks")
DIRECT_CALL = "model(x, training=False)"  # how most loads predict: a cell's predict_call when the file says none


def _compact_cell(cell: dict[str, Any], fixes: dict[str, Any], artifacts: dict[str, Any],
                  expectations: dict[str, int]) -> dict[str, Any]:
    out = {k: v for k, v in cell.items() if (v is not None or k in ALWAYS) and not (k == "predict_call"
                                                                                   and v == DIRECT_CALL)}
    if out.get("expectation") in expectations:
        out["expectation"] = expectations[out["expectation"]]
    preflight = out.get("preflight")
    if isinstance(preflight, dict) and preflight.get("why") == "":
        out["preflight"] = {k: v for k, v in preflight.items() if k != "why"}
    error = out.get("error")
    if isinstance(error, dict):
        error = {k: v for k, v in error.items() if v is not None}
        if error.get("hint") and error.get("hint") == fixes.get(str(cell.get("cause"))):
            del error["hint"]
        saved = artifacts.get(f"{cell['source']}/{cell['model']}/{cell['format']}", {}).get("save")
        out["error"] = None if cell.get("stage") == "save" and saved and saved.get("error") == cell["error"] else error
        if out["error"] is None:
            del out["error"]
    evaluate = out.get("evaluate")
    if isinstance(evaluate, dict):
        out["evaluate"] = {k: v for k, v in evaluate.items() if k != "source" and v is not None}
    return out


def dump(report: dict[str, Any]) -> str:
    """report.json's text: the compact file form, one cell and one traceback per line."""
    fixes = {c["name"]: c.get("fix") for c in report.get("causes", [])}
    artifacts = report.get("artifacts", {})
    expectations: dict[str, int] = {}
    for entry in report.get("expectations") or []:
        expectations.setdefault(entry["reason"], entry["index"])
    parts = []
    for key in sorted(report):
        value = report[key]
        if key == "cells":
            text = "[\n" + ",\n".join(json.dumps(_compact_cell(c, fixes, artifacts, expectations), sort_keys=True,
                                                  allow_nan=False, separators=(",", ":")) for c in value) + "\n]"
        elif key in ONE_PER_LINE:
            text = "{\n" + ",\n".join(f"{json.dumps(k)}:{json.dumps(v, allow_nan=False)}"
                                        for k, v in sorted(value.items())) + "\n}"
        else:
            text = json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))
        parts.append(f"{json.dumps(key)}:{text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def expand(report: dict[str, Any]) -> dict[str, Any]:
    """The in-memory form of a report read from its file (schema 2); a schema 1 report is returned as it is."""
    if report.get("schema_version") != SCHEMA_VERSION:
        return report
    fixes = {c["name"]: c.get("fix") for c in report.get("causes", [])}
    artifacts = report.get("artifacts", {})
    references = report.get("references", {})
    reasons = {e["index"]: e["reason"] for e in report.get("expectations") or []}
    for cell in report["cells"]:
        for key, default in CELL_DEFAULTS.items():
            cell.setdefault(key, default)
        if isinstance(cell["expectation"], int):
            cell["expectation"] = reasons.get(cell["expectation"])
        if isinstance(cell["preflight"], dict):
            cell["preflight"].setdefault("why", "")
        if cell["predict_call"] is None and (cell["status"] in ("pass", "drift") or cell["stage"] == "evaluate"):
            cell["predict_call"] = DIRECT_CALL
        saved = artifacts.get(f"{cell['source']}/{cell['model']}/{cell['format']}", {}).get("save")
        if cell["error"] is None and cell.get("stage") == "save" and saved:
            cell["error"] = dict(saved.get("error") or {}) or None
        if isinstance(cell["error"], dict):
            cell["error"] = {"type": None, "message": None, "hint": fixes.get(str(cell["cause"])), "traceback": None,
                             **cell["error"]}
        if isinstance(cell["evaluate"], dict):
            cell["evaluate"] = {"source": references.get(f"{cell['source']}/{cell['model']}"), "target": None,
                                "max_abs_diff": None, **cell["evaluate"]}
    return report


def cell_id(cell: dict[str, Any]) -> CellKey:
    """The cell's identity."""
    return CellKey.of(cell)


def _valid_cell(cell: object) -> bool:
    return isinstance(cell, dict) and all(isinstance(cell.get(key), str) for key in (*KEY_FIELDS, "status"))


MAX_REPORT = 512 << 20  # a report.json read back (a baseline, a side of diff); a large matrix's is a few MB
_FIGURE, _TEXT, _MAP = "a finite number", "a string", "a mapping"
# What expand(), regressions() and diff read of a cell, and the type each must have when it is not null.
_CELL_FIELDS = {**dict.fromkeys(("max_abs_diff", "max_rel_diff", "max_ulp", "argmax_agreement", "seconds"), _FIGURE),
                **dict.fromkeys(("stage", "cause", "reason", "route_status"), _TEXT),
                **dict.fromkeys(("error", "evaluate", "preflight"), _MAP), "bit_exact": "a boolean",
                "expected": "a boolean"}


def _is(value: object, kind: str) -> bool:
    if kind == _FIGURE:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    types: dict[str, type | tuple[type, ...]] = {_TEXT: str, _MAP: dict, "a boolean": bool}
    return isinstance(value, types[kind])


def _cell_problem(index: int, cell: dict[str, Any]) -> str | None:
    odd = next((k for k, kind in _CELL_FIELDS.items() if cell.get(k) is not None and not _is(cell[k], kind)), None)
    if odd is not None:
        return f"cells[{index}].{odd} is not {_CELL_FIELDS[odd]}"
    for key in ("error", "evaluate"):
        inner = cell.get(key) or {}
        name = "type" if key == "error" else "max_abs_diff"
        if inner.get(name) is not None and not _is(inner[name], _TEXT if key == "error" else _FIGURE):
            return f"cells[{index}].{key}.{name} is not {_TEXT if key == 'error' else _FIGURE}"
    if cell.get("expectation") is not None and not isinstance(cell["expectation"], (int, str)):
        return f"cells[{index}].expectation is neither an index nor a reason"
    return None


def report_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a report.json's content, as far as reading it back needs, or None."""
    cells = data.get("cells")
    if not isinstance(cells, list) or not all(_valid_cell(c) for c in cells):
        return f"'cells' is not a list of cells with {', '.join(KEY_FIELDS)} and status"
    tolerance = data.get("tolerance")
    if not isinstance(tolerance, dict) or not all(_is(tolerance.get(k), _FIGURE) for k in ("rtol", "atol")):
        return "'tolerance' is not a mapping with finite numbers rtol and atol"
    lists = {"causes": ("name",), "expectations": ("index", "reason")}
    for key, needs in lists.items():
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(e, dict) and all(k in e for k in needs) for e in value):
            return f"'{key}' is not a list of mappings with {' and '.join(needs)}"
    for key in ("artifacts", "references"):
        value = data.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, dict) or v is None for v in value.values()):
            return f"'{key}' is not a mapping of mappings"
    if any(not isinstance(v.get("save") or {}, dict) or not isinstance((v.get("save") or {}).get("error") or {}, dict)
           for v in (data.get("artifacts") or {}).values() if v):
        return "'artifacts' holds a save that is not a mapping with an error mapping"
    return next((p for i, c in enumerate(cells) if (p := _cell_problem(i, c))), None)


def load_report(path: Path, what: str = "report") -> dict[str, Any]:
    """A report.json (or a run directory holding one); UsageError naming the file when it cannot be used."""
    file = path / REPORT_FILES["json"] if path.is_dir() else path
    try:  # a regular file (a FIFO would block the read for ever, a device never end), of a bounded size
        data = json.loads(read_named(file, MAX_REPORT).decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{what} {file}: file not found") from None
    except UnsafeFile as exc:
        raise UsageError(f"{what} {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {file}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{what} {file}: not JSON ({str(exc)[:200]})") from None
    if not isinstance(data, dict) or data.get("schema_version") not in READABLE_SCHEMAS:
        found = data.get("schema_version") if isinstance(data, dict) else None
        raise UsageError(f"{what} {file}: not a harness report.json with schema_version "
                         f"{' or '.join(map(str, READABLE_SCHEMAS))} (found {repr(found)[:60]})")
    problem = report_problem(data)
    if problem:
        raise UsageError(f"{what} {file}: {problem}")
    return expand(data)
