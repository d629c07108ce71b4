"""What each Keras release accepts in a saved model, told from the file alone: one table, read on the host (`harness
inspect`, `check`'s first answer, before any container) and in the load workers (preflight, beside each cell).

A file's findings are what its stored config says (which Keras wrote it and under which module paths, which
classes and constructor arguments it holds, its Lambda bytecode, its dtype policies, a SavedModel's signature);
the table below says, per finding, which releases refuse it, for which loaders, and why, under the cause name
the hint rules give the same failure once it is seen (harness/hints.py). Standard library only (Python 3.9+):
the host imports it through the protocol module. Nothing here deserializes a layer or runs the file's code.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

# Loaders that rebuild the model from the file's own config (and so meet everything it says).
CONFIG_LOADERS = ("load_model", "load_model_custom", "load_model_unsafe", "load_model_nocompile", "model_from_json",
                  "tflite", "load_model_xla", "tf1_session")
# Of those, the ones a probe is loaded with as a process without its code would be: without custom objects (a
# user's check passes them to every loader).
PLAIN_LOADERS = ("load_model", "load_model_unsafe", "load_model_nocompile", "tf1_session")
SAFE_MODE_LOADERS = ("load_model", "load_model_custom", "load_model_nocompile", "tflite", "load_model_xla")
COMPILING_LOADERS = ("load_model", "load_model_custom", "load_model_unsafe", "load_model_xla", "tf1_session")
KERAS_LOADERS = ("load_model", "load_model_custom", "load_model_unsafe", "load_model_nocompile", "load_model_xla")
MODEL_FORMATS = ("keras", "h5", "json")
SAVEDMODELS = ("savedmodel", "export")
TF_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")
HUB_LAYERS = ("KerasLayer",)
# Constructor arguments Keras 2 layers write that Keras 3 refuses ("Unrecognized keyword arguments").
KERAS2_ONLY_ARGUMENTS = {"DepthwiseConv2D": ("groups",), "LSTM": ("time_major",), "GRU": ("time_major",),
                         "SimpleRNN": ("time_major",)}
# Layer arguments that name a file outside the model (a TF-Hub module, a vocabulary): another process lacks it.
EXTERNAL_FILES = {"handle": "layer-savedmodel-missing", "vocabulary": "vocabulary-file"}
MAX_OBJECTS = 200_000  # serialized objects walked in one config: a config this large is not read further


def version_tuple(text: Optional[str]) -> Tuple[int, ...]:
    """'3.12.0' -> (3, 12, 0); '2.16.0-rc1' -> (2, 16, 0); nothing readable -> ()."""
    return tuple(int(p) for p in re.findall(r"[0-9]{1,9}", text or "")[:3])


def python_minor(text: Optional[str]) -> str:
    """'3.11.2' -> '3.11'."""
    return ".".join(str(p) for p in version_tuple(text)[:2])


# ---------------------------------------------------------------------------- findings


def objects(node: Any) -> Iterator[Dict[str, Any]]:
    """Every serialized Keras object (a dict with a class_name) in a config tree, at most MAX_OBJECTS."""
    stack, seen = [node], 0
    while stack and seen < MAX_OBJECTS:
        item = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                seen += 1
                yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


class _Walk:
    """What the objects of one config hold, gathered object by object."""

    def __init__(self) -> None:
        self.classes: Set[str] = set()
        self.modules: Set[str] = set()
        self.custom: Set[str] = set()
        self.lambdas: Set[str] = set()
        self.bytecode: List[bytes] = []
        self.arguments: Dict[str, List[str]] = {}
        self.policies: Set[str] = set()
        self.policy_objects = False
        self.batch_shape = False
        self.input_optional = False
        self.outside: Dict[str, List[str]] = {}

    def add(self, obj: Dict[str, Any]) -> None:
        name = str(obj.get("class_name"))
        value = obj.get("config")
        inner: Dict[str, Any] = value if isinstance(value, dict) else {}
        module, registered = obj.get("module"), str(obj.get("registered_name") or "")
        self.classes.add(name)
        if isinstance(module, str):
            self.modules.add(module)
        if ">" in registered or ">" in name or (isinstance(module, str)
                                                 and not module.startswith(("keras", "tf_keras"))):
            self.custom.add(registered or name)
        if name == "Lambda":
            self.lambdas.add(str(inner.get("name", "?")))
            code = _lambda_code(inner.get("function"))
            self.bytecode += [code] if code else []
        self.arguments.update({name: [k for k in KERAS2_ONLY_ARGUMENTS.get(name, ()) if k in inner]}
                              if any(k in inner for k in KERAS2_ONLY_ARGUMENTS.get(name, ())) else {})
        self.batch_shape = self.batch_shape or (name == "InputLayer" and "batch_shape" in inner)
        self.input_optional = self.input_optional or (name == "InputLayer" and "optional" in inner)
        for key in EXTERNAL_FILES:
            value = inner.get(key)
            if isinstance(value, str) and value.startswith("/") and len(value) < 4096:
                self.outside.setdefault(key, []).append(value)
        self._dtype(inner.get("dtype"))

    def _dtype(self, dtype: Any) -> None:
        if isinstance(dtype, str):
            self.policies.add(dtype)
        elif isinstance(dtype, dict) and dtype.get("class_name") in ("DTypePolicy", "Policy", "FloatDTypePolicy"):
            self.policy_objects = True
            name = (dtype.get("config") or {}).get("name")
            self.policies.update([name] if isinstance(name, str) else [])


def config_findings(config: Any, keras_version: Optional[str], backend: Optional[str] = None,
                    compile_config: Any = None) -> Dict[str, Any]:
    """What a model's config says, JSON-ready: who wrote it, its classes and the arguments the table asks about."""
    walk = _Walk()
    for obj in objects(config):
        walk.add(obj)
    top = config.get("module") if isinstance(config, dict) else None
    return {
        "keras_version": keras_version,
        "keras_generation": _generation(keras_version, walk.modules,
                                        keras3_style=walk.batch_shape or walk.policy_objects),
        "backend": backend,
        "top_module": top if isinstance(top, str) else None,
        "classes": sorted(walk.classes),
        "custom_objects": sorted(walk.custom),
        "compile_custom_objects": sorted(_custom_names(compile_config)),
        "lambda_layers": sorted(walk.lambdas),
        "lambda_pythons": sorted({p for code in walk.bytecode for p in bytecode_pythons(code)}),
        "lambda_bytecode": bool(walk.bytecode),
        "keras2_arguments": {k: sorted(set(v)) for k, v in sorted(walk.arguments.items())},
        "dtype_policies": sorted(walk.policies),
        "dtype_policy_objects": walk.policy_objects,
        "input_batch_shape": walk.batch_shape,
        "input_optional": walk.input_optional,
        "compiled": compile_config is not None,
        "outside_files": {k: sorted(set(v))[:5] for k, v in sorted(walk.outside.items())},
        "compile_loss_objects": _loss_objects(compile_config),
    }


