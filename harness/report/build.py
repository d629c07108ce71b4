"""Build report.json (schema_version 1) from a run directory alone: no Docker needed."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.agent.protocol import EXACT, CellKey, ModelSpec, Tolerance
from harness.compare import compare
from harness.hints import HintContext, hint_for
from harness.matrix import Matrix
from harness.models import artifact_environments, missing_reference, report_entry
from harness.plan import expected_cells
from harness.report.diff import regressions
from harness.report.expect import mark_expected
from harness.report.schema import SCHEMA_VERSION
from harness.report.statuses import FAILING, NOT_RUN, RAISED, STATUS_ORDER, worst
from harness.rundir import RunDir
from harness.untrusted import UnsafeFile, unreadable

# Every cell carries every field (null when it does not apply): a stable contract.
CELL_DEFAULTS: dict[str, Any] = {
    "max_abs_diff": None, "max_rel_diff": None, "max_ulp": None, "bit_exact": None,
    "argmax_agreement": None, "evaluate": None, "error": None, "reason": None, "seconds": None,
    "predict_call": None, "signal": None, "exit_code": None, "expected": None, "expectation": None,
    "hint": None, "loader_options": None, "preflight": None,
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
        "image": env.get("image"),
        "image_id": env.get("image_id"),
        "status": env.get("status", "ok"),
        "error": env.get("error"),
    }


def _skipped(key: CellKey, reason: str) -> dict[str, Any]:
    return {**key.fields(), "status": "skipped", "error": None, "reason": reason}


def _error(err: dict[str, Any] | None, context: HintContext | None = None) -> dict[str, Any] | None:
    if not err:
        return None
    etype, message = str(err.get("type", "")), str(err.get("message", ""))
    return {"type": etype, "message": message, "hint": hint_for(etype, message, context),
            "traceback": err.get("traceback")}


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or Infinity; such a figure is reported as null (the cell says drift).
    return None if value is None or not math.isfinite(value) else value


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


def _drift_hint(model: ModelSpec, key: CellKey, evaluate: dict[str, Any]) -> str | None:
    """Why a model drifts: its own hint (at home, or elsewhere), else why evaluate() failed."""
    hint = (model.drift_hint_home if key.source == key.target else None) or model.drift_hint
    if hint is None and evaluate.get("error"):
        return str(evaluate["error"].get("hint") or "") or None
    return hint


def _reference_path(run_dir: RunDir, key: CellKey, entry: dict[str, Any]) -> Path:
    """The source's reference predictions: its reference.npy, or what a named load of it predicted."""
    output = entry.get("reference_output")
    if output:
        return run_dir.output(key._replace(target=output["target"], loader=output["loader"]))
    return run_dir.artifacts(key.source) / str(entry["reference"])


def _compared_cell(run_dir: RunDir, key: CellKey, record: dict[str, Any], model: ModelSpec, *,
                   model_entry: dict[str, Any], tol: Tolerance) -> dict[str, Any]:
    reference_path = _reference_path(run_dir, key, model_entry)
    try:
        reference = run_dir.load_array(reference_path)
    except UnsafeFile as exc:
        return {**key.fields(), **unreadable(exc), "seconds": record.get("seconds")}
    except OSError:
        return {**key.fields(), **missing_reference(reference_path), "seconds": record.get("seconds")}
    output_path = run_dir.output(key)
    try:
        loaded = run_dir.load_array(output_path)
    except UnsafeFile as exc:
        return {**key.fields(), **unreadable(exc), "seconds": record.get("seconds")}
    except OSError:
        return {**key.fields(), "status": "error", "seconds": record.get("seconds"),
                "error": {"type": "MissingOutput", "message": f"{output_path.name} was not written",
                          "hint": None, "traceback": None}}
    comparison = compare(reference, loaded, tol)
    evaluate, eval_reason = _evaluate(model_entry.get("evaluate") or {}, record.get("evaluate"), tol)
    if record.get("evaluate_error"):
        evaluate["error"] = _error(record["evaluate_error"])
        if model_entry.get("evaluate") is not None:  # the source could evaluate it; the target cannot
            eval_reason = f"evaluate() raised in the target: {evaluate['error']['type']}"
    status = "drift" if comparison.status == "drift" or eval_reason else "pass"
    figures = {k: _finite(v) if isinstance(v, float) else v for k, v in comparison.as_dict().items()}
    return {
        **key.fields(), "status": status, **figures, "loader_options": record.get("loader_options"),
        "hint": _drift_hint(model, key, evaluate) if status == "drift" else None,
        "evaluate": evaluate, "reason": comparison.reason or eval_reason, "error": None,
        "predict_call": record.get("predict_call"), "seconds": record.get("seconds"),
    }


@dataclass(frozen=True)
class _RunData:
    """Everything a cell is decided from, read once per report."""

    run_dir: RunDir
    envs: dict[str, dict[str, Any]]
    manifests: dict[str, dict[str, Any]]
    saves: dict[str, dict[str, Any]]
    loads: dict[CellKey, dict[str, Any]]
    tolerance: Tolerance
    models: dict[str, ModelSpec]


def _context(data: _RunData, key: CellKey) -> HintContext:
    return HintContext(source_keras=data.envs[key.source].get("keras"), target_keras=data.envs[key.target].get("keras"),
                       format=key.format, loader=key.loader)


def _tolerance(data: _RunData, model: ModelSpec) -> Tolerance:
    # Models that test determinism (same seed, fresh process) must match bit for bit.
    return EXACT if model.exact else model.tolerance or data.tolerance


