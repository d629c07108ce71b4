"""Adapters: one per breaking change and version step, as data (ONNX's version converter, for Keras files).

An adapter edits the stored parts of a saved model (its model config, its compile config, its
weights) so that another Keras release loads it, without loading the model with a Keras that
cannot. Each entry says which releases it maps between (the Keras that wrote the file, the Keras
that is to load it), which parts it edits, in which kinds of file, and the cause it answers (a
hint rule's name, harness/hints.py). The table is in version order: a chain applies every entry
whose releases fit, in that order, so a file crosses several version steps, upwards or downwards.

An adapter that finds nothing of its change in the file edits nothing; one that finds its change
but cannot make it raises CannotAdapt, which ends the chain. Nothing here claims an adapted file
works: the file is loaded in the target with the target's own load_model and its predictions are
compared with the original's before anyone is handed it.

Standard library only (numpy is imported by the weight transforms when they run): the host reads
the table through the protocol, the agent applies it inside the containers (Python 3.9+).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

# The parts of a saved model an adapter may edit.
MODEL, COMPILE, WEIGHTS = "model config", "compile config", "weights"
# The kinds of file adapters read, by what is stored in them (not by their names): a legacy HDF5 full model,
# a .keras zip, an architecture JSON, a legacy HDF5 weights file (layer_names at its root), the .weights.h5 of
# Keras 2.12 and later (groups by object path, as inside a .keras archive).
H5, KERAS, JSON, WEIGHTS_H5, KERAS_WEIGHTS = "h5", "keras", "json", "weights_h5", "keras_weights"
LAYOUTS = (H5, KERAS, JSON, WEIGHTS_H5, KERAS_WEIGHTS)


class CannotAdapt(Exception):
    """The file holds the change an adapter answers, but the change cannot be made (the message says why)."""


class Saved:
    """What adapters edit: a saved model's stored parts as plain JSON values, and its weights."""

    def __init__(self, layout: str, keras: Optional[str], model: Any, compile_config: Optional[Dict[str, Any]] = None,
                 weights: Any = None) -> None:
        self.layout = layout  # one of LAYOUTS
        self.keras = keras  # the Keras release that wrote it, as the file says
        self.model = model  # the model config; a list of layers in a Keras 2.0/2.1 Sequential; None in a weights file
        self.compile = compile_config  # .h5 training_config or .keras compile_config; None: none stored (or dropped)
        self.weights = weights  # a Weights (legacy HDF5 layouts), or None


class Weights:
    """A file's weights: a legacy HDF5 file's, layer by layer in the order the file lists them, or the weights file
    inside a .keras archive, group by group (the agent implements them)."""

    def layers(self) -> List[str]:
        """The layers that hold weights."""
        raise NotImplementedError

    def get(self, layer: str) -> List[Any]:
        """A layer's arrays, in the file's order."""
        raise NotImplementedError

    def set(self, layer: str, arrays: List[Any]) -> None:
        """Replace a layer's arrays (their number stays; shapes may change)."""
        raise NotImplementedError

    def give(self, layer: str, names: List[str], arrays: List[Any]) -> None:
        """Give weights to a layer the file lists without any (a layer an adapter put in its place)."""
        raise NotImplementedError

    def groups(self, path: str) -> List[str]:
        """The names of the groups below a group ("" : the root)."""
        raise NotImplementedError

    def move(self, old: str, new: str) -> None:
        """Move a group to another path."""
        raise NotImplementedError


Edit = Callable[[Saved], List[str]]


@dataclass(frozen=True)
class Adapter:
    """One breaking change between Keras releases, and the edit that crosses it."""

    name: str
    cause: str  # the hint rule (harness/hints.py) whose failure it answers
    source: str  # the releases of the Keras that wrote the file, a spec for fits(): "<3", ">=3.13"
    target: str  # the releases of the Keras that is to load it
    parts: Tuple[str, ...]  # what it edits: MODEL, COMPILE, WEIGHTS
    layouts: Tuple[str, ...]  # the kinds of file it reads
    words: str  # what it does, in a few words
    edit: Edit  # makes the change in place; returns what it changed, in words (nothing: the file did not need it)

    def fits(self, source: Optional[str], target: Optional[str], layout: str) -> bool:
        """Whether it applies to a file of this layout written by `source` and loaded by `target`."""
        return layout in self.layouts and fits(source, self.source) and fits(target, self.target)


# ---------------------------------------------------------------------------- releases


def version(text: Optional[str]) -> Tuple[int, ...]:
    """'2.2.4-tf' -> (2, 2, 4); nothing known -> ()."""
    return tuple(int(p) for p in re.findall(r"\d+", (text or "").split("-")[0].split("+")[0])[:3])


def fits(release: Optional[str], spec: str) -> bool:
    """Whether a known release fits a spec: "2" (any 2.x), "2.12" (any 2.12.x), "<2.13", ">=2.13", or several
    joined by commas (all must hold). An unknown release fits nothing."""
    have = version(release)
    if not have:
        return False
    for part in spec.split(","):
        parsed = re.fullmatch(r"\s*(<|>=)?(\d+(?:\.\d+)*)\s*", part)
        if parsed is None:
            raise ValueError(f"not a release spec: {spec!r}")
        op, want = parsed.group(1), tuple(int(p) for p in parsed.group(2).split("."))
        if not (have < want if op == "<" else have >= want if op == ">=" else have[:len(want)] == want):
            return False
    return True


