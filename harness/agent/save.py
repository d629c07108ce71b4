"""Save phase: build every probe model and save it in every requested format."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from harness.agent import catalog, formats, probes, user
from harness.agent.common import error_info, hash_tree, quiet_tensorflow, write_json_atomic
from harness.agent.records import RecordWriter
from harness.agent.versions import collect, pip_freeze


def run_save(spec: Dict[str, Any]) -> int:
    """Write artifacts, reference data, records and finally manifest.json."""
    quiet_tensorflow()
    import tensorflow as tf

    out = spec["out"]
    versions = collect(tf)
    ctx = formats.Context(tf, versions)
    write_json_atomic(os.path.join(out, "env.json"), versions)
    with open(os.path.join(out, "packages.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(pip_freeze()) + "\n")
    writer = RecordWriter(spec["records"])
    base = {"kind": "save", "env": spec["env"], "versions": versions}
    models: Dict[str, Any] = {}
    for name in spec["models"]:
        fmts = catalog.probe_formats(name, spec["formats"])
        entry = _save_model(ctx, name, fmts, os.path.join(out, name), writer=writer, base=base)
        if entry is not None:
            models[name] = entry
    models.update(user.save_models(ctx, spec.get("user_models", []), out, writer=writer, base=base))
    manifest = {"schema": 1, "env": spec["env"], "versions": versions, "models": models}
    write_json_atomic(os.path.join(out, "manifest.json"), manifest)
    writer.close()
    return 0


def _reference(ctx: formats.Context, name: str, model_dir: str) -> Dict[str, Any]:
    """Build a probe and record what it predicts and evaluates to, before any saving."""
    built = probes.build(name, ctx.keras)
    arrays = list(built["inputs"].values())
    os.makedirs(model_dir, exist_ok=True)
    if name == "label_order_sorted":
        write_json_atomic(os.path.join(model_dir, probes.CLASS_MAP_FILE), sorted(set(probes.LABELS)))
    loaded = formats.keras_model(built["model"])
    reference = probes.postprocess(name, loaded.predict(arrays), model_dir)
    evaluation = None if name.startswith("fault_") else formats.evaluate(built["model"], arrays, built["y"])
    np.savez(os.path.join(model_dir, "inputs.npz"), **built["inputs"])
    np.save(os.path.join(model_dir, "labels.npy"), built["y"])
    np.save(os.path.join(model_dir, "reference.npy"), reference)
    return {"model": built["model"], "input_names": list(built["inputs"]), "evaluate": evaluation,
            "predict_call": loaded.call}


def _save_model(ctx: formats.Context, name: str, fmts: List[str], model_dir: str, *, writer: RecordWriter,
                base: Dict[str, Any], reference: Callable[..., Dict[str, Any]] = _reference
                ) -> Optional[Dict[str, Any]]:
    start = time.monotonic()
    try:
        ref = reference(ctx, name, model_dir)
    except Exception as exc:  # a probe that cannot be built is a result, not a crash
        for fmt in fmts:
            writer.write(dict(base, model=name, format=fmt, status="error", stage="build", error=error_info(exc)))
        return None
    entry: Dict[str, Any] = {
        "inputs": name + "/inputs.npz",
        "input_names": ref["input_names"],
        "labels": name + "/labels.npy",
        "reference": name + "/reference.npy",
        "predict_call": ref["predict_call"],
        "evaluate": ref["evaluate"],
        "build_seconds": round(time.monotonic() - start, 3),
        "formats": {},
        **ref.get("entry", {}),  # a user model's code and loaders
    }
    for fmt in fmts:
        record = _save_format(ctx, ref["model"], fmt, model_dir, name)
        writer.write(dict(base, model=name, format=fmt, **record))
        if record["status"] == "ok":
            entry["formats"][fmt] = {"path": name + "/" + record["path"], "files": record["files"]}
    return entry


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
