"""Known causes of failed cells: an error, and the cell it happened in, -> the rule naming cause and fix.

A rule states the cells its advice holds for (which Keras wrote the file and which one loads it,
the loader, the format, the cell's status, whether the model's custom objects were passed), and a
fact the context does not know never satisfies it: a hint is right for its cell, or absent. Rules
are tried in order; the first that applies names the cause, so the more specific causes come first.
Every rule is tested against error messages recorded from real runs (tests/unit/fixtures/).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.agent.protocol import LOADERS


@dataclass(frozen=True)
class HintContext:
    """The cell an error happened in; None where a fact is unknown."""

    source_keras: str | None = None  # the Keras release that wrote the file, e.g. "2.15.0"
    target_keras: str | None = None  # the Keras release loading it
    format: str | None = None
    loader: str | None = None
    status: str | None = None  # error, crash, timeout, unsupported, or skipped (the save failed)
    source_python: str | None = None  # e.g. "3.9.2"
    target_python: str | None = None
    custom_objects: str | None = None  # "passed" to the loader, "withheld" from it, or "none" (the model has none)


def _version(text: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"[0-9]{1,9}", text or "")[:3])  # a version read from a file: bounded


def fits(version: str | None, spec: str) -> bool:
    """Whether a known version fits a spec: "2" (any 2.x), "2.12" (any 2.12.x), "<2.13" or ">=2.13"."""
    parsed = re.fullmatch(r"(<|>=)?(\d+(?:\.\d+)*)", spec)
    if parsed is None:
        raise ValueError(f"not a version spec: {spec!r}")
    op, want = parsed[1], tuple(int(p) for p in parsed[2].split("."))
    have = _version(version)
    if not have:
        return False
    if op == "<":
        return have < want
    if op == ">=":
        return have >= want
    return have[: len(want)] == want


def _same_keras(ctx: HintContext) -> bool:
    return bool(_version(ctx.source_keras)) and _version(ctx.source_keras) == _version(ctx.target_keras)


def _newer_source(ctx: HintContext) -> bool:
    source, target = _version(ctx.source_keras), _version(ctx.target_keras)
    return bool(source and target) and source[0] == target[0] and source > target


def _older_source(ctx: HintContext) -> bool:
    source, target = _version(ctx.source_keras), _version(ctx.target_keras)
    return bool(source and target) and source[0] == target[0] and source < target


def _python_differs(ctx: HintContext) -> bool:
    # Bytecode changes between minor Python versions, never between patch releases.
    source, target = _version(ctx.source_python)[:2], _version(ctx.target_python)[:2]
    return bool(source and target) and source != target


def _crosses_2_13(ctx: HintContext) -> bool:
    """One side is Keras 2.12 or older and the other 2.13 or newer (the .weights.h5 layout changed)."""
    sides = (ctx.source_keras, ctx.target_keras)
    return any(fits(a, "<2.13") and fits(b, ">=2.13") for a, b in (sides, sides[::-1]))


def _target_before(release: str) -> Callable[[HintContext], bool]:
    """Whether the loading Keras is a Keras 3 release before `release` ("3.5")."""
    return lambda ctx: fits(ctx.target_keras, "3") and fits(ctx.target_keras, "<" + release)


def _module_move(ctx: HintContext) -> bool:
    """A Keras 2 file read by another Keras release (Keras 3 included), or a file of Keras 2.12 or older read by any
    later Keras."""
    other = fits(ctx.source_keras, "2") and fits(ctx.target_keras, ">=2") and not _same_keras(ctx)
    return other or (fits(ctx.source_keras, "<2.13") and fits(ctx.target_keras, ">=2.13"))


@dataclass(frozen=True)
class Rule:
    """A named cause: the error's pattern, the cells its hint holds for, and the hint (cause and fix).

    Several rules may share a name when one cause shows in different ways; they share the hint too.
    """

    name: str
    pattern: str  # searched in "Type: message", ignoring case
    hint: str
    source: str | None = None  # the Keras that wrote the file, as a spec for fits(): "2", "3", "<2.13"
    target: str | None = None  # the Keras loading it
    loaders: tuple[str, ...] = ()  # empty: any
    formats: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    custom_objects: tuple[str, ...] = ()
    when: Callable[[HintContext], bool] | None = None  # what fields cannot say, such as both sides compared
    flag: str | None = None  # the `check` flag that applies the fix, where one does

    def applies(self, ctx: HintContext) -> bool:
        """Whether this rule's hint holds for the cell (a fact the context does not know never does)."""
        wanted = ((ctx.loader, self.loaders), (ctx.format, self.formats), (ctx.status, self.statuses),
                  (ctx.custom_objects, self.custom_objects))
        return ((self.source is None or fits(ctx.source_keras, self.source))
                and (self.target is None or fits(ctx.target_keras, self.target))
                and all(not allowed or value in allowed for value, allowed in wanted)
                and (self.when is None or self.when(ctx)))


