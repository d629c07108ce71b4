"""Known causes of load failures: an error, and where it happened, -> a hint naming cause and fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class HintContext:
    """Where an error happened: the Keras versions on both sides, the format and loader."""

    source_keras: str | None = None
    target_keras: str | None = None
    format: str | None = None
    loader: str | None = None
    status: str | None = None

    def majors(self) -> tuple[int | None, int | None]:
        """(source, target) Keras major versions, None when unknown."""
        return _major(self.source_keras), _major(self.target_keras)

    def newer_source(self) -> bool:
        """The file was written by a newer Keras of the same generation than the one loading it."""
        src, tgt = _version(self.source_keras), _version(self.target_keras)
        return bool(src and tgt and src[0] == tgt[0] and src > tgt)


def _version(text: str | None) -> tuple[int, ...]:
    parts = re.findall(r"\d+", text or "")[:3]
    return tuple(int(p) for p in parts)


def _major(text: str | None) -> int | None:
    version = _version(text)
    return version[0] if version else None


@dataclass(frozen=True)
class Rule:
    """A named cause: a pattern over 'Type: message', an optional condition on the context, and the hint."""

    name: str
    pattern: str
    hint: str
    when: Callable[[HintContext | None], bool] | None = None


def _k2_to_k3(ctx: HintContext | None) -> bool:
    return ctx is not None and ctx.majors() == (2, 3)


def _k3_to_k2(ctx: HintContext | None) -> bool:
    return ctx is not None and ctx.majors() == (3, 2)


def _checkpoint(ctx: HintContext | None) -> bool:
    return ctx is not None and ctx.format == "tf_checkpoint"


def _different_keras(ctx: HintContext | None) -> bool:
    return ctx is not None and ctx.source_keras != ctx.target_keras


def _newer_source(ctx: HintContext | None) -> bool:
    return ctx is not None and ctx.newer_source()


def _generation_unknown_or_crossed(ctx: HintContext | None) -> bool:
    # A module path names the writer's Keras generation; within one generation it says nothing.
    if ctx is None:
        return True
    source, target = ctx.majors()
    return source is None or target is None or source != target


DESERIALIZE = (r"Could not (locate|deserialize)|could not be deserialized|Unknown (layer|loss|metric|object)|"
               r"Could not interpret \w+ identifier")
NEWER = ("written by a more recent Keras release than the one loading it: its config holds what this "
         "version does not know; load it with that release or later, or rebuild the model in code + load_weights")

RULES = (
    Rule("lambda-bytecode",
         r"bad marshal data|unknown opcode|code\(\) (argument|takes)|SystemError.*(code|lambda)|marshal",
         "Lambda layer bytecode from another Python version: rebuild the layer in code, or save weights only"),
    Rule("lambda-safe-mode",
         r"deserialization of a `?Lambda`? layer|safe_mode|unsafe deserialization",
         "Keras safe_mode refused a Lambda layer: rebuild it in code, or pass safe_mode=False for a trusted file"),
    Rule("optimizer-config",
         r"Argument\(s\) not recognized: \{'(lr|decay)'|Could not interpret optimizer",
         "the file's training config holds an optimizer this Keras cannot rebuild (e.g. lr= of old Keras): "
         "load_model(path, compile=False) keeps the weights; compile again in code"),
    Rule("signature-inputs-by-name",
         r"too many positional arguments|Binding inputs to tf\.function failed",
         "the serving signature takes its inputs by name: call it with a dict of named inputs"),
    Rule("tfsm-layer-int-inputs",
         r"expected to be a int\d* tensor but is a float tensor",
         "TFSMLayer cast integer inputs to float32: create it with dtype='int32' for token inputs, or call the "
         "serving signature directly"),
    Rule("keras3-reads-tf-checkpoint",
         r"File format not supported.*(\.weights\.h5|V1/V2 `?\.h5)",
         "Keras 3 load_weights reads only .weights.h5 and legacy .h5: a TensorFlow checkpoint from Keras 2 needs "
         "tf-keras, or re-save the weights as .weights.h5 where they load", _checkpoint),
    Rule("weights-layout-changed",
         r"expected \d+ variables|objects could not be loaded|Layer count mismatch|axes don't match|shape mismatch",
         "the weights file's layout differs between the Keras that wrote it and the one reading it: load it with "
         "the writer's Keras release, or move the weights through a full-model file", _different_keras),
    Rule("keras2-h5-metrics",
         r"Expected all entries in the `metrics` list to be metric objects",
         "the compile() metrics stored in a Keras 2 h5 do not deserialize in Keras 3: load with compile=False and "
         "compile again with explicit metrics"),
    Rule("savedmodel-without-keras",
         r"_UserObject|Unable to create a (TF-)?Keras model from SavedModel",
         "this SavedModel holds no Keras model config (written by model.export or tf.saved_model.save): "
         "load it with tf.saved_model.load and call its serving signature"),
    Rule("lambda-output-shape",
         r"infer the shape of the Lambda|Lambda.*output_shape",
         "a Lambda layer whose output shape this Keras cannot infer: give the Lambda an output_shape, "
         "or rebuild the layer in code"),
    Rule("keras3-load-model-savedmodel",
         r"File format not supported|legacy SavedModel|TFSMLayer",
         "Keras 3 load_model cannot read a SavedModel: use keras.layers.TFSMLayer, or re-export the model as .keras"),
    Rule("keras2-file-in-keras3",
         DESERIALIZE + r"|keras\.(src\.)?engine|Unrecognized keyword",
         "written by Keras 2: Keras 3 cannot rebuild its config; load it with tf-keras (TF_USE_LEGACY_KERAS=1), "
         "or rebuild the model in code + load_weights", _k2_to_k3),
    Rule("keras3-file-in-keras2",
         DESERIALIZE + r"|keras\.src\.models|Unrecognized keyword|batch_shape",
         "written by Keras 3: Keras 2 cannot read it; load it with Keras 3, or rebuild in code + load_weights",
         _k3_to_k2),
    Rule("newer-keras-config",
         r"Unrecognized keyword|unexpected keyword|takes \d+ positional arguments? but \d+ were given|"
         + DESERIALIZE, NEWER, _newer_source),
    Rule("keras2-module-path",
         r"keras\.src\.engine|No module named 'keras\.(src\.)?engine'|keras\.engine",
         "written by Keras 2 (keras.engine): load it with tf-keras (TF_USE_LEGACY_KERAS=1), or rebuild + load_weights",
         _generation_unknown_or_crossed),
    Rule("keras3-module-path",
         r"keras\.src\.models",
         "written by Keras 3 (keras.src.models): Keras 2 cannot read it; load it with Keras 3, or save weights",
         _generation_unknown_or_crossed),
    Rule("custom-object-unknown",
         DESERIALIZE + r"|string indices must be integers|'str' object is not callable",
         "custom object not known at load time: pass custom_objects, or register it with "
         "register_keras_serializable in the loading process"),
    Rule("h5py3-str-attrs",
         r"'str' object has no attribute 'decode'",
         "h5py >= 3 returns str where old Keras expects bytes: pin h5py<3 for this Keras"),
    Rule("weights-mismatch",
         r"Layer count mismatch|axes don't match|shape mismatch|Shapes .* are incompatible|expected \d+ variables",
         "weights do not fit the rebuilt architecture: the model code changed between save and load"),
    Rule("unknown-layer-arguments",
         r"Unrecognized keyword arguments|unexpected keyword argument",
         "the layer config holds arguments this Keras does not know: written by a newer Keras"),
    Rule("artifact-unreadable",
         r"No file or directory found|Unable to (open|synchronously open) file|not a zip file|BadZipFile|"
         r"not an hdf5|file signature not found",
         "the artifact is missing or truncated, or not in the format its name says"),
    Rule("artifact-changed",
         r"ArtifactChanged",
         "the file is not the one that was saved (its sha256 differs): it was modified or corrupted after the "
         "save; run the save phase again and find what touched it"),
    Rule("sandbox-breach",
         r"SANDBOX BREACH",
         "the artifact escaped the sandbox while loading: treat the file as hostile and report the sandbox gap"),
    Rule("sandbox-refused",
         r"network blocked|writes blocked",
         "loading the artifact tried to reach the network or write outside its output folder, and the sandbox "
         "refused: treat the file as hostile"),
    Rule("worker-oom",
         r"WorkerCrash.*SIGKILL", "the loading process was killed, most likely out of memory: raise the memory limit"),
    Rule("worker-native-crash",
         r"WorkerCrash.*SIG(SEGV|ABRT|BUS|ILL)",
         "the loading process crashed in native code: a TensorFlow/h5py binary incompatibility or a hostile file"),
    Rule("worker-died",
         r"WorkerCrash", "the loading process died: see the container log"),
    Rule("load-timeout",
         r"Timeout", "no result within the per-load timeout: the load hangs, or the timeout is too short"),
)


def match(error_type: str, message: str, context: HintContext | None = None) -> Rule | None:
    """The first rule whose pattern and condition fit an error, or None when the cause is unknown."""
    text = f"{error_type}: {message}"
    for rule in RULES:
        if rule.when is not None and not rule.when(context):
            continue
        if re.search(rule.pattern, text, flags=re.IGNORECASE | re.DOTALL):
            return rule
    return None


def hint_for(error_type: str, message: str, context: HintContext | None = None) -> str | None:
    """The hint of the first matching rule, or None when the cause is unknown."""
    rule = match(error_type, message, context)
    return rule.hint if rule else None
