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
from typing import Any, Dict

import numpy as np

from harness.agent import formats
from harness.agent.common import error_info, quiet_tensorflow
from harness.agent.versions import collect


def run_worker() -> int:
    """Serve tasks until stdin closes."""
    result_fd = int(os.environ["HARNESS_RESULT_FD"])
    results = os.fdopen(result_fd, "w", encoding="utf-8", buffering=1)
    quiet_tensorflow()
    import tensorflow as tf

    keras = tf.keras
    results.write(json.dumps({"hello": collect(tf)}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        results.write(json.dumps(run_task(keras, task), default=str) + "\n")
    return 0


def run_task(keras: Any, task: Dict[str, Any]) -> Dict[str, Any]:
    """Load one artifact with one loader, predict, evaluate; never raise."""
    start = time.monotonic()
    try:
        model = formats.load(keras, task["loader"], task["format"], task["artifact"])
    except formats.Unsupported as exc:
        return {"status": "unsupported", "error": error_info(exc), "stage": "load", "seconds": _since(start)}
    except Exception as exc:
        return {"status": "error", "error": error_info(exc), "stage": "load", "seconds": _since(start)}
    load_seconds = _since(start)
    try:
        x = np.load(task["inputs"])
        outputs, call = formats.predict(model, x)
        os.makedirs(os.path.dirname(task["output"]), exist_ok=True)
        np.save(task["output"], outputs)
    except Exception as exc:
        return {"status": "error", "error": error_info(exc), "stage": "predict", "seconds": _since(start)}
    record: Dict[str, Any] = {"status": "ok", "predict_call": call, "load_seconds": load_seconds}
    try:
        record["evaluate"] = formats.evaluate(model, x, np.load(task["labels"]))
    except Exception as exc:  # e.g. a model loaded without its compile config
        record["evaluate_error"] = error_info(exc)
    record["seconds"] = _since(start)
    return record


def _since(start: float) -> float:
    return round(time.monotonic() - start, 4)
