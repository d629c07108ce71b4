"""Build report.json (schema_version 2) from a run directory alone: no Docker needed.

Cells first (one per source, target, model, format, loader, decided from the records), then what
they mean: each route's status on its path (report/routes.py), the causes of the failures
(report/causes.py), a verdict per upgrade path, and the exit code (report/gate.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from harness import __version__
from harness.advisor import adaptation
from harness.advisor.answer import check_section
from harness.advisor.migrations import migrations
from harness.agent.protocol import (
    EXACT,
    REFERENCE,
    CellKey,
    ErrorInfo,
    LoadRecord,
    Manifest,
    ManifestEntry,
    ModelSpec,
    Preflight,
    SaveRecord,
    Tolerance,
    artifact_source,
)
from harness.cells import recorded_cells
from harness.compare import compare
from harness.hints import HintContext, match
from harness.matrix import Matrix
from harness.models import artifact_environments, home_environments, missing_reference, report_entry
from harness.report import crater, gate, releases, routes
from harness.report.causes import Tracebacks, causes, clean, normalised, shorten
from harness.report.diff import regressions, spurious
from harness.report.expect import mark_expected
from harness.report.schema import CELL_DEFAULTS, SCHEMA_VERSION
from harness.report.statuses import NOT_RUN, RAISED, STATUS_ORDER, all_expected, worst
from harness.rundir import RunDir
from harness.untrusted import UnsafeFile, unreadable

# Causes of drift without an error: the fix for each.
log = logging.getLogger(__name__)
R = TypeVar("R", LoadRecord, SaveRecord)
DRIFT_FIXES = {
    "predictions-drift": "the model loads but predicts differently: compare the weights (get_weights()) and layer "
                         "configs in both versions; a changed kernel or default is the usual cause",
    "evaluate-drift": "predictions match but evaluate() results differ: the compiled loss or metrics resolved "
                      "differently after loading; compile again with explicit loss and metric objects",
}


def _environment(run_dir: RunDir, env: dict[str, Any]) -> dict[str, Any]:
    versions = run_dir.read_versions(env["id"]) or {}
    return {
        "id": env["id"],
        "python": versions.get("python", env["spec"]["python"]),
        "tensorflow": versions.get("tensorflow", env["spec"]["tensorflow"]),
        "keras": versions.get("keras", env["spec"].get("keras")),
        "keras_package": versions.get("keras_package"),
        "keras_major": versions.get("keras_major"),
        "spec": env["spec"],
        "slot": env["spec"].get("slot") or env["id"],  # the id as written: the same whatever the index decided
        "selectors": {str(p): str(w) for p, w in env["spec"].get("selectors") or ()},  # package -> as written
        "image": env.get("image"),
        "image_id": env.get("image_id"),
        "status": env.get("status", "ok"),
        "error": env.get("error"),
    }


def _skipped(key: CellKey, reason: str) -> dict[str, Any]:
    return {**key.fields(), "status": "skipped", "error": None, "reason": reason}


def _error(err: ErrorInfo | None, context: HintContext, key: CellKey,
           tracebacks: Tracebacks) -> tuple[dict[str, Any] | None, str | None]:
    """A record's error as a report shows it (cleaned, shortened, with its hint; the traceback by id), and its cause."""
    if not err:
        return None, None
    etype = str(err.get("type", ""))
    message = clean(str(err.get("message", "")), source=key.source, target=key.target)
    rule = match(etype, message, context)
    traceback = err.get("traceback")
    shown = {"type": etype, "message": shorten(message), "hint": rule.hint if rule else None,
             "traceback": tracebacks.add(clean(str(traceback), source=key.source, target=key.target)
                                         if traceback else None)}
    return shown, rule.name if rule else normalised(etype, message)


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or Infinity; such a figure is reported as null (the cell says drift). Six
    # significant digits say how far apart two results are, at a third of the bytes of seventeen.
    return None if value is None or not math.isfinite(value) else float(f"{value:.6g}")