def metric_names(training: Any) -> List[str]:
    """The metrics a Keras 2 training config compiles, by name."""
    if not isinstance(training, dict):
        return []
    names = set()
    stack = [training.get("metrics"), training.get("weighted_metrics")]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            names.add(item)
        elif isinstance(item, dict):
            names.add(str((item.get("config") or {}).get("name") or item.get("class_name")))
    return sorted(names)


def _custom_names(compile_config: Any) -> Set[str]:
    """Registered names ('package>name') a training config uses: a custom loss or metric."""
    found: Set[str] = set()
    stack, seen = [compile_config], 0
    while stack and seen < MAX_OBJECTS:
        item, seen = stack.pop(), seen + 1
        if isinstance(item, str) and ">" in item and len(item) < 200 and not item.startswith("Custom>"):
            found.add(item)  # Keras 2 registers its own optimizers as Custom>Name
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _loss_objects(compile_config: Any) -> List[str]:
    """Losses a Keras 2 training config stores as serialized objects (Keras 3 cannot deserialize them)."""
    if not isinstance(compile_config, dict):
        return []
    loss = compile_config.get("loss")
    found = [loss] if isinstance(loss, dict) else [v for v in loss.values() if isinstance(v, dict)] if isinstance(
        loss, dict) else []
    return sorted({str(item.get("class_name")) for item in found if "class_name" in item})


