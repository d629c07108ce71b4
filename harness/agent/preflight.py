"""Static pre-flight: read an artifact's config without loading it, and predict whether it loads.

Findings come from the files alone: the .keras zip's config.json and
metadata.json, an HDF5 file's model_config attribute, an architecture JSON, or
the op names in a SavedModel's saved_model.pb. Nothing here deserialises a
layer or runs graph code. Runs in the sandboxed load worker (h5py is there).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

# Graph ops that touch files or run Python: unusual in a model meant for inference.
RISKY_OPS = (b"ReadFile", b"WriteFile", b"MatchingFiles", b"PyFunc", b"EagerPyFunc", b"PyFuncStateless")


def _objects(node: Any) -> Iterator[Dict[str, Any]]:
    """Every serialised Keras object (a dict with a class_name) in a config tree."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def _config_findings(config: Any, keras_version: Optional[str]) -> Dict[str, Any]:
    lambdas, custom, modules = set(), set(), set()
    for obj in _objects(config):
        name = str(obj.get("class_name"))
        module = obj.get("module")
        config_value = obj.get("config")
        inner: Dict[str, Any] = config_value if isinstance(config_value, dict) else {}
        if name == "Lambda":
            lambdas.add(str(inner.get("name", "?")))
        registered = str(obj.get("registered_name") or "")
        if isinstance(module, str):
            modules.add(module)
        if ">" in registered or (isinstance(module, str) and not module.startswith(("keras", "tf_keras"))):
            custom.add(registered or name)
    return {
        "lambda_layers": sorted(lambdas),
        "custom_objects": sorted(custom),
        "unusual_modules": sorted(m for m in modules if not m.startswith(("keras", "tf_keras"))),
        "keras_version": keras_version,
        "keras_generation": _generation(keras_version, modules),
    }


def _generation(keras_version: Optional[str], modules: Any) -> Optional[int]:
    """Which Keras wrote a config: its recorded version, else its module paths."""
    if keras_version and keras_version[:1].isdigit():
        return int(keras_version.split(".")[0])
    if any(".src.models" in m for m in modules):
        return 3
    if any(".engine" in m for m in modules):
        return 2
    return None


def _scan_keras_zip(path: str) -> Dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        meta = json.loads(archive.read("metadata.json")) if "metadata.json" in archive.namelist() else {}
    return _config_findings(config, meta.get("keras_version"))


def _scan_h5(path: str) -> Dict[str, Any]:
    import h5py  # in every image; the host never opens untrusted HDF5

    with h5py.File(path, "r") as handle:
        raw = handle.attrs.get("model_config")
        version = handle.attrs.get("keras_version")
    if raw is None:
        return {"weights_only": True}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    found = _config_findings(json.loads(text), version.decode() if isinstance(version, bytes) else version)
    found["lambda_bytecode"] = bool(found["lambda_layers"])  # an h5 Lambda is marshalled bytecode
    return found


def _scan_savedmodel(path: str) -> Dict[str, Any]:
    with open(os.path.join(path, "saved_model.pb"), "rb") as fh:
        graph = fh.read()
    ops = sorted({op.decode() for op in RISKY_OPS if re.search(rb"\b" + op + rb"\b", graph)})
    return {"file_ops": ops, "keras_metadata": os.path.isfile(os.path.join(path, "keras_metadata.pb"))}


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
            return _config_findings(config, config.get("keras_version"))
        if fmt in ("savedmodel", "export"):
            return _scan_savedmodel(path)
    except Exception as exc:  # a file that does not parse is itself a finding
        return {"scan_error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {}


def _python(versions: Mapping[str, Any]) -> Tuple[str, ...]:
    return tuple(str(versions.get("python", "")).split(".")[:2])


def predict(findings: Dict[str, Any], fmt: str, loader: str, source: Mapping[str, Any],
            target: Mapping[str, Any]) -> Dict[str, str]:
    """The outcome the findings predict for one loader in the target: {'outcome', 'why'}."""
    reasons: List[str] = []
    target_major = target.get("keras_major")
    if findings.get("scan_error"):
        reasons.append("the file does not parse as " + fmt)
    if fmt in ("savedmodel", "export") and loader == "load_model":
        if target_major == 3:
            reasons.append("Keras 3 load_model cannot read a SavedModel")
        elif not findings.get("keras_metadata"):
            reasons.append("the SavedModel holds no Keras metadata")
    full_model = fmt in ("keras", "h5", "json") and loader in ("load_model", "load_model_custom",
                                                                "load_model_unsafe", "model_from_json")
    generation = findings.get("keras_generation")
    # Keras 3 still reads Keras 2 HDF5 files; every other crossing of generations fails.
    readable_legacy = fmt == "h5" and generation == 2
    if full_model and generation and target_major and generation != target_major and not readable_legacy:
        reasons.append(f"written by Keras {generation}, loaded by Keras {target_major}")
    if full_model and findings.get("custom_objects") and loader == "load_model":
        reasons.append("custom objects without custom_objects: " + ", ".join(findings["custom_objects"]))
    if full_model and findings.get("lambda_layers"):
        if findings.get("lambda_bytecode") and _python(source) != _python(target):
            reasons.append("Lambda bytecode from Python {} on Python {}".format(
                ".".join(_python(source)), ".".join(_python(target))))
        if fmt == "keras" and loader != "load_model_unsafe":  # every Keras that reads .keras has safe_mode
            reasons.append("safe_mode refuses Lambda layers in .keras files")
    if findings.get("file_ops"):
        reasons.append("graph ops that touch files or run Python: " + ", ".join(findings["file_ops"]))
    return {"outcome": "error" if reasons else "pass", "why": "; ".join(reasons)}