def _same(a: float, b: float, tol: Tolerance) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol.atol + tol.rtol * abs(a)


def _evaluate(
    source: dict[str, float], target: dict[str, float] | None, tol: Tolerance
) -> tuple[dict[str, Any], str | None]:
    def clean(values: dict[str, float]) -> dict[str, float | None]:
        return {k: _finite(v) for k, v in sorted(values.items())}

    info: dict[str, Any] = {"source": clean(source), "target": None if target is None else clean(target),
                            "max_abs_diff": None}
    if target is None:
        return info, None
    if sorted(source) != sorted(target):
        return info, f"evaluate() metric names differ: {sorted(source)} vs {sorted(target)}"
    diffs = [abs(source[k] - target[k]) for k in sorted(source)]
    info["max_abs_diff"] = None if any(math.isnan(d) for d in diffs) else _finite(max(diffs, default=0.0))
    bad = [k for k in sorted(source) if not _same(source[k], target[k], tol)]
    return info, (f"evaluate() {bad[0]} differs: {source[bad[0]]!r} vs {target[bad[0]]!r}" if bad else None)


def _drift(model: ModelSpec, key: CellKey, stage: str) -> tuple[str, str]:
    """(cause, hint) of a drift: the model's own hazard and hint (at home, or elsewhere), else the generic one."""
    hint = (model.drift_hint_home if key.source == key.target else None) or model.drift_hint
    if hint:
        return (model.hazards[0] if model.hazards else f"{model.name}-drift"), hint
    cause = "predictions-drift" if stage == "predict" else "evaluate-drift"
    return cause, DRIFT_FIXES[cause]


def _reference_paths(run_dir: RunDir, key: CellKey, entry: ManifestEntry) -> list[Path]:
    """Where the source's reference predictions may be, in turn: its reference.npy, or what a named load of it
    predicted (then the loads that stand in when that one wrote nothing)."""
    output = entry.get("reference_output")
    if output:
        return [run_dir.output(key._replace(target=output["target"], loader=loader))
                for loader in (output["loader"], *output.get("then", ()))]
    return [run_dir.artifacts(key.source) / str(entry["reference"])]


def _reference_of(data: _RunData, key: CellKey, entry: ManifestEntry) -> tuple[CellKey, ManifestEntry]:
    """The cell and manifest entry whose reference a cell is compared with: its own, or for a migrated model the
    original artifact's (a migrated file passes only where it predicts like the file it was made from)."""
    how = data.models[key.model].migrates
    if how is None:
        return key, entry
    source = artifact_source(how.model)
    original = (data.manifests.get(source) or {}).get("models", {}).get(how.model)
    at = key._replace(source=source, model=how.model, format=how.format)
    return at, original if isinstance(original, dict) else {"reference": f"{how.model}/{REFERENCE}"}


def _load_reference(run_dir: RunDir, paths: list[Path]) -> tuple[Path, Any]:
    """The first reference file that exists, read; FileNotFoundError naming the first when none does."""
    for path in paths:
        try:
            return path, run_dir.load_array(path)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(str(paths[0]))


def _arrays(data: _RunData, key: CellKey, model_entry: ManifestEntry) -> tuple[Any, Any] | dict[str, Any]:
    """(reference, loaded predictions), or the error cell fields when either cannot be read."""
    run_dir = data.run_dir
    paths = _reference_paths(run_dir, *_reference_of(data, key, model_entry))
    reference_path = paths[0]
    try:
        reference_path, reference = _load_reference(run_dir, paths)
    except UnsafeFile as exc:
        return {**unreadable(exc), "stage": "reference", "cause": "UnreadableFile"}
    except OSError:
        missing = missing_reference(reference_path)
        return {**missing, "stage": "reference", "cause": missing["error"]["type"]}
    output_path = run_dir.output(key)
    try:
        return reference, run_dir.load_array(output_path)
    except UnsafeFile as exc:
        return {**unreadable(exc), "stage": "predict", "cause": "UnreadableFile"}
    except OSError:
        return {"status": "error", "stage": "predict", "cause": "MissingOutput",
                "error": {"type": "MissingOutput", "message": f"{output_path.name} was not written",
                          "hint": None, "traceback": None}}