# Loaders that read a whole Keras model from the file, and those that also restore its compile() settings.
KERAS_MODEL = tuple(name for name, spec in LOADERS.items() if spec.resaves and not spec.needs_code)
COMPILING = tuple(name for name, spec in LOADERS.items() if spec.compiles)
# A custom object named in the message (Keras' own Functional and Sequential are not).
NAMED_CUSTOM = (r"Unknown (layer|loss function|metric function|metric|object|optimizer|activation)\b[^:]*: '|"
                r"Could not locate (class|function) '(?!(Functional|Sequential|Model)')|"
                r"Cannot deserialize object of type `")
# Named in a legacy .h5 loader's message: a class a Keras release or package of its own knows (handled by the
# rules above it) or the model's own code.
UNKNOWN_NAMED = (r"Unknown (layer|loss function|metric function|metric|object|optimizer|activation)\b[^:]*: "
                 r"'(?!(Functional|Sequential|Model|TensorFlowOpLayer|KerasLayer)')")
CUSTOM_FLAG = "--custom-objects FILE.py:DICT (the module that defines the classes the file names)"
CUSTOM_HINT = ("the model's custom objects were not known where it was loaded: pass custom_objects={...} to the "
               "loader, or import the module that registers them (register_keras_serializable) before loading")
NEWER_HINT = ("written by a newer Keras release, whose config this one does not understand: load it with that release "
              "or a later one, or rebuild the model in code and load its weights")
ADAPT = " (harness adapt FILE --to SPEC makes this edit in a copy and verifies it)"
VOCABULARY_HINT = (
    "a lookup layer's vocabulary was given as a file path: Keras 2 and Keras 3 before 3.12 keep that path in the "
    "config, and it does not exist where the model loads (Keras 3 before 3.12 cannot even save an IntegerLookup "
    "built so); Keras 3.12 and later refuse to read a vocabulary file while loading in safe mode: pass the vocabulary "
    "as a list, or save as .keras from Keras 3.12 or later, which keeps it in the archive")
CONFIG = (r"Could not (locate|deserialize) class|could not be deserialized|Unknown (layer|loss|metric|object)|"
          r"Could not interpret \w+ identifier|Unrecognized keyword")