# ---------------------------------------------------------------------------- walking configs


def objects(node: Any) -> Iterator[Dict[str, Any]]:
    """Every serialised Keras object (a dict with a class_name) in a config tree, outer ones first."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield node
        for value in list(node.values()):
            yield from objects(value)
    elif isinstance(node, list):
        for value in list(node):
            yield from objects(value)


def _configs(saved: Saved, classes: Tuple[str, ...]) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(class name, config) of every object of these classes in the model config."""
    for obj in objects(saved.model):
        config = obj.get("config")
        if obj.get("class_name") in classes and isinstance(config, dict):
            yield str(obj["class_name"]), config


def _named(config: Dict[str, Any], class_name: str) -> str:
    return f"{config.get('name', '?')} ({class_name})"


def _drop_default(saved: Saved, classes: Tuple[str, ...], key: str, default: Any, refuse: str) -> List[str]:
    """Drop `key` from the configs of `classes` where it holds `default`; CannotAdapt where it holds another value
    (`refuse` says why the target cannot have it)."""
    done = []
    for class_name, config in _configs(saved, classes):
        if key not in config:
            continue
        if config[key] != default:
            raise CannotAdapt(f"{_named(config, class_name)} has {key}={config[key]!r}: {refuse}")
        del config[key]
        done.append(f"{_named(config, class_name)}: dropped {key}={default!r}")
    return done


# ---------------------------------------------------------------------------- the model config


def _sequential_list(saved: Saved) -> List[str]:
    """Keras 2.0/2.1 wrote a Sequential model's config as a bare list of layers; later releases a mapping."""
    done = []
    for obj in objects(saved.model):
        if obj.get("class_name") == "Sequential" and isinstance(obj.get("config"), list):
            obj["config"] = {"name": obj.get("name") or "sequential", "layers": obj["config"]}
            done.append(f"Sequential {obj['config']['name']}: its list of {len(obj['config']['layers'])} layers "
                        "became {'name': ..., 'layers': [...]}")
    return done


_RNNS = ("LSTM", "GRU", "SimpleRNN", "RNN", "CuDNNLSTM", "CuDNNGRU", "ConvLSTM2D")


def _time_major(saved: Saved) -> List[str]:
    return _drop_default(saved, _RNNS, "time_major", False, "Keras 3's RNN layers take batch-major inputs only")


# Keras 3's depthwise and separable convolutions take no `groups`; Keras 2 wrote groups=1 into their configs.
_GROUPLESS = ("DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D")


def _gru_implementation(saved: Saved) -> List[str]:
    return _drop_default(saved, ("GRU",), "implementation", 2, "Keras 3.0-3.3's GRU takes only its default, 2")


def _depthwise_groups(saved: Saved) -> List[str]:
    return _drop_default(saved, _GROUPLESS, "groups", 1, "Keras 3 has no grouped depthwise convolution")


def _policy(saved: Saved) -> List[str]:
    """Keras 2's mixed-precision Policy objects in layer configs -> the policy's name, which Keras 3 reads as a
    DTypePolicy (a dict Keras 3 reads as a Policy of its own differs between its releases; a name does not)."""
    done = []
    for obj in objects(saved.model):
        config = obj.get("config")
        if not isinstance(config, dict):
            continue
        dtype = config.get("dtype")
        if isinstance(dtype, dict) and dtype.get("class_name") == "Policy":
            name = (dtype.get("config") or {}).get("name")
            if not isinstance(name, str):
                raise CannotAdapt(f"{_named(config, str(obj['class_name']))}: a Policy without a name: {dtype!r}")
            config["dtype"] = name
            done.append(f"{_named(config, str(obj['class_name']))}: dtype Policy({name!r}) -> {name!r} "
                        "(a DTypePolicy)")
    return done


# Keras 2 .keras files name their classes by the modules of the release and package that wrote them.
_ENGINE = re.compile(r"^(tf_keras|keras)(\.src)?\.engine\.(\w+)$")
_KERAS3_MODULES = {"functional": "keras.src.models.functional", "sequential": "keras.src.models.sequential",
                   "training": "keras.src.models.model", "input_layer": "keras.layers", "base_layer": "keras.layers"}


def _modules_for(target: str) -> Callable[[str], Optional[str]]:
    def move(module: str) -> Optional[str]:
        found = _ENGINE.match(module)
        if found is None:
            return None
        if target == "keras3":
            return _KERAS3_MODULES.get(found.group(3))
        return None if found.group(1) != "keras" or found.group(2) else f"keras.src.engine.{found.group(3)}"
    return move


def _move_modules(saved: Saved, move: Callable[[str], Optional[str]]) -> List[str]:
    moved: Dict[str, str] = {}
    for obj in objects(saved.model):
        module = obj.get("module")
        new = move(module) if isinstance(module, str) else None
        if new is not None and new != module:
            moved[str(module)] = new
            obj["module"] = new
    return [f"module {old} -> {new}" for old, new in sorted(moved.items())]


def _tf_keras_modules(saved: Saved) -> List[str]:
    """tf-keras names its classes' modules tf_keras.*; Keras 2.13-2.15, whose classes they are, keras.*."""
    return _move_modules(saved, lambda m: "keras." + m[len("tf_keras."):] if m.startswith("tf_keras.") else None)