def _unsaved(data: _RunData, key: CellKey) -> dict[str, Any]:
    """A cell whose artifact the source never wrote: unsupported there, or a save that failed."""
    save = data.saves.get(f"{key.source}/{key.model}/{key.format}", {})
    if save.get("status") == "unsupported":
        return {**key.fields(), "status": "unsupported", "reason": f"{key.source} cannot write {key.format}",
                "error": _error(save.get("error"))}
    reason = f"{key.source} could not save {key.model}/{key.format}"
    return {**_skipped(key, reason), "error": _error(save.get("error"), _context(data, key))}


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
    if record is None:
        return _skipped(key, f"the load phase in {key.target} did not reach this cell")
    if record.get("status") == "ok":
        model = data.models[key.model]
        cell = _compared_cell(data.run_dir, key, record, model, model_entry=model_entry, tol=_tolerance(data, model))
        return {**cell, "preflight": record.get("preflight")}
    return {**key.fields(), "status": record.get("status", "error"), "preflight": record.get("preflight"),
            "error": _error(record.get("error"), _context(data, key)),
            "reason": record.get("stage"), "seconds": record.get("seconds"), "signal": record.get("signal"),
            "exit_code": record.get("exit_code")}


def _load_index(run_dir: RunDir, env_ids: list[str]) -> dict[CellKey, dict[str, Any]]:
    index: dict[CellKey, dict[str, Any]] = {}
    for target in env_ids:
        for record in run_dir.read_records("load", target):
            if record.get("kind") == "load":
                index[CellKey.of(record, target)] = record  # a later record wins (resume)
    return index


def _save_index(run_dir: RunDir, env_ids: list[str]) -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for env_id in env_ids:
        for record in run_dir.read_records("save", env_id):
            index[f"{env_id}/{record.get('model')}/{record.get('format')}"] = record
    return index


def _summary(cells: list[dict[str, Any]], env_ids: list[str]) -> dict[str, Any]:
    counts = Counter(c["status"] for c in cells)
    grid: dict[str, dict[str, Any]] = {s: dict.fromkeys(env_ids) for s in env_ids}
    per_pair: dict[tuple[str, str], Counter[str]] = {}
    for c in cells:
        per_pair.setdefault((c["source"], c["target"]), Counter())[c["status"]] += 1
    for (source, target), pair_counts in per_pair.items():
        grid[source][target] = {"worst": worst(pair_counts), "counts": dict(sorted(pair_counts.items()))}
    return {"total": len(cells), "counts": {s: counts.get(s, 0) for s in STATUS_ORDER}, "grid": grid,
            "preflight": _preflight_agreement(cells)}


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


def _verdict(cells: list[dict[str, Any]], environments: list[dict[str, Any]], run_status: str | None,
             unused: list[dict[str, Any]], regressed: list[dict[str, Any]]) -> dict[str, Any]:
    unexpected = [
        f"{c['source']} -> {c['target']}: {c['model']}/{c['format']}/{c['loader']} {c['status']}"
        for c in cells if c["status"] in FAILING and c["expected"] is False
    ]
    unexpected += [f"{e['id']}: {e['status']}" for e in environments if e["status"] != "ok"]
    # Cells that were never checked, other than those of a failed build (named above),
    # are listed once per cause: nothing unchecked may pass as "all as expected".
    unexpected += sorted({c["reason"] for c in cells if c["status"] == "skipped" and c["expected"] is False})
    if run_status in ("running", "interrupted"):
        unexpected.append(f"the run is {run_status}, not complete: continue it with run --resume")
    return {"exit_code": 1 if unexpected or regressed else 0, "unexpected": unexpected, "regressions": regressed,
            "unused_expectations": unused}


def build_report(run_dir: RunDir, baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole report as a JSON-ready dict, deterministic for the same run directory (and baseline)."""
    run = run_dir.read_run()
    matrix: Matrix = run_dir.matrix()
    environments = [_environment(run_dir, e) for e in run["environments"]]
    env_ids = [e["id"] for e in environments]
    environments += artifact_environments(run_dir, matrix.models)  # existing user artifacts: sources only
    envs = {e["id"]: e for e in environments}
    data = _RunData(
        run_dir=run_dir,
        envs=envs,
        manifests={i: m for i in envs if (m := run_dir.read_manifest(i))},
        saves=_save_index(run_dir, env_ids),
        loads=_load_index(run_dir, env_ids),
        tolerance=matrix.tolerance,
        models={m.name: m for m in matrix.models},
    )
    cells = [{**CELL_DEFAULTS, **_cell(data, key)} for key in expected_cells(matrix, env_ids)]
    unused = mark_expected(cells, matrix.expect, environments)
    tolerance = {"rtol": matrix.tolerance.rtol, "atol": matrix.tolerance.atol}
    regressed = [] if baseline is None else regressions(baseline, {"cells": cells, "tolerance": tolerance})
    models = [report_entry(m) for m in matrix.models]
    return {
        "schema_version": SCHEMA_VERSION,
        "harness_version": __version__,
        "matrix": {"name": matrix.name, "path": matrix.path, "sha256": matrix.sha256},
        "created": run.get("finished") or run.get("created") or dt.datetime.now(dt.timezone.utc).isoformat(),
        "run_id": run.get("run_id"),
        "tolerance": tolerance,
        "environments": environments,
        "models": models,
        "cells": cells,
        "summary": _summary(cells, list(envs)),
        "verdict": _verdict(cells, environments, run.get("status"), unused, regressed),
    }
