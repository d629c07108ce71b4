"""Save phase: build every model of the spec and save it in each of its formats.

Probes and users' factory models go through the same steps: build (and train) from the spec's
code, record the reference predictions and evaluate() figures, save every format, and write
manifest.json last, when everything else is on disk.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Optional

import numpy as np

from harness.agent import formats
from harness.agent.common import error_info, quiet_tensorflow
from harness.agent.models import ModelCode, keras_model
from harness.agent.protocol import (
    ENV_JSON,
    INPUTS,
    LABELS,
    MANIFEST,
    PACKAGES,
    REFERENCE,
    ModelSpec,
    RecordWriter,
    from_dict,
    hash_tree,
    manifest,
    manifest_entry,
    write_json_atomic,
)
from harness.agent.versions import collect, pip_freeze


def run_save(spec: Dict[str, Any]) -> int:
    """Write artifacts, reference data, records and finally manifest.json."""
    quiet_tensorflow()
    import tensorflow as tf

    out = spec["out"]
    versions = collect(tf)
    ctx = formats.Context(tf, versions)
    write_json_atomic(os.path.join(out, ENV_JSON), versions)
    with open(os.path.join(out, PACKAGES), "w", encoding="utf-8") as fh:
        fh.write("\n".join(pip_freeze()) + "\n")
    writer = RecordWriter(spec["records"])
    base = {"kind": "save", "env": spec["env"], "versions": versions}
    models: Dict[str, Any] = {}
    for model in (from_dict(m) for m in spec["models"]):
        entry = save_model(ctx, model, os.path.join(out, model.name), writer=writer, base=base)
        if entry is not None:
            models[model.name] = entry
    write_json_atomic(os.path.join(out, MANIFEST), manifest(spec["env"], versions, models))
    writer.close()
    return 0


def _reference(ctx: formats.Context, code: ModelCode, model_dir: str) -> Dict[str, Any]:
    """Build the model; write its inputs, labels and the predictions every load is compared with."""
    built = code.build()
    names, arrays = list(built.inputs), list(built.inputs.values())
    os.makedirs(model_dir, exist_ok=True)
    for name, value in built.files.items():
        write_json_atomic(os.path.join(model_dir, name), value)
    served = code.serve(keras_model(built.model), names, model_dir)
    reference = served.predict(arrays)
    evaluation = None
    if code.spec.evaluate and built.labels is not None and not code.spec.code.predict:
        # A predict hook's raw inputs are not the model's inputs: only hook-free models are evaluated.
        evaluation = formats.evaluate(built.model, arrays, built.labels)
    np.savez(os.path.join(model_dir, INPUTS), **built.inputs)
    if built.labels is not None:
        np.save(os.path.join(model_dir, LABELS), built.labels)
    np.save(os.path.join(model_dir, REFERENCE), reference)
    return {"model": built.model, "input_names": names, "evaluate": evaluation, "predict_call": served.call}


def save_model(ctx: formats.Context, spec: ModelSpec, model_dir: str, *, writer: RecordWriter,
               base: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Build one model, save it in each of its formats (a record each); its manifest entry, None if it failed."""
    start = time.monotonic()
    try:
        ref = _reference(ctx, ModelCode(spec, ctx.keras), model_dir)
    except Exception as exc:  # a model that cannot be built is a result, not a crash
        for fmt in spec.formats or ():
            writer.write(dict(base, model=spec.name, format=fmt, status="error", stage="build",
                              error=error_info(exc)))
        return None
    saved = {}
    for fmt in spec.formats or ():
        record = _save_format(ctx, ref["model"], fmt, model_dir, spec.name)
        writer.write(dict(base, model=spec.name, format=fmt, **record))
        if record["status"] == "ok":
            saved[fmt] = {"path": spec.name + "/" + record["path"], "files": record["files"]}
    return manifest_entry(spec.name, ref["input_names"], saved, evaluate=ref["evaluate"],
                          predict_call=ref["predict_call"], build_seconds=round(time.monotonic() - start, 3))


def _save_format(ctx: formats.Context, model: Any, fmt: str, model_dir: str, name: str) -> Dict[str, Any]:
    fmt_dir = os.path.join(model_dir, fmt)
    os.makedirs(fmt_dir, exist_ok=True)
    start = time.monotonic()
    try:
        path = formats.save(ctx, model, fmt, fmt_dir, name)
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