def _generation(keras_version: Optional[str], modules: Any, keras3_style: bool = False) -> Optional[int]:
    """Which Keras wrote a config: its recorded version, else its module paths, else what only Keras 3 writes
    (InputLayer batch_shape, dtype policy objects)."""
    if version_tuple(keras_version):
        return version_tuple(keras_version)[0]
    if any(".src.models" in m for m in modules) or keras3_style:
        return 3
    if any(".engine" in m for m in modules):
        return 2
    return None


def _lambda_code(function: Any) -> Optional[bytes]:
    """The marshalled code of a Lambda stored as bytecode (legacy .h5 and JSON: [base64, defaults, closure])."""
    raw = function[0] if isinstance(function, list) and function and isinstance(function[0], str) else None
    if raw is None and isinstance(function, dict):  # .keras: {"class_name": "__lambda__", "config": {"code": ...}}
        value = (function.get("config") or {}).get("code")
        raw = value if isinstance(value, str) else None
    if raw is None or len(raw) > 1 << 20:
        return None
    try:
        return base64.b64decode(raw.encode("ascii", "replace"))
    except ValueError:
        return None


def bytecode_pythons(code: bytes) -> List[str]:
    """The Python minor versions whose marshal layout and first opcode a Lambda's code object has, or [] when it is
    not a code object this can tell. Bytecode runs only on the minor version that wrote it."""
    if len(code) < 30 or code[0] & 0x7F != ord("c"):
        return []
    # 3.11 dropped nlocals from the code object's header: five 32-bit fields before the bytes of the code, not six.
    for fields, pythons in ((5, ("3.11", "3.12", "3.13")), (6, ("3.8", "3.9", "3.10"))):
        at = 1 + 4 * fields
        if code[at] & 0x7F == ord("s") and at + 6 <= len(code):
            first = code[at + 5]
            if fields == 6:
                return list(pythons)
            if first == 149:  # RESUME is 149 in 3.13, 151 in 3.11 and 3.12
                return ["3.13"]
            if first == 151:
                return ["3.11", "3.12"]
            return list(pythons)
    return []


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Release:
    """The environment a file is loaded in, as far as the table asks."""

    keras: str  # e.g. "3.3.3", "2.16.0"
    keras_package: str = "keras"  # "keras", or "tf-keras" (TF_USE_LEGACY_KERAS=1)
    python: str = ""
    backend: str = "tensorflow"
    tensorflow: str = ""

    @property
    def major(self) -> int:
        """Its Keras generation."""
        found = version_tuple(self.keras)
        return found[0] if found else 2

    @classmethod
    def of(cls, versions: Mapping[str, Any]) -> Release:
        """From a record's versions (keras, keras_package, python, backend, tensorflow)."""
        return cls(keras=str(versions.get("keras") or ""), keras_package=str(versions.get("keras_package") or "keras"),
                   python=str(versions.get("python") or ""), backend=str(versions.get("backend") or "tensorflow"),
                   tensorflow=str(versions.get("tensorflow") or ""))


@dataclass(frozen=True)
class Refusal:
    """One row of the table: what in a file (`found`: a few words, or None) which releases refuse (`refuses`), for
    which formats and loaders, and why, under the cause name its failure gets once seen."""

    cause: str
    formats: Tuple[str, ...]
    loaders: Tuple[str, ...]
    found: Callable[[Mapping[str, Any]], Optional[str]]
    refuses: Callable[[Mapping[str, Any], Release], bool]
    why: str  # {found}, {keras} and {tensorflow} are filled in
    evaluated: bool = False  # refused only where the model is evaluated after it is loaded


def _module_family(findings: Mapping[str, Any]) -> Optional[str]:
    """Where a .keras file's classes live: keras.engine (Keras 2.12), keras.src.engine (2.13 to 2.15), tf_keras
    (tf-keras), or Keras 3's keras.src.models; a model registered under plain `keras` (Sequential) by the
    generation that wrote it."""
    top = findings.get("top_module") or ""
    for family in ("tf_keras", "keras.src.engine", "keras.engine", "keras.src.models", "keras.src"):
        if top.startswith(family):
            return family
    generation = _source_generation(findings)
    return None if generation is None else ("keras.src.models" if generation == 3 else "keras2")