def _orthogonal(saved: Saved) -> List[str]:
    """Keras 2 and Keras 3.4+ name the orthogonal initializer 'Orthogonal'; Keras 3.0-3.3 know only
    'OrthogonalInitializer'."""
    done = 0
    for obj in objects(saved.model):
        if obj.get("class_name") == "Orthogonal":
            obj["class_name"] = "OrthogonalInitializer"
            done += 1
    return [f"{done} initializer(s) Orthogonal -> OrthogonalInitializer"] if done else []


def _modules_keras3(saved: Saved) -> List[str]:
    return _move_modules(saved, _modules_for("keras3"))


def _modules_213(saved: Saved) -> List[str]:
    return _move_modules(saved, _modules_for("keras2"))


def _renumber(weights: Weights, path: str) -> int:
    """Name a group's children as Keras 2.13+ does, base, base_1, base_2, ... per base name in their order (Keras
    2.12 numbered some of them otherwise: dense, dense_2, dense_4); how many were renamed."""
    names = weights.groups(path)
    by_base: Dict[str, List[Tuple[int, str]]] = {}
    for name in names:
        found = re.fullmatch(r"(.*?)(?:_(\d+))?", name)
        base, number = (found.group(1), int(found.group(2) or 0)) if found else (name, 0)
        by_base.setdefault(base, []).append((number, name))
    moves = {name: base if i == 0 else f"{base}_{i}" for base, items in by_base.items()
             for i, (_, name) in enumerate(sorted(items))}
    moves = {old: new for old, new in moves.items() if old != new}
    for old in moves:  # through temporary names: a new name may be another's old one
        weights.move(f"{path}/{old}", f"{path}/.{old}")
    for old, new in moves.items():
        weights.move(f"{path}/.{old}", f"{path}/{new}")
    return len(moves)


def _weights_layout_213(saved: Saved) -> List[str]:
    """Keras 2.12 kept layer weights (in a .keras archive or a .weights.h5) under _layer_checkpoint_dependencies/,
    numbered its own way; 2.13 and later read only layers/, numbered per class in order."""
    if saved.weights is None:
        return []
    done = []
    pending = [""]
    while pending:
        path = pending.pop()
        for name in saved.weights.groups(path):
            child = f"{path}/{name}" if path else name
            if name == "_layer_checkpoint_dependencies":
                new = f"{path}/layers" if path else "layers"
                saved.weights.move(child, new)
                renamed = _renumber(saved.weights, new)
                done.append(f"weights: {child}/ -> {new}/" + (f", {renamed} group(s) renumbered" if renamed else ""))
                child = new
            pending.append(child)
    return done


def _batchnorm_axis(saved: Saved) -> List[str]:
    """Keras 2 .keras and JSON configs store BatchNormalization's axis as a list; Keras 3 takes one int."""
    done = []
    for class_name, config in _configs(saved, ("BatchNormalization",)):
        axis = config.get("axis")
        if isinstance(axis, list):
            if len(axis) != 1 or not isinstance(axis[0], int):
                raise CannotAdapt(f"{_named(config, class_name)} normalises over axes {axis}: Keras 3 takes one")
            config["axis"] = axis[0]
            done.append(f"{_named(config, class_name)}: axis {axis} -> {axis[0]}")
    return done


def _batch_input_shape(saved: Saved) -> List[str]:
    """Keras 2 configs keep batch_input_shape on a layer built with input_shape=, which Keras 3's layers refuse in
    .keras and JSON configs, and its legacy .h5 loader reads as an input shape (a second batch axis): the input_shape
    it came from, which Keras 3 reads for a Sequential model's input."""
    done = []
    for obj in objects(saved.model):
        config = obj.get("config")
        if isinstance(config, dict) and obj.get("class_name") != "InputLayer" and "batch_input_shape" in config:
            shape = config.pop("batch_input_shape")
            config["input_shape"] = shape[1:] if isinstance(shape, list) else shape
            done.append(f"{_named(config, str(obj['class_name']))}: batch_input_shape {shape} -> input_shape "
                        f"{config['input_shape']}")
    return done


_MODEL_MODULES = {"Functional": "keras.src.models.functional", "Model": "keras.src.models.functional",
                  "Sequential": "keras.src.models.sequential"}


def _model_module(saved: Saved) -> List[str]:
    """A Keras 2 architecture JSON names its model's class without a module, which Keras 3 cannot locate."""
    model = saved.model
    if not isinstance(model, dict) or "module" in model or model.get("class_name") not in _MODEL_MODULES:
        return []
    model["module"] = _MODEL_MODULES[model["class_name"]]
    model["registered_name"] = model["class_name"] = {"Model": "Functional"}.get(model["class_name"],
                                                                                 model["class_name"])
    return [f"model class {model['class_name']}: module {model['module']} named"]


