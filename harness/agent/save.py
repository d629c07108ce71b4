"""Save phase: build every model of the spec and save it in each of its formats.

Probes and users' factory models go through the same steps: build (and train) from the spec's
code, record the reference predictions and evaluate() figures, save every format, and write
manifest.json last, when everything else is on disk.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from harness.agent import formats, migrate
from harness.agent.common import error_info, quiet_tensorflow, settle_heap
from harness.agent.models import ModelCode, keras_model, work_in
from harness.agent.protocol import (
    ENV_JSON,
    FORMATS,
    INPUTS,
    LABELS,
    MANIFEST,
    PACKAGES,
    REFERENCE,
    MadeBy,
    ManifestEntry,
    ModelSpec,
    RecordWriter,
    SavedFormat,
    SaveRecord,
    SaveRequest,
    hash_tree,
    manifest,
    manifest_entry,
    write_json_atomic,
    write_npz,
)
from harness.agent.versions import collect, pip_freeze


def run_save(request: SaveRequest) -> int:
    """Write artifacts, reference data, records and finally manifest.json."""
    quiet_tensorflow()
    import tensorflow as tf

    out = request.out
    versions = collect(tf)
    ctx = formats.Context(tf, versions)
    settle_heap()
    write_json_atomic(os.path.join(out, ENV_JSON), versions)
    with open(os.path.join(out, PACKAGES), "w", encoding="utf-8") as fh:
        fh.write("\n".join(pip_freeze()) + "\n")
    writer: RecordWriter[SaveRecord] = RecordWriter(request.records)
    base: SaveRecord = {"kind": "save", "env": request.env, "versions": versions}
    models: Dict[str, ManifestEntry] = {}
    for model in request.models:
        if request.env not in model.homes([request.env]):
            continue  # a migrated model is saved in its home environment only
        entry = save_model(ctx, model, os.path.join(out, model.name), writer=writer, base=base)
        if entry is not None:
            models[model.name] = entry
    write_json_atomic(os.path.join(out, MANIFEST), manifest(request.env, versions, models))
    writer.close()
    return 0


def _build(ctx: formats.Context, code: ModelCode, model_dir: str) -> Tuple[Any, Optional[MadeBy]]:
    """Build (and train) the model, or make a migrated one; write its inputs, labels and the files its spec
    keeps beside it. Returns the built model and, for a migrated one, how it was made."""
    built, made = migrate.build(ctx, code.spec) if code.spec.migrates else (code.build(), None)
    os.makedirs(model_dir, exist_ok=True)
    for name, value in built.files.items():
        write_json_atomic(os.path.join(model_dir, name), value)
    write_npz(os.path.join(model_dir, INPUTS), built.inputs)  # by name: an input may be called 'file'
    if built.labels is not None:
        np.save(os.path.join(model_dir, LABELS), built.labels)
    return built, made


def _reference(code: ModelCode, built: Any, model_dir: str) -> Dict[str, Any]:
    """The predictions (and evaluate() figures, and state) every load is compared with."""
    names, arrays = list(built.inputs), list(built.inputs.values())
    served = code.serve(keras_model(built.model), names, model_dir)
    np.save(os.path.join(model_dir, REFERENCE), served.predict(arrays))
    evaluation = None
    if code.spec.evaluate and built.labels is not None and not code.spec.code.predict:
        # A predict hook's raw inputs are not the model's inputs: only hook-free models are evaluated.
        evaluation = dict(formats.evaluate(built.model, arrays, built.labels), **code.state_figures(built.model))
    return {"input_names": names, "evaluate": evaluation, "predict_call": served.call,
            "output_names": _output_names(built.model)}


def _output_names(model: Any) -> List[str]:
    names = getattr(model, "output_names", None)
    if names:
        return [str(n) for n in names]
    return [str(getattr(t, "name", "")).split("/")[0].split(":")[0] for t in getattr(model, "outputs", None) or []]


def save_model(ctx: formats.Context, spec: ModelSpec, model_dir: str, *, writer: RecordWriter[SaveRecord],
               base: SaveRecord) -> Optional[ManifestEntry]:
    """Build one model, save it in each of its formats (a record each); its manifest entry, None if it failed.

    A model whose spec takes a training step after every load takes it here too, after saving: the
    reference is what the model predicts after that step.
    """
    start = time.monotonic()
    code = ModelCode(spec, ctx.keras)
    why = formats.cannot_build(ctx, spec)
    if why:
        for fmt in spec.formats or ():
            writer.write({**base, "model": spec.name, "format": fmt, "status": "unsupported", "stage": "build",
                          "error": {"type": "Unsupported", "message": why, "traceback": ""}})
        return None
    work_in(spec.code.root)
    try:
        built, made = _build(ctx, code, model_dir)
        ref = None if spec.train_step else _reference(code, built, model_dir)
    except Exception as exc:  # a model that cannot be built is a result, not a crash
        _failed(writer, base, spec, exc)
        return None
    saved: Dict[str, SavedFormat] = {}
    for fmt in _save_order(spec.formats or ()):
        record = _save_format(ctx, built.model, fmt, model_dir, spec.name)
        writer.write({**base, "model": spec.name, "format": fmt, **record})
        if record["status"] == "ok":
            saved[fmt] = {"path": spec.name + "/" + record["path"], "files": record["files"]}
    if ref is None:
        try:
            code.train_step(built.model)
            ref = _reference(code, built, model_dir)
        except Exception as exc:
            _failed(writer, base, spec, exc)
            return None
    return manifest_entry(spec.name, ref["input_names"], saved, evaluate=ref["evaluate"],
                          predict_call=ref["predict_call"], output_names=ref["output_names"],
                          build_seconds=round(time.monotonic() - start, 3), made_by=made)


def _save_order(fmts: Any) -> List[str]:
    """The formats in the order they are written: those whose writer changes the live model last.

    Keras 3's legacy h5 writer removes the optimizer from the live model's compile config
    (keras-team/keras#23475), so a .keras file written after it would compile with the default
    RMSprop and lose the optimizer state (catalog.FORMATS: saved_last).
    """
    return sorted(fmts, key=lambda fmt: FORMATS[fmt].saved_last)


def _failed(writer: RecordWriter[SaveRecord], base: SaveRecord, spec: ModelSpec, exc: Exception) -> None:
    for fmt in spec.formats or ():
        writer.write({**base, "model": spec.name, "format": fmt, "status": "error", "stage": "build",
                      "error": error_info(exc)})


def _save_format(ctx: formats.Context, model: Any, fmt: str, model_dir: str, name: str) -> SaveRecord:
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

