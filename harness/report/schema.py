"""report.json's version and identity fields, and reading one back (a baseline, a side of `diff`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.agent.protocol import CellKey
from harness.errors import UsageError
from harness.rundir import REPORT_FILES

SCHEMA_VERSION = 1
KEY_FIELDS = CellKey._fields  # one cell's identity: source, target, model, format, loader


def cell_id(cell: dict[str, Any]) -> CellKey:
    """The cell's identity."""
    return CellKey.of(cell)


def _valid_cell(cell: object) -> bool:
    return isinstance(cell, dict) and all(isinstance(cell.get(key), str) for key in (*KEY_FIELDS, "status"))


def load_report(path: Path, what: str = "report") -> dict[str, Any]:
    """A report.json (or a run directory holding one); UsageError naming the file when it cannot be used."""
    file = path / REPORT_FILES["json"] if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{what} {file}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {file}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    except ValueError as exc:
        raise UsageError(f"{what} {file}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else None
        raise UsageError(f"{what} {file}: not a harness report.json with schema_version {SCHEMA_VERSION} "
                         f"(found {found!r})")
    cells = data.get("cells")
    if not isinstance(cells, list) or not all(_valid_cell(c) for c in cells):
        raise UsageError(f"{what} {file}: 'cells' is not a list of cells with {', '.join(KEY_FIELDS)} and status")
    tolerance = data.get("tolerance")
    if not isinstance(tolerance, dict) or not all(isinstance(tolerance.get(k), (int, float)) for k in ("rtol", "atol")):
        raise UsageError(f"{what} {file}: 'tolerance' is not a mapping with numbers rtol and atol")
    return data