def _reads_module_family(family: Optional[str], target: Release) -> bool:
    version = version_tuple(target.keras)
    if family is None:
        return True
    if family == "keras.engine":  # Keras 2.12 (.keras files began in 2.12)
        return target.keras_package == "keras" and version[:2] == (2, 12)
    if family == "keras.src.engine":  # 2.13 to 2.15, and tf-keras, which maps them
        return target.major == 2 and (target.keras_package == "tf-keras" or (2, 13) <= version[:2] <= (2, 15))
    if family == "tf_keras":
        return target.keras_package == "tf-keras"
    if family == "keras2":
        return target.major == 2 or target.keras_package == "tf-keras"
    return target.major >= 3 and target.keras_package != "tf-keras"


def _source_generation(findings: Mapping[str, Any]) -> Optional[int]:
    value = findings.get("keras_generation")
    return value if isinstance(value, int) else None


def _newer_keras3(findings: Mapping[str, Any], target: Release) -> bool:
    source = version_tuple(findings.get("keras_version"))
    return (_source_generation(findings) == 3 and target.major == 3 and target.keras_package != "tf-keras"
            and source[:2] > version_tuple(target.keras)[:2])


def _written(findings: Mapping[str, Any]) -> Optional[str]:
    """Who wrote a file: its Keras version, else its generation (a Keras 3 architecture JSON records no version)."""
    version = findings.get("keras_version") or _source_generation(findings)
    return f"written by Keras {version}" if version else None


def _keras2_file(findings: Mapping[str, Any]) -> Optional[str]:
    return _written(findings) if _source_generation(findings) == 2 else None


def _keras3_file(findings: Mapping[str, Any]) -> Optional[str]:
    return _written(findings) if _source_generation(findings) == 3 else None


def _named(key: str, words: str) -> Callable[[Mapping[str, Any]], Optional[str]]:
    def found(findings: Mapping[str, Any]) -> Optional[str]:
        value = findings.get(key)
        return words.format(", ".join(value) if isinstance(value, list) else value) if value else None
    return found


def _keras2_arguments(findings: Mapping[str, Any]) -> Optional[str]:
    found = findings.get("keras2_arguments") or {}
    return ", ".join(f"{k}({', '.join(v)}=...)" for k, v in sorted(found.items())) or None


def _classes(names: Sequence[str]) -> Callable[[Mapping[str, Any]], Optional[str]]:
    def found(findings: Mapping[str, Any]) -> Optional[str]:
        present = [n for n in names if n in (findings.get("classes") or ())]
        return ", ".join(present) or None
    return found


def _mixed_policy(findings: Mapping[str, Any]) -> Optional[str]:
    mixed = [p for p in findings.get("dtype_policies") or () if str(p).startswith("mixed_")]
    return f"dtype policy {', '.join(mixed)}" if mixed and _source_generation(findings) == 2 else None


def _lambda_python(findings: Mapping[str, Any]) -> Optional[str]:
    pythons = findings.get("lambda_pythons") or []
    return f"Lambda bytecode of Python {' or '.join(pythons)}" if pythons else None


def _compiled_keras2(findings: Mapping[str, Any]) -> Optional[str]:
    losses = findings.get("compile_loss_objects") or []
    return (f"a Keras 2 compile() loss stored as an object ({', '.join(losses)})"
            if losses and _source_generation(findings) == 2 else None)


def _metrics_keras2(findings: Mapping[str, Any]) -> Optional[str]:
    metrics = findings.get("compile_metrics") or []
    return (f"Keras 2 compile() metrics ({', '.join(metrics)}), which evaluate() cannot use in Keras 3"
            if metrics and _source_generation(findings) == 2 else None)


def _layout(findings: Mapping[str, Any]) -> Optional[str]:
    layout = findings.get("weights_layout")
    return {"2.12": "a .weights.h5 in Keras 2.12's layout",
            "2.13": "a .weights.h5 in the layout of Keras 2.13 and later"}.get(str(layout))