def _newer_keys(defaults: Dict[str, Any], classes: Optional[Tuple[str, ...]] = None) -> Edit:
    """Drop keys a newer Keras 3 release writes into configs (of `classes`, or of any object), where they hold their
    default (an older release refuses the keywords); CannotAdapt where one holds something else, which the older
    release cannot express."""
    def edit(saved: Saved) -> List[str]:
        found: Dict[Tuple[str, str], int] = {}
        for obj in objects(saved.model):
            config = obj.get("config")
            if not isinstance(config, dict) or (classes is not None and obj.get("class_name") not in classes):
                continue
            for key in [k for k in defaults if k in config]:
                if config[key] != defaults[key]:
                    raise CannotAdapt(f"{_named(config, str(obj['class_name']))} has {key}={config[key]!r}, which "
                                      "the older release cannot express")
                del config[key]
                found[(key, str(obj["class_name"]))] = found.get((key, str(obj["class_name"])), 0) + 1
        return [f"dropped {key}={defaults[key]!r} from {n} {name} config(s)"
                for (key, name), n in sorted(found.items())]
    return edit


# ---------------------------------------------------------------------------- the compile config

# The arguments Keras 3's optimizers take; anything else in a Keras 2 optimizer config is refused by them.
_COMMON = ("name", "learning_rate", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema",
           "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps")
OPTIMIZER_ARGS: Dict[str, Tuple[str, ...]] = {
    "Adam": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "AdamW": ("beta_1", "beta_2", "epsilon", "amsgrad"),
    "Adamax": ("beta_1", "beta_2", "epsilon"),
    "Nadam": ("beta_1", "beta_2", "epsilon"),
    "RMSprop": ("rho", "momentum", "epsilon", "centered"),
    "SGD": ("momentum", "nesterov"),
    "Adagrad": ("initial_accumulator_value", "epsilon"),
    "Adadelta": ("rho", "epsilon"),
    "Ftrl": ("learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
             "l2_regularization_strength", "l2_shrinkage_regularization_strength", "beta"),
}
# Keys Keras 2.11+ wrote that say nothing about the optimization itself.
_BOOKKEEPING = ("is_legacy_optimizer", "jit_compile")


def _optimizer_slot(compile_config: Dict[str, Any]) -> Tuple[str, Any]:
    """Where a compile config keeps its optimizer: .h5 training_config['optimizer_config'], .keras ['optimizer']."""
    key = "optimizer_config" if "optimizer_config" in compile_config else "optimizer"
    return key, compile_config.get(key)


def _call(class_name: str, config: Dict[str, Any]) -> str:
    """An optimizer config as the call that made it: 'Adam(lr=0.0001, beta_1=0.9)' (unset arguments left out)."""
    def value(v: Any) -> str:
        inner = v.get("config") if isinstance(v, dict) else None
        return _call(str(v["class_name"]), inner) if isinstance(inner, dict) and "class_name" in v else repr(v)

    args = ", ".join(f"{k}={value(v)}" for k, v in config.items() if k != "name" and v is not None and v is not False)
    return f"{class_name}({args})"


def _drop_compile(saved: Saved, why: str) -> List[str]:
    saved.compile = None
    return [f"dropped compile config: {why}; compile again in code"]


def _keras2_optimizer(saved: Saved) -> List[str]:
    """lr -> learning_rate; decay -> an InverseTimeDecay schedule (the legacy decay's formula); the bookkeeping keys
    Keras 3 refuses dropped. An optimizer Keras 3 has no counterpart of: the compile config is dropped, and said so."""
    if not isinstance(saved.compile, dict):
        return []
    key, optimizer = _optimizer_slot(saved.compile)
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("config"), dict):
        return []
    class_name = str(optimizer.get("class_name", "")).split(">")[-1]
    config: Dict[str, Any] = optimizer["config"]
    before = _call(class_name, config)
    known = OPTIMIZER_ARGS.get(class_name)
    if known is None:
        return _drop_compile(saved, f"Keras 2 optimizer {before} has no Keras 3 counterpart")
    new = dict(config)
    done = []
    if "lr" in new:
        lr = new.pop("lr")
        new.setdefault("learning_rate", lr)
        done.append(f"lr={lr!r} -> learning_rate")
    decay = new.pop("decay", None)
    if decay:
        new["learning_rate"] = {"module": "keras.optimizers.schedules", "class_name": "InverseTimeDecay",
                                "config": {"initial_learning_rate": new.get("learning_rate", 0.001),
                                           "decay_steps": 1, "decay_rate": decay, "staircase": False},
                                "registered_name": None}
        done.append(f"decay={decay!r} -> learning_rate InverseTimeDecay(decay_steps=1, decay_rate={decay!r}), "
                    "the legacy decay's formula")
    elif decay is not None:
        done.append(f"dropped decay={decay!r}")
    for name in sorted(set(new) - set(_COMMON) - set(known)):
        value = new.pop(name)
        if name not in _BOOKKEEPING and value not in (None, False, 0, 0.0):
            return _drop_compile(saved, f"Keras 2 optimizer {before}: Keras 3's {class_name} has no {name}")
        done.append(f"dropped {name}={value!r}")
    if optimizer.get("class_name") != class_name:
        done.append(f"class {optimizer.get('class_name')} -> {class_name}")
    if not done:
        return []
    saved.compile[key] = dict(optimizer, class_name=class_name, config=new)
    return [f"optimizer {before}: " + "; ".join(done)]


# Keras 2.13-2.15 .keras compile configs leave these unset (None); Keras 3 takes None for none of them.
_KERAS2_COMPILE_OPTIONS = ("steps_per_execution", "run_eagerly", "jit_compile")