RULES = (
    # Records the harness itself writes: the artifact, the sandbox, the worker process.
    Rule("artifact-changed", r"^ArtifactChanged:",
         "the file is not the one that was saved (its sha256 differs): it was modified or corrupted after the "
         "save; run the save phase again and find what touched it"),
    Rule("sandbox-breach", r"SANDBOX BREACH",
         "the artifact escaped the sandbox while loading: treat the file as hostile and report the sandbox gap"),
    Rule("sandbox-refused", r"\b(network|writes) blocked:",
         "loading the artifact tried to reach the network or write outside its output folder, and the sandbox "
         "refused: treat the file as hostile"),
    Rule("worker-oom", r"^WorkerCrash:.*SIGKILL",
         "the loading process was killed, most likely out of memory: raise the memory limit (--memory)"),
    Rule("tflite-keras3-model", r"^WorkerCrash:.*SIGABRT",
         "the TFLite converter aborted converting a Keras 3 model loaded from a file "
         "(TFLiteConverter.from_keras_model: TensorFlow 2.16 does, 2.20 converts it): export the model "
         "(model.export(path)) and convert the SavedModel with TFLiteConverter.from_saved_model(path)",
         target="3", loaders=("tflite",), statuses=("crash",)),
    Rule("worker-native-crash", r"^WorkerCrash:.*SIG(SEGV|ABRT|BUS|ILL|FPE)",
         "the loading process crashed in native code: a TensorFlow/h5py binary incompatibility or a hostile file"),
    Rule("worker-died", r"^WorkerCrash:", "the loading process died: see the container log"),
    Rule("cannot-adapt", r"CannotAdapt:",
         "an adapter found the change it answers in the file but cannot make it (the message names the adapter, the "
         "cause and why): load the file with the Keras that wrote it, or rebuild the model in code and load its "
         "weights"),
    Rule("load-timeout", r"^Timeout:",
         "no result within the per-load timeout: the load hangs, or the timeout (--cell-timeout) is too short"),
    Rule("artifact-unreadable",
         r"No file or directory found|Unable to (synchronously )?open file|not a zip file|BadZipFile|"
         r"not an hdf5|file signature not found|File not found: filepath=",
         "the artifact is missing or truncated, or not in the format its name says: check that the file is "
         "complete, and save it again"),
    # What an environment lacks: cells that are unsupported there.
    Rule("keras2-no-tfsmlayer", r"TFSMLayer exists only in Keras 3",
         "Keras 2 has no TFSMLayer: load the SavedModel with tf.saved_model.load and call its serving signature, "
         "or load it in a Keras 3 environment", target="2", statuses=("unsupported",)),
    Rule("keras3-no-savedmodel-save", r"Keras 3 model\.save cannot write a SavedModel",
         "Keras 3 model.save writes no SavedModel: model.export(path) writes one (the export format), which "
         "tf.saved_model.load and TFSMLayer read", source="3", statuses=("unsupported",)),
    Rule("keras3-no-tf-checkpoint", r"Keras 3 save_weights writes only",
         "Keras 3 save_weights writes no TensorFlow checkpoint: save the weights as .weights.h5, which Keras 3 "
         "and Keras 2.13 or later read", source="3", statuses=("unsupported",)),
    Rule("keras3-no-tf1-session", r"Keras 3 has no TF1 graph/session",
         "Keras 3 has no TF1 graph/session mode: run TF1-style code under tf-keras (pip install tf-keras matching "
         "the TensorFlow release, TF_USE_LEGACY_KERAS=1), or port it to eager Keras 3",
         target="3", statuses=("unsupported",)),
    Rule("needs-tensorflow-backend", r"needs the TensorFlow backend|cannot build it \(needs tensorflow\)",
         "this model or loader needs TensorFlow itself (TensorFlow ops or lookup tables in the model, a SavedModel, "
         "tf.function(jit_compile=True)), which Keras on another backend cannot run: use KERAS_BACKEND=tensorflow",
         target="3", statuses=("unsupported",)),
    # A save that failed.
    Rule("keras212-export-multi-input", r"expects \d+ input\(s\), but it received 1 input tensors",
         "Keras 2.12's model.export traces a multi-input model with a single input and fails: export it with a "
         "later Keras (2.15 does), or write a SavedModel with model.save(path, save_format='tf')",
         source="<2.13", formats=("export",), statuses=("skipped",)),
    # SavedModels.
    Rule("savedmodel-needs-tf-keras", r"'_UserObject' object has no attribute 'add_slot'",
         "the SavedModel holds a Keras 2 optimizer's slot variables, which TensorFlow 2.16 and later restore only "
         "with tf-keras: pip install tf-keras matching the TensorFlow release and set TF_USE_LEGACY_KERAS=1, or "
         "re-save it from Keras 2 without the optimizer (model.save(path, include_optimizer=False))", target="3"),
    Rule("savedmodel-without-keras",
         r"'_UserObject' object is not callable|Unable to create a (TF-)?Keras model from SavedModel",
         "this SavedModel holds no Keras model (model.export or tf.saved_model.save wrote it), so load_model cannot "
         "rebuild one: load it with tf.saved_model.load and call its serving signature",
         target="2", loaders=KERAS_MODEL),
    Rule("keras3-load-model-savedmodel", r"legacy SavedModel format is not supported",
         "Keras 3 load_model cannot read a SavedModel: load it for inference with keras.layers.TFSMLayer or "
         "tf.saved_model.load, or re-save the model as .keras where it loads", target="3"),
    Rule("keras3-reads-tf-checkpoint", r"File format not supported",
         "Keras 3 load_weights cannot read a TensorFlow checkpoint: load the weights with tf-keras "
         "(TF_USE_LEGACY_KERAS=1), or re-save them with the Keras that wrote them as .h5 "
         "(save_weights('weights.h5')), which Keras 3 reads", target="3", formats=("tf_checkpoint",)),
    Rule("export-output-names", r"the serving config reads output .* returns \['output_0'",
         "model.export() names the serving signature's outputs output_0, output_1, ..., not by the model's output "
         "names: read 'output_0' from what an exported model's signature returns",
         formats=("export",), loaders=("serving",)),
    Rule("float64-inputs",
         r"Can not cast TensorSpec\(.*?dtype=tf\.float64.*?\) to TensorSpec\(.*?dtype=tf\.float32|"
         r"Could not find matching concrete function.*dtype=float64.*dtype=tf\.float32",
         "the SavedModel's functions were traced for float32 inputs, and the restored object called with float64 "
         "arrays (NumPy's default, and what JSON clients send) does not cast them: cast the inputs to float32 "
         "(x.astype('float32')) before the call", loaders=("saved_model_call",)),
    Rule("jax-xla-export", r"XlaCallModule",
         "the model was traced by the jax backend (model.export under jax, or a TFLite conversion of a model loaded "
         "under jax), which wraps it in XlaCallModule ops of StableHLO that this TensorFlow cannot deserialize and "
         "TFLite cannot convert: export and convert it with KERAS_BACKEND=tensorflow"),
    Rule("signature-input-dtype",
         r"^(?!.*TFSMLayer)(.*expected to be a \w+ tensor but is a \w+ tensor|.*Can not cast TensorSpec\(.*?dtype=tf\."
         r"(u?int|float|bool)\d*.*?\) to TensorSpec\(.*?dtype=tf\.)",
         "the serving signature was traced for other input dtypes than the arrays it was called with (float32 given "
         "int32 token ids, or int64 given int32), and a concrete function does not cast: cast the inputs to the dtypes "
         "signatures['serving_default'].structured_input_signature names (x.astype('float32')) before the call",
         loaders=("saved_model", "serving")),
    Rule("savedmodel-input-structure", r"Could not find matching concrete function to call loaded from the SavedModel",
         "the restored model was traced for inputs of another structure than the arrays it was called with (ragged "
         "tensors, a dict, another count of inputs): call its serving signature instead, "
         "tf.saved_model.load(path).signatures['serving_default'](**inputs by name), as a serving client does",
         formats=("savedmodel", "export"), loaders=KERAS_MODEL),
    Rule("tflite-custom-op", r"Encountered unresolved custom op",
         "the .tflite file uses a custom op (MediaPipe's Convolution2DTransposeBias, say) that this TensorFlow's "
         "interpreter does not register: run it with a TensorFlow whose interpreter has the op built in (TensorFlow "
         "2.18 and later run MediaPipe's), or the runtime that ships it (mediapipe), or register the op yourself",
         formats=("tflite",)),
    Rule("tfsm-layer-int-inputs", r"expected to be a int\d* tensor but is a float tensor",
         "TFSMLayer cast the integer inputs to float32 (Keras 3.3 does; 3.12 keeps their dtype): create it with "
         "dtype='int32', or call the serving signature of tf.saved_model.load", target="3", loaders=("tfsm_layer",)),
    Rule("tfsm-layer-named-inputs", r"too many positional arguments",
         "TFSMLayer passes its inputs by position, but this serving signature takes several inputs by name: load "
         "it with tf.saved_model.load and call signatures['serving_default'](name=tensor, ...)",
         target="3", loaders=("tfsm_layer",)),
    # Weights.
    Rule("unbuilt-model",
         r"not yet been built|has not created its variables|expected 0 variables, but received [1-9]",
         "the weights were loaded into a model that was never built (a subclassed model creates its variables at "
         "its first call), so it had no variables to take them: call the model on a batch, or "
         "model.build(input_shape), before load_weights", loaders=("rebuild",)),
    Rule("cudnn-rnn-weights",
         r"CuDNN(LSTM|GRU)|must match\. variable\.shape=\([\d, ]+\), Received: value\.shape=\(\d+,\).*"
         r"(lstm|gru)_cell/bias|(lstm|gru)_cell/bias\. Weight expects shape \([\d, ]+\)\. "
         r"Received saved weight with shape \(\d+,\)",
         "weights of Keras 2's CuDNNLSTM/CuDNNGRU, whose bias is twice the size of LSTM's/GRU's: load them with "
         "tf-keras or Keras 2, whose .h5 loading converts them into LSTM or GRU(reset_after=True), and re-save "
         "from there (.weights.h5 or .keras); or build the model with those CuDNN-compatible layers and re-save"),
    Rule("h5-weights-by-order",
         r"variable\.assign\(value\).? must match|Shape mismatch in layer #\d+ \(named [\w./-]+\)\s*for weight",
         "this Keras 3 release matches a legacy .h5 file's weights to the rebuilt model's layers by their order, and "
         "the order Keras 3 rebuilds a Keras 2 model in (one with several inputs, or shared layers) is not the one "
         "Keras 2 saved: load the file with tf-keras (TF_USE_LEGACY_KERAS=1) or with a later Keras 3 (3.15 loads such "
         "files bit-exactly), or rebuild the model in code and load_weights(path, by_name=True) in Keras 2",
         source="2", target="3", formats=("h5",), loaders=KERAS_MODEL),
    Rule("keras2-code-arguments", r"Argument\(s\) not recognized: \{'(lr|decay)'",
         "the model's own code (the factory that rebuilds it) passes Keras 2 arguments such as Adam(lr=...) that "
         "Keras 3 refuses, here before any weights are read: change them (learning_rate=...), or run that code with "
         "tf-keras (TF_USE_LEGACY_KERAS=1)", target="3", loaders=tuple(n for n, x in LOADERS.items() if x.needs_code)),
    Rule("weights-layout-2.13", r"expected \d+ variables?, but received 0 variables",
         "the .weights.h5 layout changed between Keras 2.12 and 2.13 and neither side reads the other's: load the "
         "weights with the Keras that wrote them and move them as arrays (get_weights/set_weights), or from "
         "Keras 2 as legacy .h5 (save_weights('weights.h5')), which every Keras reads", when=_crosses_2_13),
    Rule("weights-mismatch",
         r"Layer count mismatch|Shape mismatch|must match|are incompatible|expected \d+ variables?, but received",
         "the weights do not fit the model rebuilt to load them: its architecture (layer count, order or shapes) "
         "changed between save and load; rebuild it exactly as it was saved", when=_same_keras),
    # Keras 3.12.1 and 3.13.2 added this refusal in patch releases (3.13.0 and 3.13.1 load such files): before the
    # Lambda rule below, whose pattern matches its first words too.
    Rule("tfsm-layer-safe-mode", r"deserialization of a .TFSMLayer.",
         "safe_mode refuses TFSMLayer: Keras 3.12.1, 3.13.2 and later refuse a .keras file that wraps a SavedModel "
         "in TFSMLayer unless safe_mode=False (the layer loads an external SavedModel, whose graph can run code); "
         "for a trusted file load_model(path, safe_mode=False), or re-export: model.export(path) and load that "
         "SavedModel with keras.layers.TFSMLayer(path) or tf.saved_model.load in code", target="3",
         flag="--unsafe (runs the file's code, inside the sandbox)"),
    # Lambda layers.
    Rule("safe-mode", r"Requested the deserialization of a|Deserializing it is unsafe",
         "Keras safe mode refused a Lambda layer's Python lambda: rebuild the layer in code, or, for a trusted "
         "file, load_model(path, safe_mode=False) (model_from_json: keras.config.enable_unsafe_deserialization() "
         "in Keras 3, serialization_lib.SafeModeScope(False) in Keras 2.13 and later)",
         flag="--unsafe (runs the file's code, inside the sandbox)"),
    # Python 3.13's bytecode run by 3.11 fails when it sets up annotations ("no locals found"), not when it is read.
    Rule("lambda-bytecode", r"bad marshal data|unknown opcode|code\(\) (argument|takes)|no locals found when setting "
                            r"up annotations",
         "a Lambda layer's Python bytecode, written by another Python version, cannot be read here: rebuild the "
         "Lambda in code (a named function or a custom layer) and load the weights, or load it with the Python "
         "version that saved it", when=_python_differs),
    Rule("lambda-output-shape", r"could not automatically infer the shape of the Lambda",
         "a Lambda layer without output_shape, whose output shape this Keras cannot infer: give the Lambda an "
         "explicit output_shape where the model is built, or replace it with a custom layer", target="3"),
    # Causes the hazard probes show (docs/probes.md, "The hazard zoo"), each with its own fix: before the generic
    # rules below, which also match some of their messages.
    Rule("depthwise-groups", r"passed to DepthwiseConv2D: \{'groups'",
         "Keras 2 writes groups=1 into DepthwiseConv2D configs, which Keras 3 refuses: pass "
         "custom_objects={'DepthwiseConv2D': a DepthwiseConv2D subclass whose __init__ drops 'groups'} to "
         "load_model, load the file with tf-keras (TF_USE_LEGACY_KERAS=1), or drop groups=1 from the stored config"
         + ADAPT, source="2", target="3"),
    Rule("rnn-time-major", r"Unrecognized keyword arguments passed to \w+: \{'time_major'",
         "Keras 2 writes time_major=False into RNN configs (LSTM, GRU, SimpleRNN), which Keras 3 refuses: drop it from "
         "the stored config" + ADAPT + ", load the file with tf-keras (TF_USE_LEGACY_KERAS=1), or rebuild the model "
         "in code and load its weights", source="2", target="3"),
    Rule("keras2-list-axis", r"BatchNormalization.*int\(\) argument must be a string, a bytes-like object or a "
                             r"(real )?number, not 'list'",
         "Keras 2 .keras and JSON configs store BatchNormalization's axis as a list ([3]), and Keras 3 takes one "
         "int: replace the list by its one axis" + ADAPT + ", or save the model as .h5 from Keras 2",
         source="2", target="3"),
    Rule("keras2-batch-input-shape", r"Unrecognized keyword arguments passed to \w+: \{'batch_input_shape'",
         "Keras 2 keeps batch_input_shape on a layer built with input_shape=, which Keras 3 refuses in .keras and "
         "JSON configs: make it the input_shape it came from" + ADAPT + ", or start the model with keras.Input",
         source="2", target="3"),
    Rule("tf-op-lambda",
         r"Unknown layer: '(TF|Slicing)OpLambda'|Could not deserialize class '(TF|Slicing)OpLambda'|"
         r"A KerasTensor cannot be used as input to a TensorFlow function|"
         r"raw TensorFlow ops on Keras tensors \(TFOpLambda\)",
         "raw TensorFlow ops on Keras tensors (tf.concat, tf.nn.relu, ...) work only in Keras 2, which wraps them "
         "(and x[:, :4], x + 1) in TFOpLambda/SlicingOpLambda layers: Keras 3 neither builds model code that calls "
         "tf.* on Keras tensors nor loads those layers; rewrite the ops with keras.ops or a custom layer and load "
         "the weights into the rebuilt model, or keep the model on Keras 2 with tf-keras (TF_USE_LEGACY_KERAS=1)",
         target="3"),
    Rule("tf-keras-layer-in-keras3", r"Only instances of .keras\.Layer. can be added to a Sequential model",
         "an object that is not a Keras 3 layer was added to a Keras 3 Sequential model, most often a tf-keras layer "
         "such as hub.KerasLayer (tensorflow_hub builds on tf_keras whenever it is installed): set "
         "TF_USE_LEGACY_KERAS=1 so that tf.keras is tf-keras too, or build the model with tf_keras", target="3"),
    Rule("layer-savedmodel-missing", r"Error when deserializing class .*SavedModel file does not exist at",
         "a layer loads a SavedModel from a path its config holds (hub.KerasLayer keeps its handle, often a TF-Hub "
         "cache folder under the temporary folder), and that path does not exist where the model loads: make the "
         "SavedModel reachable there (or give the layer a handle every loading process reaches), or rebuild the "
         "model in code and load its weights"),
    Rule("keras3-h5-optimizer", r"Unknown variable: <(Keras)?Variable|optimizer_variables. must be a list of tensors",
         "Keras 3's legacy .h5 loader builds the restored optimizer for none of the model's variables, so the first "
         "training step after load_model fails: load_model(path, compile=False) and compile again (the optimizer "
         "starts afresh), or save from Keras 3 as .keras, which restores the optimizer state",
         target="3", formats=("h5",), loaders=COMPILING),
    Rule("sequential-build", r"has already been configured to use input shape .*You cannot build it",
         "Keras 3.0 to 3.4 refuse build() with a list shape, even an equal one, on a Sequential model that has its "
         "input shape already (input_shape= on its first layer, or keras.Input): drop the build() call, which such a "
         "model does not need, or pass the shape as a tuple", when=_target_before("3.5")),
    Rule("h5-integer-axis", r"A .Concatenate. layer requires inputs with matching shapes except for the",
         "Keras 3 before 3.9 drops an integer axis from layer configs read from legacy .h5 files "
         "(keras-team/keras#20973), so Concatenate(axis=1) is rebuilt on the last axis: load the file with "
         "Keras 3.9 or later, or rebuild the model in code and load its weights (Keras 3 sources can save .keras "
         "instead)", formats=("h5",), when=_target_before("3.9")),
    Rule("keras2-mixed-precision", r"'str' object has no attribute '(quantization_mode|convert_input)'",
         "a layer's mixed-precision dtype policy (a Keras 2 Policy config such as mixed_float16) in a Keras 2 file "
         "does not deserialize in Keras 3: replace the Policy by its name, which Keras 3 reads as a DTypePolicy"
         + ADAPT + ", load it with tf-keras (TF_USE_LEGACY_KERAS=1), or rebuild the model in code with the policy "
         "(keras.mixed_precision.set_global_policy('mixed_float16')) and load its weights",
         source="2", target="3"),
    Rule("nested-shared-h5",
         r"Invalid Functional model configuration\. The graph of the Functional model either has loops or "
         r"disconnected nodes",
         "Keras 3's legacy .h5 loader cannot rebuild a Keras 2 functional model that calls a nested sub-model on "
         "several inputs (the shared sub-model's later calls do not resolve): load the file with tf-keras "
         "(TF_USE_LEGACY_KERAS=1), or rebuild the model in code and load its weights",
         source="2", target="3", formats=("h5",)),
    Rule("unbuilt-sublayers", r"was never built and thus it doesn't have any variables",
         "sublayers of a custom layer were not built when the model loaded (the layer's build() does not build "
         "them), but the file holds their weights: give the custom layer a build() that builds every sublayer "
         "(sublayer.build(shape)), or a build_from_config()", target="3"),
    Rule("vocabulary-file",
         r"Vocabulary file .* does not exist|loading of a vocabulary file outside of the model archive",
         VOCABULARY_HINT),
    Rule("vocabulary-file", r"invalid literal for int\(\) with base 10: '/'",
         VOCABULARY_HINT, statuses=("skipped",), when=_target_before("3.12")),
    Rule("h5-lookup-vocabulary", r"(Integer|String)Lookup\.call\(\).*Table not initialized",
         "the lookup layer's vocabulary is not in the .h5 file (Keras 3.12 and later keep a vocabulary read from a "
         "file in .keras archives only), so its table loads empty: save as .keras, or pass the vocabulary as a list",
         target="3", formats=("h5",)),
    Rule("keras2-sequential-list",
         r"pop expected at most 1 argument, got 2|Expected 'config' to be a dict for Sequential, instead got <class "
         r"'list'>",
         "a Sequential model saved by Keras 2.0 or 2.1 keeps its config as a bare list of layers, which Keras 3 cannot "
         "read (it expects {'name': ..., 'layers': [...]}): load the file with tf-keras (TF_USE_LEGACY_KERAS=1) and "
         "save it again there (.keras, or .h5, which Keras 3 reads), or rewrite the file's model_config as "
         "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": [...the list...]}}"
         + ADAPT, source="2", target="3"),
    Rule("keras2-input-shape-doubled", r"Expected shape \(None, None, [^)]*\), but input has incompatible shape",
         "Keras 3 rebuilt the first layer of a Keras 2 Sequential file from its batch_input_shape and added a batch "
         "dimension again, so the model loads but refuses every input: load it with tf-keras "
         "(TF_USE_LEGACY_KERAS=1), or rebuild the model in code (keras.Input(shape) first) and load its weights",
         source="2", target="3"),
    Rule("keras3-slash-in-layer-name", r"Argument .name. must be a string and cannot contain character ./.",
         "Keras 3 refuses layer names holding '/', which Keras 2 wrote (keras.applications' MobileNetV3 names its "
         "layers 'Conv/BatchNorm'): load the file with tf-keras (TF_USE_LEGACY_KERAS=1), or rebuild the model in Keras "
         "3 and load the weights (the architecture Keras 3 builds names its layers without '/')", target="3"),
    Rule("keras3-h5-operation-arguments",
         r"Only input tensors may be passed as positional arguments|too many positional arguments",
         "Keras 3's legacy .h5 writer stores a layer called with a Python number beside a tensor (MobileNetV3's "
         "hard-sigmoid, x + 3.0) or with keyword arguments in a way its reader cannot call again, even in the release "
         "that wrote it: save Keras 3 models as .keras, or rebuild the model in code and load its weights",
         source="3", target="3", formats=("h5",)),
    Rule("compile-objects-unknown", r"Unknown (loss function|metric function|metric|optimizer)\b[^:]*: '",
         "the file's compile() names a loss, metric or optimizer this Keras does not know (a lambda, a function of "
         "the model's own code, or one Keras removed such as cosine_proximity): load_model(path, compile=False) loads "
         "the model and its weights; compile it again in code", custom_objects=("none",), loaders=COMPILING),
    Rule("keras3-nested-model-rebuilt", r"expects \d+ input\(s\), but it received \d+ input tensors",
         "a .keras file of an earlier Keras 3 release holding a model nested in another (a Sequential around a "
         "Functional backbone) is rebuilt by this later release with the nested model's outputs passed on twice: load "
         "it with the release that saved it (Keras 3.3 to 3.8 read this one), or rebuild the model in code and load "
         "its weights (.weights.h5)", source="3", target="3", formats=("keras",), when=_older_source),
    # A newer release's config keys, named in the message: the cause even where custom objects were withheld.
    Rule("newer-keras-config",
         r"unexpected keyword argument|Unrecognized keyword arguments? passed to|Unrecognized keyword argument\(s\)|"
         r"get_tensor\(\) takes \d+ positional arguments? but \d+ were given",
         NEWER_HINT, when=_newer_source),
    # Custom objects the loader was not given fail in every environment, whatever else differs.
    Rule("custom-objects",
         NAMED_CUSTOM + r"|'str' object is not callable|string indices must be integers|could not be deserialized",
         CUSTOM_HINT, custom_objects=("withheld",), flag=CUSTOM_FLAG),
    # A class the file names and no Keras knows: the model's own code, in Keras 3 as in Keras 2.
    Rule("custom-objects", UNKNOWN_NAMED, CUSTOM_HINT, custom_objects=("none",), flag=CUSTOM_FLAG),
    # Seen first in Keras 3.14.0 (3.13.2 evaluates the same files): the legacy .h5 loader compiles the model with the
    # file's metric names, and evaluate() calls the name.
    Rule("keras2-h5-metric-names", r"^TypeError: 'str' object is not callable",
         "Keras 3.14 and later restore the metrics a Keras 2 .h5 file was compiled with as names, and evaluate() "
         "calls the name: load_model(path, compile=False) and compile again in code with metric objects "
         "(keras.metrics.SparseCategoricalAccuracy(), ...), or evaluate it with Keras 3.13 or earlier",
         source="2", target=">=3.14", formats=("h5",), loaders=COMPILING, custom_objects=("none", "passed")),
    # keras-team/keras#20146: Keras 3.0 and 3.1 open a .keras file read-write (mode r+b) to load it.
    Rule("keras3-opens-keras-read-write", r"^PermissionError: .*Permission denied: '[^']*\.keras'",
         "Keras 3.0 and 3.1 open a .keras file for writing too when they load it (keras-team/keras#20146), so a file "
         "this process may not write (a read-only folder, volume or mount) does not load: copy it somewhere writable "
         "first, or load it with Keras 3.2 or later", target="3", formats=("keras",), when=_target_before("3.2")),
    # Configs one Keras release or generation writes and another cannot rebuild.
    Rule("keras2-compile-config",
         r"^[\w.]+: (Expected all entries in the .metrics. list to be metric objects|<class 'keras\.src\.(losses|"
         r"metrics)\.|Could not deserialize 'keras\.(losses|metrics)\.|Could not locate function '\w+'.*"
         r"Full object config: \{'module': 'keras\.(losses|metrics)'|Argument\(s\) not recognized: \{)",
         "the optimizer, loss or metrics of a Keras 2 file's compile() do not deserialize in Keras 3: "
         "load_model(path, compile=False) loads the model and its weights; compile it again in code with explicit "
         "loss and metric objects", source="2", target="3", loaders=COMPILING),
    Rule("keras2-module-move",
         r"parent module (tf_)?keras\.(src\.)?engine\.|No module named '(tf_)?keras\.(src\.)?engine",
         "a Keras 2 .keras file names its classes by the module paths of the release and package that wrote it "
         "(keras.engine up to 2.12, keras.src.engine from 2.13, tf_keras.src.engine in tf-keras), which this "
         "Keras cannot import: map them to this Keras' modules" + ADAPT + ", load it with that release, or re-save it "
         "there as .h5 (model.save('model.h5'))",
         when=_module_move),
    Rule("keras2-file-in-keras3", CONFIG + r"|parent module (tf_)?keras\.src\.engine\.",
         "written by Keras 2, whose config Keras 3 cannot rebuild: load it with tf-keras (pip install tf-keras "
         "matching the TensorFlow release, TF_USE_LEGACY_KERAS=1); tf-keras reads the .keras and .weights.h5 files "
         "of Keras 2.13 and later only, so re-save older ones as .h5 first (model.save('model.h5'))",
         source="2", target="3"),
    Rule("keras3-file-in-keras2", CONFIG + r"|parent module (tf_)?keras\.src\.models\.|batch_shape",
         "written by Keras 3, which Keras 2 cannot read: load it with Keras 3, or rebuild the model in code and "
         "load its weights (Keras 2.13 and later read Keras 3 .weights.h5)", source="3", target="2"),
    Rule("newer-keras-config",
         CONFIG + r"|unexpected keyword|takes \d+ positional arguments? but \d+ were given",
         NEWER_HINT, when=_newer_source),
    Rule("custom-objects", NAMED_CUSTOM, CUSTOM_HINT, custom_objects=("none",), flag=CUSTOM_FLAG),
)


def match(error_type: str, message: str, context: HintContext | None = None) -> Rule | None:
    """The first rule that applies to an error in its cell, or None when the cause is unknown."""
    text = f"{error_type}: {message}"
    ctx = context or HintContext()
    for rule in RULES:
        if rule.applies(ctx) and re.search(rule.pattern, text, flags=re.IGNORECASE | re.DOTALL):
            return rule
    return None


def flag_for(cause: str | None) -> str | None:
    """The `check` flag that applies a cause's fix, or None (no rule of that name has one)."""
    return next((rule.flag for rule in RULES if rule.name == cause and rule.flag), None)


def hint_for(error_type: str, message: str, context: HintContext | None = None) -> str | None:
    """The hint of the first rule that applies, or None when the cause is unknown."""
    rule = match(error_type, message, context)
    return rule.hint if rule else None