def _other_layout(findings: Mapping[str, Any], target: Release) -> bool:
    """Keras 2.12 reads only its own layout; later Keras 2 releases (tf-keras too) only theirs."""
    if target.major >= 3 and target.keras_package != "tf-keras":
        return False
    at_212 = target.keras_package == "keras" and version_tuple(target.keras)[:2] == (2, 12)
    return at_212 != (findings.get("weights_layout") == "2.12")


def _outside(cause: str) -> Callable[[Mapping[str, Any]], Optional[str]]:
    def found(findings: Mapping[str, Any]) -> Optional[str]:
        for key, paths in sorted((findings.get("outside_files") or {}).items()):
            if EXTERNAL_FILES.get(key) == cause and paths:
                return f"a layer's {key} at {paths[0]}, outside the model"
        return None
    return found


def _saved_without_keras(findings: Mapping[str, Any]) -> Optional[str]:
    return "no keras_metadata.pb" if findings.get("keras_metadata") is False else None


def _float32_signature(findings: Mapping[str, Any]) -> Optional[str]:
    dtypes = findings.get("signature_input_dtypes") or []
    return "a serving signature that takes float32" if "float32" in dtypes else None


def _generic_outputs(findings: Mapping[str, Any]) -> Optional[str]:
    keys = findings.get("signature_output_keys") or []
    return (f"signature outputs named {', '.join(keys)}" if keys and all(re.fullmatch(r"output_\d+", k) for k in keys)
            else None)


def _xla_module(findings: Mapping[str, Any]) -> Optional[str]:
    return "an XlaCallModule (a jax model exported)" if findings.get("xla_call_module") else None


def _found(words: str) -> Callable[[Mapping[str, Any]], Optional[str]]:
    return lambda findings: words


def _always(findings: Mapping[str, Any], target: Release) -> bool:
    return True


def _keras3_target(findings: Mapping[str, Any], target: Release) -> bool:
    return target.major >= 3 and target.keras_package != "tf-keras"


def _keras2_target(findings: Mapping[str, Any], target: Release) -> bool:
    return target.major == 2 or target.keras_package == "tf-keras"


def _keras2_file_target(findings: Mapping[str, Any], target: Release) -> bool:
    return _source_generation(findings) == 2


def _other_python(findings: Mapping[str, Any], target: Release) -> bool:
    return bool(target.python) and python_minor(target.python) not in (findings.get("lambda_pythons") or ())


def _module_refused(findings: Mapping[str, Any], target: Release) -> bool:
    return not _reads_module_family(_module_family(findings), target)


def _newer(findings: Mapping[str, Any], target: Release) -> bool:
    return _newer_keras3(findings, target)


def _input_optional(findings: Mapping[str, Any]) -> Optional[str]:
    return "an InputLayer's optional argument (tf-keras 2.21 and Keras 3 write it)" if findings.get(
        "input_optional") and _source_generation(findings) == 2 else None


def _before_optional(findings: Mapping[str, Any], target: Release) -> bool:
    """Keras 2 releases before tf-keras 2.21 do not know InputLayer(optional=...)."""
    return _keras2_target(findings, target) and version_tuple(target.keras)[:2] < (2, 21)