def _compared_cell(data: _RunData, key: CellKey, record: LoadRecord, model: ModelSpec, *,
                   model_entry: ManifestEntry) -> dict[str, Any]:
    """A load that produced predictions: compared with the reference, then its evaluate() figures.

    Predictions within tolerance are never drift: evaluate() raising where the source could evaluate
    is an error at stage evaluate; evaluate() results that differ are drift at stage evaluate.
    """
    tol = _tolerance(data, model)
    arrays = _arrays(data, key, model_entry)
    if isinstance(arrays, dict):
        return {**key.fields(), **arrays, "seconds": record.get("seconds")}
    reference, loaded = arrays
    comparison = compare(reference, loaded, tol)
    evaluate, eval_reason = _evaluate(model_entry.get("evaluate") or {}, record.get("evaluate"), tol)
    if model_entry.get("evaluate") is not None:
        data.references[f"{key.source}/{key.model}"] = evaluate["source"]
    error, error_cause = None, None
    if record.get("evaluate_error"):
        evaluate["error"], cause = _error(record["evaluate_error"], _context(data, key, "error"), key,
                                          data.tracebacks)
        if model_entry.get("evaluate") is not None:  # the source could evaluate it; the target cannot
            error, error_cause = evaluate["error"], cause
    figures = {k: _finite(v) if isinstance(v, float) else v for k, v in comparison.as_dict().items()}
    cell = {**key.fields(), **figures, "noise": _noise(record), "loader_options": record.get("loader_options"),
            "evaluate": evaluate,
            "predict_call": record.get("predict_call"), "seconds": record.get("seconds"), "error": None}
    if comparison.status == "drift" or (error is None and eval_reason):
        stage = "predict" if comparison.status == "drift" else "evaluate"
        cause, hint = _drift(model, key, stage)
        return {**cell, "status": "drift", "stage": stage, "reason": comparison.reason or eval_reason,
                "cause": cause, "hint": hint}
    if error is not None:
        return {**cell, "status": "error", "stage": "evaluate", "error": error, "cause": error_cause,
                "reason": "predictions match; evaluate() raised in the target"}
    return {**cell, "status": "pass"}


@dataclass(frozen=True)
class _RunData:
    """Everything a cell is decided from, read once per report."""

    run_dir: RunDir
    envs: dict[str, dict[str, Any]]
    manifests: dict[str, Manifest]
    saves: dict[str, SaveRecord]
    loads: dict[CellKey, LoadRecord]
    tolerance: Tolerance
    models: dict[str, ModelSpec]
    tracebacks: Tracebacks
    artifacts: dict[str, dict[str, Any]]  # per source/model/format: pre-flight findings, the save's error
    references: dict[str, Any]  # per source/model: the source's own evaluate() figures
    refused: dict[str, UnsafeFile]  # per target whose load records cannot be read: why
    engine_failed: frozenset[str] = frozenset()  # targets whose load container the engine could not run


def _context(data: _RunData, key: CellKey, status: str) -> HintContext:
    """What a hint rule may ask of a cell: both sides' Keras and Python, the route, the status, custom objects."""
    source, target, model = data.envs[key.source], data.envs[key.target], data.models[key.model]
    custom = ("none" if not model.code.custom_objects
              else "withheld" if key.loader in model.withhold_custom_objects else "passed")
    return HintContext(source_keras=source.get("keras"), target_keras=target.get("keras"),
                       source_python=source.get("python"), target_python=target.get("python"), format=key.format,
                       loader=key.loader, status=status, custom_objects=custom)