def _compile_options(saved: Saved) -> List[str]:
    """Compile options a Keras 2 .keras file left unset -> Keras 3's defaults (steps_per_execution=None fails there)."""
    if not isinstance(saved.compile, dict):
        return []
    unset = [k for k in _KERAS2_COMPILE_OPTIONS if k in saved.compile and saved.compile[k] is None]
    for key in unset:
        del saved.compile[key]
    return [f"dropped {key}=None (Keras 3's default instead)" for key in unset]


def _metric_wrappers(saved: Saved) -> List[str]:
    """Keras 2 .h5 files keep compiled metrics as MeanMetricWrapper objects around a function's name, which Keras 3
    cannot rebuild: the function's name, which it can."""
    done: List[str] = []

    def unwrap(node: Any) -> Any:
        if isinstance(node, list):
            return [unwrap(n) for n in node]
        if isinstance(node, dict) and node.get("class_name") == "MeanMetricWrapper":
            fn = (node.get("config") or {}).get("fn")
            if isinstance(fn, str):
                done.append(f"metric MeanMetricWrapper(fn={fn!r}) -> {fn!r}")
                return fn
        if isinstance(node, dict) and "class_name" not in node:
            return {k: unwrap(v) for k, v in node.items()}
        return node

    if isinstance(saved.compile, dict):
        for key in ("metrics", "weighted_metrics"):
            if saved.compile.get(key) is not None:
                saved.compile[key] = unwrap(saved.compile[key])
                done += _one_output(saved, key)
    return done


def _loss_objects(saved: Saved) -> List[str]:
    """Keras 2 loss objects (MeanSquaredError(), ...) store the function they wrap (fn) and reduction='auto'; Keras 3's
    take neither: the function is the class's own, and 'sum_over_batch_size' is what 'auto' meant."""
    losses = (saved.compile or {}).get("loss") if isinstance(saved.compile, dict) else None
    done = []
    for obj in objects(losses):
        config = obj.get("config")
        if not isinstance(config, dict) or ("fn" not in config and config.get("reduction") != "auto"):
            continue
        fn = config.pop("fn", None)
        if config.get("reduction") == "auto":
            config["reduction"] = "sum_over_batch_size"
        done.append(f"loss {obj.get('class_name')}: " + ", ".join(
            ([f"dropped fn={fn!r} (the class's own)"] if fn else [])
            + (["reduction 'auto' -> 'sum_over_batch_size'"] if config.get("reduction") == "sum_over_batch_size"
               else [])))
    return done


def _one_output(saved: Saved, key: str) -> List[str]:
    """A single-output model's metrics as one flat list: Keras 2 wrote one list per output, and Keras 3 before 3.15
    takes a list of lists for a model of several outputs only."""
    value = (saved.compile or {}).get(key)
    model: Dict[str, Any] = saved.model if isinstance(saved.model, dict) else {}
    config = model.get("config")
    outputs = config.get("output_layers") if isinstance(config, dict) else None
    single = model.get("class_name") == "Sequential" or (isinstance(outputs, list) and len(outputs) == 1)
    if not (single and isinstance(value, list) and len(value) == 1 and isinstance(value[0], list)):
        return []
    assert saved.compile is not None
    saved.compile[key] = value[0]
    return [f"{key} [{value[0]!r}] of the one output -> {value[0]!r}"]


# ---------------------------------------------------------------------------- weights


def _gates(kernel: Any, n: int, transform: Callable[[Any], Any]) -> Any:
    import numpy as np

    return np.hstack([transform(k) for k in np.hsplit(kernel, n)])


def _from_cudnn(kernel: Any) -> Any:
    # CuDNN stores each gate's input kernel in column-major order (Keras 2's _convert_rnn_weights, from_cudnn=True).
    return kernel.T.reshape(kernel.shape, order="F")


def cudnn_to_keras(arrays: List[Any]) -> Optional[List[Any]]:
    """One RNN layer's [kernel, recurrent kernel, bias] in CuDNNLSTM/CuDNNGRU layout as LSTM/GRU(reset_after=True)
    take them (what Keras 2 did when it loaded them); None when they are not in that layout."""
    import numpy as np

    if len(arrays) != 3:
        return None
    kernel, recurrent, bias = (np.asarray(a) for a in arrays)
    if recurrent.ndim != 2 or bias.ndim != 1 or recurrent.shape[0] == 0:
        return None
    units = recurrent.shape[0]
    gates = recurrent.shape[1] // units
    if gates not in (3, 4) or recurrent.shape[1] != gates * units or bias.shape != (2 * gates * units,):
        return None
    kernel = _gates(kernel, gates, _from_cudnn)
    recurrent = _gates(recurrent, gates, lambda k: k.T)
    # LSTM adds the input and recurrent biases; GRU(reset_after=True) keeps both, one row each.
    bias = np.sum(np.split(bias, 2), axis=0) if gates == 4 else bias.reshape(2, -1)
    return [kernel, recurrent, bias]


_CUDNN_CLASSES = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}
# What a CuDNN layer computed, as the plain layer's arguments (CuDNN's fixed activations, GRU's reset_after).
_CUDNN_FIXED = {"LSTM": {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True},
                "GRU": {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
                        "reset_after": True}}


