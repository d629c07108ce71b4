"""Static pre-flight: read an artifact's config without loading it, and predict whether it loads.

Findings come from the files alone: the .keras zip's config.json and
metadata.json, an HDF5 file's model_config attribute, an architecture JSON, or
the op names in a SavedModel's saved_model.pb. Nothing here deserialises a
layer or runs graph code. Runs in the sandboxed load worker (h5py is there);
the prediction is the table the host's `harness inspect` reads (accepts.py).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from typing import Any, Dict, Mapping

from harness.agent.accepts import Release, config_findings, metric_names
from harness.agent.accepts import predict as accepts_predict

# Graph ops that touch files or run Python: unusual in a model meant for inference.
RISKY_OPS = (b"ReadFile", b"WriteFile", b"MatchingFiles", b"PyFunc", b"EagerPyFunc", b"PyFuncStateless")


def _scan_keras_zip(path: str) -> Dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        meta = json.loads(archive.read("metadata.json")) if "metadata.json" in archive.namelist() else {}
    return config_findings(config, meta.get("keras_version"), None, config.get("compile_config"))


def _scan_h5(path: str) -> Dict[str, Any]:
    import h5py  # in every image; the host never opens untrusted HDF5 (it reads it with harness/h5attrs.py)

    with h5py.File(path, "r") as handle:
        raw = handle.attrs.get("model_config")
        version, training = handle.attrs.get("keras_version"), handle.attrs.get("training_config")
        members = list(handle.keys())
    if raw is None:
        return {"weights_only": True, "weights_layout": "2.12" if "_layer_checkpoint_dependencies" in members
                else ("2.13" if "layers" in members else None)}
    compile_config = json.loads(_text(training)) if training is not None else None
    found = config_findings(json.loads(_text(raw)), _text(version) if version is not None else None, None,
                            compile_config)
    found["compile_metrics"] = metric_names(compile_config)
    return found


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _scan_savedmodel(path: str) -> Dict[str, Any]:
    with open(os.path.join(path, "saved_model.pb"), "rb") as fh:
        graph = fh.read()
    ops = sorted({op.decode() for op in RISKY_OPS if re.search(rb"\b" + op + rb"\b", graph)})
    return {"file_ops": ops, "keras_metadata": os.path.isfile(os.path.join(path, "keras_metadata.pb")),
            "xla_call_module": b"XlaCallModule" in graph}


def scan(path: str, fmt: str) -> Dict[str, Any]:
    """Findings for one artifact; {"scan_error": ...} when the file cannot even be read as its format."""
    try:
        if fmt == "keras":
            return _scan_keras_zip(path)
        if fmt == "h5":
            return _scan_h5(path)
        if fmt == "json":
            with open(path, encoding="utf-8") as fh:
                config = json.load(fh)
            return config_findings(config, config.get("keras_version"), config.get("backend"))
        if fmt in ("savedmodel", "export"):
            return _scan_savedmodel(path)
    except Exception as exc:  # a file that does not parse is itself a finding
        return {"scan_error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {}


def predict(findings: Dict[str, Any], fmt: str, loader: str, target: Mapping[str, Any], *,
            custom_objects: bool = False, evaluate: bool = False) -> Dict[str, str]:
    """The outcome the findings predict for one loader in the target (its versions): {'outcome', 'why'}, from the
    table the host's `harness inspect` uses (accepts.py)."""
    told = accepts_predict(findings, fmt, loader, Release.of(target), custom_objects=custom_objects,
                           evaluate=evaluate)
    return {"outcome": told["outcome"], "why": told["why"]}