# The table. Each row is checked on its own; a route is predicted to fail when any row refuses it.
REFUSALS: Tuple[Refusal, ...] = (
    Refusal("keras2-file-in-keras3", ("keras",), (*KERAS_LOADERS, "tflite", "load_model_xla"), _keras2_file,
            lambda f, t: _keras3_target(f, t) and _module_refused(f, t),
            "{found}: its classes live under Keras 2 module paths Keras {keras} cannot import"),
    Refusal("keras3-file-in-keras2", ("keras",), (*KERAS_LOADERS, "tflite", "load_model_xla"), _keras3_file,
            lambda f, t: _keras2_target(f, t) and _module_refused(f, t),
            "{found}: Keras {keras} cannot import Keras 3's module paths"),
    Refusal("keras2-module-move", ("keras",), (*KERAS_LOADERS, "tflite", "load_model_xla"), _keras2_file,
            lambda f, t: _keras2_target(f, t) and _module_refused(f, t),
            "{found}: the module paths of its classes moved between Keras 2 releases; Keras {keras} cannot import "
            "them"),
    Refusal("keras3-file-in-keras2", ("h5", "json"), CONFIG_LOADERS, _keras3_file,
            lambda f, t: _keras2_target(f, t) and bool(f.get("input_batch_shape")),
            "{found}: Keras 3 configs (InputLayer batch_shape) that Keras {keras} refuses"),
    Refusal("keras2-file-in-keras3", ("json",), CONFIG_LOADERS, _keras2_file, _keras3_target,
            "{found}: Keras {keras} cannot rebuild a Keras 2 architecture JSON"),
    Refusal("newer-keras-config", MODEL_FORMATS, CONFIG_LOADERS, _keras3_file, _newer,
            "{found}: a newer Keras 3 than {keras}, whose configs it does not know"),
    Refusal("newer-keras-config", MODEL_FORMATS, CONFIG_LOADERS, _input_optional, _before_optional,
            "{found}, which Keras {keras} does not know"),
    Refusal("keras3-load-model-savedmodel", SAVEDMODELS, (*KERAS_LOADERS, "tf1_session"),
            _found("a SavedModel"), _keras3_target, "Keras {keras} load_model reads only .keras and .h5 files"),
    Refusal("savedmodel-without-keras", SAVEDMODELS, KERAS_LOADERS, _saved_without_keras, _keras2_target,
            "a SavedModel with {found}: Keras {keras} load_model cannot make a Keras model of it"),
    Refusal("keras3-reads-tf-checkpoint", ("tf_checkpoint",), ("rebuild",), _found("a TensorFlow checkpoint"),
            _keras3_target, "Keras {keras} load_weights cannot read {found}"),
    Refusal("custom-objects", MODEL_FORMATS, PLAIN_LOADERS, _named("custom_objects", "custom objects {}"),
            _always,
            "{found}, which a load without custom_objects cannot find"),
    Refusal("custom-objects", MODEL_FORMATS + SAVEDMODELS, tuple(x for x in PLAIN_LOADERS if x in COMPILING_LOADERS),
            _named("compile_custom_objects", "a custom loss or metric in its compile() config ({})"), _always,
            "{found}, which a load that compiles without custom_objects cannot find"),
    Refusal("safe-mode", ("keras",), SAFE_MODE_LOADERS, _named("lambda_layers", "Lambda layer(s) {}"),
            lambda f, t: version_tuple(t.keras) >= (2, 12), "{found} in a .keras file: safe_mode refuses them"),
    Refusal("safe-mode", ("h5", "json"), (*SAFE_MODE_LOADERS, "model_from_json"),
            _named("lambda_layers", "Lambda layer(s) {}"), _keras3_target,
            "{found} stored as bytecode: Keras {keras} refuses them under safe_mode (Keras 3.3 cannot infer a "
            "Lambda's output shape without output_shape)"),
    Refusal("lambda-bytecode", ("h5", "json"), CONFIG_LOADERS, _lambda_python, _other_python,
            "{found}, which another Python cannot load"),
    Refusal("tf-op-lambda", (*MODEL_FORMATS, "weights_h5"), (*CONFIG_LOADERS, "rebuild"), _classes(TF_OP_LAYERS),
            _keras3_target, "raw TensorFlow ops on Keras tensors ({found}), which Keras {keras} cannot build"),
    Refusal("tf-keras-layer-in-keras3", MODEL_FORMATS, CONFIG_LOADERS, _classes(HUB_LAYERS), _keras3_target,
            "a Keras 2 layer ({found}) that Keras {keras} refuses"),
    Refusal("depthwise-groups", ("h5", "keras"), PLAIN_LOADERS, _keras2_arguments, _keras3_target,
            "Keras 2 constructor arguments {found} that Keras {keras} refuses"),
    Refusal("keras2-mixed-precision", ("h5",), CONFIG_LOADERS, _mixed_policy, _keras3_target,
            "a Keras 2 {found}, which Keras {keras} does not read from a legacy file"),
    Refusal("keras2-compile-config", ("h5",), COMPILING_LOADERS, _compiled_keras2, _keras3_target,
            "{found}, which Keras {keras} does not deserialize: load it with compile=False"),
    Refusal("layer-savedmodel-missing", MODEL_FORMATS, CONFIG_LOADERS, _outside("layer-savedmodel-missing"), _always,
            "{found}: a process on another host or container does not have it"),
    Refusal("vocabulary-file", ("h5", "json", "savedmodel"), CONFIG_LOADERS, _outside("vocabulary-file"), _always,
            "{found}: a process on another host or container does not have it"),
    Refusal("vocabulary-file", ("keras",), CONFIG_LOADERS, _outside("vocabulary-file"), _keras2_file_target,
            "{found} (a Keras 2 .keras file keeps the path, not the file)"),
    Refusal("keras2-compile-config", ("h5",), COMPILING_LOADERS, _metrics_keras2, _keras3_target,
            "{found}: the model loads, its evaluate() in Keras {keras} raises (compile it again in code)",
            evaluated=True),
    Refusal("weights-layout-2.13", ("weights_h5", "json"), ("rebuild", "model_from_json"), _layout,
            _other_layout, "{found}, which Keras {keras} does not read"),
    Refusal("tflite-keras3-model", ("h5", "keras"), ("tflite",), _found("a Keras model converted to TFLite"),
            lambda f, t: _keras3_target(f, t) and version_tuple(t.tensorflow)[:2] == (2, 16),
            "{found} in TensorFlow {tensorflow}: its converter aborts on a Keras 3 model loaded from a file "
            "(2.20 converts it)"),
    Refusal("float64-inputs", SAVEDMODELS, ("saved_model_call",), _float32_signature, _always,
            "{found}: called with float64 inputs it refuses them"),
    Refusal("export-output-names", SAVEDMODELS, ("serving",), _generic_outputs, _always,
            "{found}, not the model's output names a serving client asks for"),
    Refusal("jax-xla-export", SAVEDMODELS, ("saved_model", "tfsm_layer", "serving", "saved_model_call", "tflite"),
            _xla_module, _always, "{found}, which TensorFlow cannot run on CPU from another process"),
)