def _cudnn_classes(saved: Saved) -> List[str]:
    done = []
    for obj in objects(saved.model):
        plain = _CUDNN_CLASSES.get(str(obj.get("class_name")))
        if plain is not None and isinstance(obj.get("config"), dict):
            obj["class_name"] = plain
            obj["config"].update(_CUDNN_FIXED[plain])
            done.append(f"{_named(obj['config'], plain)}: class CuDNN{plain} -> {plain} with CuDNN's activations")
    return done


def _cudnn_weights(saved: Saved) -> List[str]:
    """CuDNN-era RNN weights (a bias of 2 x gates x units, kernels in CuDNN's layout) -> LSTM's / GRU's layout."""
    done = _cudnn_classes(saved) if saved.model is not None else []
    if saved.weights is None:
        return done
    for layer in saved.weights.layers():
        arrays = saved.weights.get(layer)
        converted: List[Any] = []
        kinds = []
        for start in range(0, len(arrays), 3):  # a Bidirectional layer holds two RNNs' weights
            group = arrays[start:start + 3]
            new = cudnn_to_keras(group)
            converted += new if new is not None else group
            if new is not None:
                kinds.append("LSTM (kernels re-laid per gate, the two biases summed)" if new[2].ndim == 1
                             else "GRU(reset_after=True) (kernels re-laid per gate, the biases as two rows)")
        if kinds:
            saved.weights.set(layer, converted)
            done += [f"{layer}: CuDNN-layout weights -> {kind}" for kind in kinds]
    return done


# ---------------------------------------------------------------------------- TFOpLambda

# Keras 2 wraps raw TensorFlow calls on Keras tensors in TFOpLambda layers; Keras 3 has none. Each op below has a
# Keras 3 layer computing the same numbers; another op cannot be adapted.
_ACTIVATIONS = {"nn.relu": "relu", "math.sigmoid": "sigmoid", "nn.sigmoid": "sigmoid", "math.tanh": "tanh",
                "nn.tanh": "tanh", "nn.softmax": "softmax", "nn.elu": "elu", "nn.selu": "selu",
                "nn.gelu": "gelu", "nn.silu": "silu", "nn.swish": "silu"}
_SCALARS = {"__operators__.add": "add", "math.add": "add", "__operators__.sub": "subtract",
            "math.subtract": "subtract", "math.multiply": "multiply", "__operators__.mul": "multiply",
            "math.truediv": "divide", "__operators__.truediv": "divide"}
_MERGES = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply"}


def _node(inbound: Any) -> List[Any]:
    """A TFOpLambda's one call: [[producer, node, tensor, kwargs], ...], whichever way Keras 2 nested it."""
    if not isinstance(inbound, list) or len(inbound) != 1:
        raise CannotAdapt(f"a TFOpLambda called {len(inbound) if isinstance(inbound, list) else '?'} times")
    node = inbound[0]
    return [node] if node and isinstance(node[0], str) else list(node)


def _plain(refs: List[Any]) -> List[List[Any]]:
    return [[ref[0], ref[1], ref[2], {}] for ref in refs]


def _layer(layer: Dict[str, Any], class_name: str, config: Dict[str, Any], refs: List[Any]) -> None:
    """Turn a TFOpLambda entry of a model config into a Keras layer of the same name, called on the same tensors."""
    name = layer["config"]["name"]
    layer["class_name"] = class_name
    layer["config"] = {"name": name, "trainable": True, "dtype": layer["config"].get("dtype", "float32"), **config}
    layer["inbound_nodes"] = [_plain(refs)]


def _width(layers: Dict[str, Dict[str, Any]], name: str) -> Optional[int]:
    """The last dimension of a layer's output, where its config says it."""
    layer = layers.get(name) or {}
    config = layer.get("config") or {}
    if layer.get("class_name") == "Dense":
        return int(config["units"])
    shape = config.get("batch_input_shape") or config.get("batch_shape")
    return int(shape[-1]) if isinstance(shape, list) and shape and isinstance(shape[-1], int) else None


def _slice(layers: Dict[str, Dict[str, Any]], layer: Dict[str, Any], refs: List[Any]) -> Tuple[str, Any]:
    """x[:, a:b] on the last axis of a 2-D tensor -> Dense without bias whose fixed 0/1 kernel selects those
    columns: the same numbers, exactly (each output is one input times 1 plus the others times 0)."""
    import numpy as np

    spec = refs[0][3].get("slice_spec") if isinstance(refs[0][3], dict) else None
    width = _width(layers, refs[0][0])
    full = {"start": None, "stop": None, "step": None}
    if not (isinstance(spec, list) and len(spec) == 2 and spec[0] == full and isinstance(spec[1], dict)
            and spec[1].get("step") in (None, 1) and width is not None):
        raise CannotAdapt(f"{layer['config']['name']}: a slice {spec!r} of {refs[0][0]} other than x[:, a:b] on a "
                          "2-D tensor of known width has no Keras 3 layer")
    columns = list(range(width))[slice(spec[1].get("start"), spec[1].get("stop"))]
    kernel: Any = np.zeros((width, len(columns)), dtype="float32")
    kernel[columns, list(range(len(columns)))] = 1.0
    _layer(layer, "Dense", {"units": len(columns), "activation": "linear", "use_bias": False}, refs)
    layer["config"]["trainable"] = False
    return f"x[:, {spec[1].get('start') or ''}:{spec[1].get('stop') or ''}] -> Dense({len(columns)}, use_bias=False, " \
           f"trainable=False) selecting columns {columns[0]}..{columns[-1]} of {width}", kernel