def _tolerance(data: _RunData, model: ModelSpec) -> Tolerance:
    # Models that test determinism (same seed, fresh process) must match bit for bit.
    return EXACT if model.exact else model.tolerance or data.tolerance


def _unsaved(data: _RunData, key: CellKey) -> dict[str, Any]:
    """A cell whose artifact the source never wrote: unsupported there, or a save that failed."""
    save = data.saves.get(f"{key.source}/{key.model}/{key.format}", {})
    unsupported = save.get("status") == "unsupported"
    status = "unsupported" if unsupported else "skipped"
    # The save's error is the same for every target: hinted once, without a target in view. Its cause
    # is the cell's: why the route never works at home (the cell is not run, so it is in no cause's count).
    error, cause = _error(save.get("error"), _context(data, key._replace(target=key.source), status), key,
                      data.tracebacks)
    data.artifacts.setdefault(f"{key.source}/{key.model}/{key.format}", {})["save"] = {"status": save.get("status"),
                                                                                     "error": error}
    if unsupported:
        return {**key.fields(), "status": status, "reason": f"{key.source} cannot write {key.format}",
                "stage": "save", "error": error}
    return {**_skipped(key, f"{key.source} could not save {key.model}/{key.format}"), "stage": "save", "error": error,
            "cause": cause}


def _unreached(data: _RunData, target: str) -> str:
    """Why a cell of a target that ran has no record."""
    if target in data.engine_failed:
        return (f"the container engine could not run the load container in {target} (exit 125 after its retries; "
                f"logs/load-{target}.log): run --resume to compute it")
    return f"the load phase in {target} did not reach this cell"


def _cell(data: _RunData, key: CellKey) -> dict[str, Any]:
    for role, env_id in (("source", key.source), ("target", key.target)):
        if data.envs[env_id]["status"] != "ok":
            return _skipped(key, f"{role} environment {env_id}: {data.envs[env_id]['status']}")
    manifest = data.manifests.get(key.source)
    if manifest is None:
        return _skipped(key, f"{key.source} did not finish saving")
    model_entry = manifest.get("models", {}).get(key.model)
    if model_entry is None or key.format not in model_entry.get("formats", {}):
        return _unsaved(data, key)
    record = data.loads.get(key)
    if record is None and key.target in data.refused:
        record = cast(LoadRecord, {**unreadable(data.refused[key.target]), "stage": "record"})
    if record is None:
        return _skipped(key, _unreached(data, key.target))
    preflight = _preflight(data, key, record.get("preflight"))
    if record.get("status") == "ok":
        cell = _compared_cell(data, key, record, data.models[key.model], model_entry=model_entry)
        return {**cell, "preflight": preflight}
    status = str(record.get("status", "error"))
    error, cause = _error(record.get("error"), _context(data, key, status), key, data.tracebacks)
    return {**key.fields(), "status": status, "preflight": preflight, "error": error,
            "cause": cause if status != "unsupported" else None,
            "stage": record.get("stage") or "load", "seconds": _seconds(record.get("seconds")),
            "signal": record.get("signal"), "exit_code": record.get("exit_code")}


def _with_account(data: _RunData, key: CellKey, cell: dict[str, Any]) -> dict[str, Any]:
    """An adapting loader's cell with its account of what it changed (harness/advisor/adaptation.py)."""
    found = adaptation.account(data.run_dir, key)
    if found is None:
        return cell
    return {**cell, "loader_options": {**(cell.get("loader_options") or {}), "adapted": found}}


