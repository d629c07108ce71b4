"""Save phase: build every probe model and save it in every requested format."""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from harness.agent import formats, probes
from harness.agent.common import error_info, hash_tree, quiet_tensorflow, write_json_atomic
from harness.agent.records import RecordWriter
from harness.agent.versions import collect, pip_freeze


def run_save(spec: Dict[str, Any]) -> int:
    """Write artifacts, reference data, records and finally manifest.json."""
    quiet_tensorflow()
    import tensorflow as tf

    out = spec["out"]
    versions = collect(tf)
    write_json_atomic(os.path.join(out, "env.json"), versions)
    with open(os.path.join(out, "packages.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(pip_freeze()) + "\n")
    writer = RecordWriter(spec["records"])
    base = {"kind": "save", "env": spec["env"], "versions": versions}
    models: Dict[str, Any] = {}
    for name in spec["models"]:
        entry = _save_model(tf.keras, name, fmts=spec["formats"], out=out, writer=writer, base=base,
                            keras_version=formats.version_tuple(versions["keras"]))
        if entry is not None:
            models[name] = entry
    manifest = {"schema": 1, "env": spec["env"], "versions": versions, "models": models}
    write_json_atomic(os.path.join(out, "manifest.json"), manifest)
    writer.close()
    return 0


def _save_model(
    keras: Any, name: str, *, fmts: List[str], out: str, writer: RecordWriter, base: Dict[str, Any],
    keras_version: Tuple[int, ...]
) -> Optional[Dict[str, Any]]:
    start = time.monotonic()
    try:
        built = probes.build(name, keras)
        reference, call = formats.predict(built["model"], built["x"])
        evaluation = formats.evaluate(built["model"], built["x"], built["y"])
    except Exception as exc:  # a probe that cannot be built is a result, not a crash
        for fmt in fmts:
            writer.write(dict(base, model=name, format=fmt, status="error", stage="build", error=error_info(exc)))
        return None
    model_dir = os.path.join(out, name)
    os.makedirs(model_dir, exist_ok=True)
    for key, array in (("inputs", built["x"]), ("labels", built["y"]), ("reference", reference)):
        np.save(os.path.join(model_dir, key + ".npy"), array)
    entry: Dict[str, Any] = {
        "inputs": name + "/inputs.npy",
        "labels": name + "/labels.npy",
        "reference": name + "/reference.npy",
        "predict_call": call,
        "evaluate": evaluation,
        "build_seconds": round(time.monotonic() - start, 3),
        "formats": {},
    }
    for fmt in fmts:
        record = _save_format(built["model"], fmt, model_dir, keras_version)
        writer.write(dict(base, model=name, format=fmt, **record))
        if record["status"] == "ok":
            entry["formats"][fmt] = {"path": name + "/" + record["path"], "files": record["files"]}
    return entry


def _save_format(model: Any, fmt: str, model_dir: str, keras_version: Tuple[int, ...]) -> Dict[str, Any]:
    fmt_dir = os.path.join(model_dir, fmt)
    os.makedirs(fmt_dir, exist_ok=True)
    start = time.monotonic()
    try:
        path = formats.save(model, fmt, fmt_dir, keras_version)
    except formats.Unsupported as exc:
        return {"status": "unsupported", "error": error_info(exc), "seconds": time.monotonic() - start}
    except Exception as exc:
        return {"status": "error", "error": error_info(exc), "seconds": time.monotonic() - start}
    return {
        "status": "ok",
        "path": fmt + "/" + os.path.relpath(path, fmt_dir),
        "files": {fmt + "/" + k: v for k, v in hash_tree(fmt_dir).items()},
        "seconds": round(time.monotonic() - start, 3),
    }