def _op(layer: Dict[str, Any], refs: List[Any]) -> str:
    function = str(layer["config"].get("function"))
    kwargs: Dict[str, Any] = refs[0][3] if isinstance(refs[0][3], dict) else {}
    if function in _ACTIVATIONS and len(refs) == 1:
        _layer(layer, "Activation", {"activation": _ACTIVATIONS[function]}, refs)
        return f"tf.{function} -> Activation({_ACTIVATIONS[function]!r})"
    if function == "concat":
        axis = kwargs.get("axis", -1)
        _layer(layer, "Concatenate", {"axis": axis}, refs)
        return f"tf.concat -> Concatenate(axis={axis})"
    op = _SCALARS.get(function)
    other = kwargs.get("y")
    if isinstance(other, list) and len(other) == 3 and isinstance(other[0], str):  # y is another layer's tensor
        refs, other = [refs[0], [*other, {}]], None
    if op is not None and len(refs) == 1 and isinstance(other, (int, float)) and not isinstance(other, bool):
        if op == "divide" and other == 0:
            raise CannotAdapt(f"{layer['config']['name']}: a division by zero")
        scale, offset = {"add": (1.0, other), "subtract": (1.0, -other), "multiply": (other, 0.0),
                         "divide": (1.0 / other, 0.0)}[op]
        _layer(layer, "Rescaling", {"scale": scale, "offset": offset}, refs)
        return f"tf.{function}(x, {other!r}) -> Rescaling(scale={scale!r}, offset={offset!r})"
    if op in _MERGES and len(refs) == 2:
        _layer(layer, _MERGES[op], {}, refs)
        return f"tf.{function}(x, y) -> {_MERGES[op]}()"
    raise CannotAdapt(f"layer {layer['config']['name']!r} calls tf.{function}({', '.join(sorted(kwargs))}): no Keras 3 "
                      "layer the adapter knows computes it")


def _tf_op_lambda(saved: Saved) -> List[str]:
    done = []
    for model in objects(saved.model):
        config = model.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            continue
        layers = {str(layer.get("name")): layer for layer in config["layers"] if isinstance(layer, dict)}
        for layer in config["layers"]:
            kind = layer.get("class_name") if isinstance(layer, dict) else None
            if kind not in ("TFOpLambda", "SlicingOpLambda"):
                continue
            refs = _node(layer.get("inbound_nodes"))
            if kind == "SlicingOpLambda":
                words, kernel = _slice(layers, layer, refs)
                if saved.weights is None:
                    raise CannotAdapt(f"{layer['name']}: the selecting kernel needs the file's weights")
                saved.weights.give(str(layer["name"]), [f"{layer['name']}/kernel:0"], [kernel])
            else:
                words = _op(layer, refs)
            done.append(f"{layer['name']}: {words}")
    return done


# ---------------------------------------------------------------------------- the table