def _noise(record: LoadRecord) -> float | None:
    """The spread of a drifting load's predictions over repeated loads in its worker (None: not measured)."""
    value = record.get("noise")
    return _finite(float(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _seconds(value: object) -> float | None:
    return round(float(value), 2) if isinstance(value, (int, float)) else None


def _preflight(data: _RunData, key: CellKey, found: Preflight | None) -> dict[str, Any] | None:
    """A cell's pre-flight prediction; the findings it rests on are kept once per artifact."""
    if not found:
        return None
    if found.get("findings") is not None:
        data.artifacts.setdefault(f"{key.source}/{key.model}/{key.format}", {}).setdefault("preflight",
                                                                                         found["findings"])
    return {"outcome": found.get("outcome"), "why": found.get("why")}


def _records(read: Callable[[str], list[R]], env_id: str, refused: dict[str, UnsafeFile]) -> list[R]:
    """An environment's records of a phase; none (and why, in `refused`) when its file cannot be read."""
    try:
        return read(env_id)
    except UnsafeFile as exc:  # what a container left there: its own cells are errors, the report goes on
        log.warning("%s; its cells are errors", exc)
        refused[env_id] = exc
        return []


def _load_index(run_dir: RunDir, env_ids: list[str], refused: dict[str, UnsafeFile]) -> dict[CellKey, LoadRecord]:
    index: dict[CellKey, LoadRecord] = {}
    for target in env_ids:
        for record in _records(run_dir.read_loads, target, refused):
            if record.get("kind") == "load":
                index[CellKey.of(record, target)] = record  # a later record wins (resume)
    return index


def _save_index(run_dir: RunDir, env_ids: list[str]) -> dict[str, SaveRecord]:
    index: dict[str, SaveRecord] = {}
    for env_id in env_ids:
        for record in _records(run_dir.read_saves, env_id, {}):  # only said why a save failed: its cells go on
            index[f"{env_id}/{record.get('model')}/{record.get('format')}"] = record
    return index


def _summary(cells: list[dict[str, Any]], env_ids: list[str], paths: list[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(c["status"] for c in cells)
    grid: dict[str, dict[str, Any]] = {s: dict.fromkeys(env_ids) for s in env_ids}
    per_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in cells:
        per_pair.setdefault((c["source"], c["target"]), []).append(c)
    verdicts = {(p["source"], p["target"]): p["verdict"] for p in paths}
    for (source, target), pair in per_pair.items():
        statuses = Counter(c["status"] for c in pair)
        grid[source][target] = {"worst": worst(statuses), "counts": dict(sorted(statuses.items())),
                                "verdict": verdicts.get((source, target)), "expected": all_expected(pair)}
    routes_counts = Counter(c["route_status"] for c in cells)
    return {"total": len(cells), "counts": {s: counts.get(s, 0) for s in STATUS_ORDER},
            "routes": {s: routes_counts.get(s, 0) for s in routes.ROUTE_STATUSES},
            "paths": {v: sum(1 for p in paths if p["verdict"] == v) for v in routes.VERDICTS},
            "grid": grid, "preflight": _preflight_agreement(cells)}


def _preflight_agreement(cells: list[dict[str, Any]]) -> dict[str, int]:
    """How often the static pre-flight scan predicted what loading then did."""
    tally: Counter[str] = Counter()
    for c in cells:
        predicted = (c.get("preflight") or {}).get("outcome")
        if predicted not in ("pass", "error") or c["status"] in NOT_RUN:
            continue
        failed = c["status"] in RAISED
        if (predicted == "error") == failed:
            tally["agree"] += 1
        else:
            tally["predicted_error_but_loaded" if predicted == "error" else "predicted_pass_but_failed"] += 1
    return {k: tally.get(k, 0) for k in ("agree", "predicted_error_but_loaded", "predicted_pass_but_failed")}


def build_report(run_dir: RunDir, baseline: dict[str, Any] | None = None,
                 fail_on: str = gate.DEFAULT_FAIL_ON) -> dict[str, Any]:
    """The whole report as a JSON-ready dict, deterministic for the same run directory (and baseline)."""
    run = run_dir.read_run()
    matrix: Matrix = run_dir.matrix()
    environments = [_environment(run_dir, e) for e in run["environments"]]
    env_ids = [e["id"] for e in environments]
    environments += artifact_environments(run_dir, matrix.models)  # existing user artifacts: sources only
    envs = {e["id"]: e for e in environments}
    refused: dict[str, UnsafeFile] = {}
    data = _RunData(
        run_dir=run_dir,
        envs=envs,
        manifests={i: m for i in envs if (m := run_dir.read_manifest(i))},
        saves=_save_index(run_dir, env_ids),
        loads=_load_index(run_dir, env_ids, refused),
        tolerance=matrix.tolerance,
        models={m.name: m for m in matrix.models},
        tracebacks=Tracebacks(),
        artifacts={},
        references={},
        refused=refused,
        engine_failed=frozenset(e["id"] for e in run["environments"] if (e.get("load") or {}).get("engine_failed")),
    )
    cells = [_with_account(data, key, {**CELL_DEFAULTS, **_cell(data, key)})
             for key in recorded_cells(run, matrix).cells(env_ids)]
    routes.annotate(cells, home_environments(matrix.models, env_ids), {m.name for m in matrix.models
                                                                      if m.shows_hazard})
    expectations = mark_expected(cells, matrix.expect, environments)
    unused = [{"index": e["index"], "reason": e["reason"]} for e in expectations if not e["cells"]]
    tolerance = {"rtol": matrix.tolerance.rtol, "atol": matrix.tolerance.atol}
    current = {"cells": cells, "tolerance": tolerance}
    new_since = releases.section(baseline, environments, cells, tolerance)
    baseline = None if baseline is None else releases.aligned(baseline, environments)  # its ids, by slot
    regressed = [] if baseline is None else regressions(baseline, current)
    by_itself = [] if baseline is None else spurious(baseline, current)
    paths = routes.paths(cells, list(envs), env_ids, {e["id"]: e["status"] for e in environments})
    hazard_models = {m.name: report_entry(m, env_ids) for m in matrix.models if m.shows_hazard}
    found_causes = causes(cells)
    found_migrations = migrations(matrix.models, data.manifests, data.saves, cells)
    question = run.get("check") if isinstance(run.get("check"), dict) else None
    check = None if question is None else check_section(
        {"cells": cells, "paths": paths, "causes": found_causes, "migrations": found_migrations}, question)
    return {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "matrix": {"name": matrix.name, "path": matrix.path, "sha256": matrix.sha256},
        "created": run.get("finished") or run.get("created") or dt.datetime.now(dt.timezone.utc).isoformat(),
        "run_id": run.get("run_id"),
        "isolation": run.get("isolation"),  # what the load phase's isolation level promises, and what it does not
        "tolerance": tolerance,
        "environments": environments,
        "releases": new_since,  # with a baseline: the releases since, and what each changed
        "models": [report_entry(m, env_ids) for m in matrix.models],
        "paths": paths,
        "causes": found_causes,
        "expectations": expectations,  # the matrix's expect: entries and how many cells each covers
        "hazards": routes.hazards(cells, hazard_models, env_ids),
        "migrations": found_migrations,
        "check": check,  # a check run's answer (harness/advisor/answer.py), else null
        "bisect": run["bisect"] if isinstance(run.get("bisect"), dict) else None,
        # a corpus run's files, crater-style (harness/report/crater.py), else null
        "corpus": None if matrix.corpus is None else crater.corpus_section(matrix.corpus, cells, tolerance, env_ids),
        "cells": cells,
        "tracebacks": dict(sorted(data.tracebacks.table.items())),
        "artifacts": dict(sorted(data.artifacts.items())),
        "references": dict(sorted(data.references.items())),
        "summary": _summary(cells, list(envs), paths),
        "verdict": gate.decide(cells, environments, fail_on=fail_on, run_status=run.get("status"), unused=unused,
                               regressed=regressed, check=check, spurious=by_itself),
    }