def refusals(findings: Mapping[str, Any], fmt: str, loader: str, target: Release, *,
             custom_objects: bool = False, evaluate: bool = False) -> List[Dict[str, str]]:
    """Every row that refuses this route in the target: [{'cause', 'why'}]; [] when none does.

    `custom_objects`: the load passes the model's custom objects (a user's check does, with --custom-objects);
    `evaluate`: the loaded model is evaluated (it has labels and its compile() settings are compared).
    """
    found_rows = []
    for row in REFUSALS:
        if fmt not in row.formats or loader not in row.loaders or (row.evaluated and not evaluate):
            continue
        if custom_objects and row.cause == "custom-objects":
            continue
        what = row.found(findings)
        if what and row.refuses(findings, target):
            found_rows.append({"cause": row.cause, "why": row.why.format(found=what, keras=target.keras,
                                                                        tensorflow=target.tensorflow)})
    return found_rows


def predict(findings: Mapping[str, Any], fmt: str, loader: str, target: Release, *,
            custom_objects: bool = False, evaluate: bool = False) -> Dict[str, Any]:
    """The outcome the table predicts for one route in one release: {'outcome': 'error'|'pass', 'why', 'causes'}.

    A file that is not a model, or does not parse as its format, is an error everywhere.
    """
    if findings.get("not_a_model"):
        return {"outcome": "error", "why": str(findings["not_a_model"]), "causes": ["not-a-model"]}
    if findings.get("unread"):  # what the reader could not follow: nothing to predict from
        return {"outcome": "unknown", "why": f"its config could not be read ({findings['unread']})", "causes": []}
    if findings.get("scan_error"):
        return {"outcome": "error", "why": f"the file does not parse as {fmt}: {findings['scan_error']}",
                "causes": ["artifact-unreadable"]}
    rows = refusals(findings, fmt, loader, target, custom_objects=custom_objects, evaluate=evaluate)
    return {"outcome": "error" if rows else "pass", "why": "; ".join(r["why"] for r in rows),
            "causes": sorted({r["cause"] for r in rows})}