_KERAS2_FILES = (H5, KERAS, JSON)
ADAPTERS: Tuple[Adapter, ...] = (
    # Upwards, in version order: within Keras 2, then Keras 2 -> 3.
    Adapter("sequential-list-config", "keras2-sequential-list", "<2.2", ">=3", (MODEL,), (H5, JSON),
            "a Keras 2.0/2.1 Sequential config (a bare list of layers) -> {'name', 'layers'}", _sequential_list),
    Adapter("keras-2.13-module-paths", "keras2-module-move", "<2.13", ">=2.13,<3", (MODEL,), (KERAS,),
            "keras.engine.* module paths of a Keras 2.12 .keras file -> keras.src.engine.*", _modules_213),
    Adapter("keras-2.13-weights-layout", "weights-layout-2.13", "<2.13", ">=2.13,<3", (WEIGHTS,),
            (KERAS, KERAS_WEIGHTS),
            "Keras 2.12 weights (a .keras archive's, a .weights.h5) under _layer_checkpoint_dependencies/ -> layers/, "
            "numbered as 2.13 numbers them", _weights_layout_213),
    Adapter("orthogonal-name", "keras2-file-in-keras3", "<3", "3,<3.4", (MODEL,), _KERAS2_FILES,
            "the initializer Orthogonal -> OrthogonalInitializer, the name Keras 3.0-3.3 know", _orthogonal),
    Adapter("gru-implementation", "keras2-file-in-keras3", "<3", "3,<3.4", (MODEL,), _KERAS2_FILES,
            "drop implementation=2 (its default) from GRU configs, which Keras 3.0-3.3's GRU refuses",
            _gru_implementation),
    Adapter("keras3-module-paths", "keras2-module-move", "<3", ">=3", (MODEL,), (KERAS,),
            "Keras 2 .keras module paths (keras.engine, keras.src.engine, tf_keras.src.engine) -> Keras 3's",
            _modules_keras3),
    Adapter("depthwise-groups", "depthwise-groups", "<3", ">=3", (MODEL,), _KERAS2_FILES,
            "drop groups=1 from DepthwiseConv and SeparableConv configs", _depthwise_groups),
    Adapter("rnn-time-major", "rnn-time-major", "<3", ">=3", (MODEL,), _KERAS2_FILES,
            "drop time_major=False from RNN configs", _time_major),
    Adapter("mixed-precision-policy", "keras2-mixed-precision", "<3", ">=3", (MODEL,), _KERAS2_FILES,
            "a Keras 2 mixed-precision Policy -> its name, a Keras 3 DTypePolicy", _policy),
    Adapter("model-class-module", "keras2-file-in-keras3", "<3", ">=3", (MODEL,), (JSON,),
            "name the module of a Keras 2 architecture JSON's model class", _model_module),
    Adapter("batchnorm-axis", "keras2-list-axis", "<3", ">=3", (MODEL,), (KERAS, JSON),
            "BatchNormalization axis [n] -> n", _batchnorm_axis),
    Adapter("batch-input-shape", "keras2-batch-input-shape", "<3", ">=3", (MODEL,), _KERAS2_FILES,
            "batch_input_shape on a layer other than an InputLayer -> the input_shape it came from",
            _batch_input_shape),
    Adapter("tf-op-lambda-layers", "tf-op-lambda", ">=2.4,<3", ">=3", (MODEL, WEIGHTS), (H5,),
            "TFOpLambda/SlicingOpLambda -> the Keras 3 layer computing the same numbers (Activation, Concatenate, "
            "Rescaling, Add, a column-selecting Dense), else cannot be adapted", _tf_op_lambda),
    Adapter("cudnn-rnn-weights", "cudnn-rnn-weights", "<3", ">=3", (MODEL, WEIGHTS), (H5, WEIGHTS_H5),
            "CuDNNLSTM/CuDNNGRU weights (bias of 2 x gates x units) -> LSTM/GRU(reset_after=True) layout, as Keras 2 "
            "converted them on load", _cudnn_weights),
    Adapter("keras2-optimizer", "keras2-compile-config", "<3", ">=3", (COMPILE,), (H5, KERAS),
            "a Keras 2 optimizer config: lr -> learning_rate, decay -> InverseTimeDecay, keys Keras 3 refuses dropped "
            "(else the compile config dropped, and said so)", _keras2_optimizer),
    Adapter("keras2-compile-options", "keras2-compile-config", "<3", ">=3", (COMPILE,), (KERAS,),
            "compile options a Keras 2 .keras file left unset (steps_per_execution=None, ...) -> Keras 3's defaults",
            _compile_options),
    Adapter("keras2-loss-objects", "keras2-compile-config", "<3", ">=3", (COMPILE,), (H5, KERAS),
            "Keras 2 loss objects: fn dropped (the class's own), reduction 'auto' -> 'sum_over_batch_size'",
            _loss_objects),
    Adapter("keras2-metric-wrappers", "keras2-compile-config", "<3", ">=3", (COMPILE,), (H5,),
            "MeanMetricWrapper(fn=name) metrics -> the metric's name", _metric_wrappers),
    # Downwards, newest step first: a newer Keras 3 minor's file for an older one, tf-keras's for Keras 2.13-2.15.
    Adapter("initializer-axes", "newer-keras-config", ">=3.15", "3,<3.15", (MODEL,), _KERAS2_FILES,
            "drop input_axes=None and output_axes=None (Keras 3.15) from initializer configs",
            _newer_keys({"input_axes": None, "output_axes": None})),
    Adapter("batchnorm-renorm", "newer-keras-config", ">=3.14", "3,<3.14", (MODEL,), _KERAS2_FILES,
            "drop renorm=False and its default settings (Keras 3.14) from BatchNormalization configs",
            _newer_keys({"renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99}, ("BatchNormalization",))),
    Adapter("quantization-config", "newer-keras-config", ">=3.13", "3,<3.13", (MODEL,), _KERAS2_FILES,
            "drop quantization_config=None (Keras 3.13) from layer configs",
            _newer_keys({"quantization_config": None})),
    Adapter("orthogonal-name-3.4", "newer-keras-config", ">=3.4", "3,<3.4", (MODEL,), _KERAS2_FILES,
            "the initializer Orthogonal (Keras 3.4+) -> OrthogonalInitializer, the name Keras 3.0-3.3 know",
            _orthogonal),
    Adapter("tf-keras-module-paths", "keras2-module-move", ">=2.16,<3", ">=2.13,<2.16", (MODEL,), (KERAS,),
            "tf-keras module paths (tf_keras.src.*) -> keras.src.*, Keras 2.13-2.15's", _tf_keras_modules),
)


def chain(source: Optional[str], target: Optional[str], layout: str) -> List[Adapter]:
    """The adapters that take a file of this layout from the Keras that wrote it to the target's, in order."""
    return [a for a in ADAPTERS if a.fits(source, target, layout)]


def adapt(saved: Saved, target: Optional[str]) -> List[Dict[str, Any]]:
    """Run the chain on a saved model in place: one entry per adapter that changed something (name, cause, edits);
    the last entry has `cannot` (and no edits) when an adapter found its change but could not make it."""
    done: List[Dict[str, Any]] = []
    for adapter in chain(saved.keras, target, saved.layout):
        try:
            edits = adapter.edit(saved)
        except CannotAdapt as exc:
            done.append({"adapter": adapter.name, "cause": adapter.cause, "edits": [], "cannot": str(exc)})
            break
        if edits:
            done.append({"adapter": adapter.name, "cause": adapter.cause, "edits": edits})
    return done
