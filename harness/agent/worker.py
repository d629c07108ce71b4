"""Load worker: imports TensorFlow once, then loads artifacts one task at a time.

Tasks arrive as JSON lines on stdin; results leave as JSON lines on the file
descriptor named by HARNESS_RESULT_FD (stdout belongs to TensorFlow's logging).
The parent process survives this one's segfaults, aborts and hangs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, Optional

import numpy as np

from harness.agent import formats, preflight
from harness.agent.common import error_info, quiet_tensorflow, settle_heap
from harness.agent.models import ModelCode, work_in
from harness.agent.protocol import LoadRecord, LoadTask, Preflight
from harness.agent.versions import collect

CLEAR_EVERY = 200


def run_worker() -> int:
    """Serve tasks until stdin closes."""
    result_fd = int(os.environ["HARNESS_RESULT_FD"])
    results = os.fdopen(result_fd, "w", encoding="utf-8", buffering=1)
    quiet_tensorflow()
    import tensorflow as tf

    versions = collect(tf)
    ctx = formats.Context(tf, versions)
    settle_heap()
    results.write(json.dumps({"hello": versions}) + "\n")
    served = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        task = LoadTask.from_json(line)
        results.write(json.dumps(run_task(ctx, task), default=str) + "\n")
        served += 1
        if served % CLEAR_EVERY == 0:
            # Loaded models accumulate in Keras' global state; clearing costs ~0.1 s,
            # so it is done now and then, not per artifact (layer names are explicit).
            ctx.keras.backend.clear_session()
    return 0


_FINDINGS: Dict[str, Dict[str, Any]] = {}


def _preflight(ctx: formats.Context, task: LoadTask) -> Preflight:
    """Static findings for the artifact (scanned once per worker) and the outcome they predict here."""
    if task.artifact not in _FINDINGS:
        _FINDINGS[task.artifact] = preflight.scan(task.artifact, task.format)
    findings = _FINDINGS[task.artifact]
    passed = bool(task.spec.code.custom_objects) and not ModelCode(task.spec, ctx.keras).withholds(task.loader)
    predicted = preflight.predict(findings, task.format, task.loader, ctx.versions, custom_objects=passed,
                                  evaluate=task.evaluate)
    return {"outcome": predicted["outcome"], "why": predicted["why"], "findings": findings}


def run_task(ctx: formats.Context, task: LoadTask) -> LoadRecord:
    """Load one artifact with one loader, predict, evaluate; never raise."""
    result = _run_task(ctx, task)
    try:
        result["preflight"] = _preflight(ctx, task)
    except Exception as exc:  # the scan is advice; it never changes a cell
        result["preflight"] = {"outcome": "unknown", "why": f"scan failed: {exc}"}
    return result


def _run_task(ctx: formats.Context, task: LoadTask) -> LoadRecord:
    start = time.monotonic()
    work_in(task.spec.code.root)
    code = ModelCode(task.spec, ctx.keras)
    try:
        loaded = formats.load(ctx, task.loader, task.artifact, code, task.input_names,
                              output_names=task.output_names, output=task.output,
                              written_by=task.source_versions.get("keras"))
        loaded = code.serve(loaded, task.input_names, task.model_dir)
    except formats.Unsupported as exc:
        return {"status": "unsupported", "error": error_info(exc), "stage": "load", "seconds": _since(start)}
    except Exception as exc:
        return {"status": "error", "error": error_info(exc), "stage": "load", "seconds": _since(start)}
    load_seconds = _since(start)
    try:
        with np.load(task.inputs) as data:
            arrays = [data[name] for name in task.input_names]
        outputs = loaded.predict(arrays)
        save_atomic(task.output, outputs)
    except Exception as exc:
        return {"status": "error", "error": error_info(exc), "stage": "predict", "seconds": _since(start)}
    record: LoadRecord = {"status": "ok", "predict_call": loaded.call, "load_seconds": load_seconds,
                          "loader_options": dict(loaded.options)}
    noise = _noise(ctx, task, code, outputs, arrays)
    if noise is not None:
        record["noise"] = noise
    if loaded.model is not None and task.evaluate:
        try:
            record["evaluate"] = dict(formats.evaluate(loaded.model, arrays, np.load(task.labels)),
                                      **code.state_figures(loaded.model))
        except Exception as exc:  # e.g. a model loaded without its compile config
            record["evaluate_error"] = error_info(exc)
    record["seconds"] = _since(start)
    return record


REPEATS = 2  # a drifting load is loaded and predicted again this many times: its noise, measured in place


def _noise(ctx: formats.Context, task: LoadTask, code: ModelCode, outputs: Any, arrays: Any) -> Optional[float]:
    """For a load of a model that is no hazard probe whose predictions differ from the source's beyond its tolerance:
    the largest difference between them and those of the same load repeated (0.0 when it is deterministic); None
    when the load is within tolerance or cannot be compared here. A change between two runs within it is noise."""
    if task.spec.shows_hazard or task.reference is None:
        return None
    try:
        reference = np.asarray(np.load(task.reference, allow_pickle=False), dtype="float64")
        first = np.asarray(outputs, dtype="float64")
        if reference.shape != first.shape or np.allclose(first, reference, rtol=task.tolerance.rtol,
                                                         atol=task.tolerance.atol, equal_nan=True):
            return None
        spread = 0.0
        for _ in range(REPEATS):
            again = formats.load(ctx, task.loader, task.artifact, code, task.input_names,
                                 output_names=task.output_names)
            repeated = np.asarray(code.serve(again, task.input_names, task.model_dir).predict(arrays), dtype="float64")
            spread = max(spread, float(np.nanmax(np.abs(repeated - first))) if first.size else 0.0)
        return spread
    except Exception:  # the noise is a figure beside the cell, never the cell's outcome
        return None


def save_atomic(path: str, array: Any) -> None:
    """np.save through a file beside `path`, renamed into place: a reader sees no file or the whole array."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, array)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _since(start: float) -> float:
    return round(time.monotonic() - start, 4)
