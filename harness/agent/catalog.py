"""What the harness knows by name: the built-in probe models, the save formats and the loaders.

Adding a probe is one entry below plus its code (harness/agent/probes.py); nothing else names it.
Standard library only: read by the host (validation, planning, reports) and by the agent.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from harness.agent.spec import Code, FormatSpec, LoaderSpec, ModelSpec, Tolerance

# format -> the Keras generations that can write it ("seed" is no file: the model is rebuilt from its seed).
FORMATS: Dict[str, FormatSpec] = {
    # Keras 3's legacy h5 writer changes the live model it saves: written last (save.py: _save_order).
    "h5": FormatSpec((2, 3), "load_model", ".h5", saved_last=True),
    "keras": FormatSpec((2, 3), "load_model", ".keras"),
    "savedmodel": FormatSpec((2,), "load_model", "SavedModel", folder=True),
    "weights_h5": FormatSpec((2, 3), "rebuild", "weights .h5", weights_only=True),
    "tf_checkpoint": FormatSpec((2,), "rebuild", "TF checkpoint", weights_only=True),
    "json": FormatSpec((2, 3), "model_from_json", "JSON + weights"),
    "export": FormatSpec((2, 3), "saved_model", "model.export() SavedModel", folder=True),
    "seed": FormatSpec((2, 3), "rebuild_from_seed", "seed", named_only=True),
    # A converted model for the TFLite interpreter: only an existing file has it (the harness converts nothing to
    # .tflite ahead of a load; the `tflite` loader converts at load time).
    "tflite": FormatSpec((), "tflite_interpreter", ".tflite", named_only=True),
}

# safe_mode=False executes whatever a file holds: only when a matrix asks for it. compile=False is
# the route for old files whose training config no longer loads; user models try it by default.
# A loader that `resaves` gives back a Keras model a migration can save again; its `snippet` is the code
# `check --migrate` hands over beside a migrated file.
_KERAS_LOAD = "model = {keras}.models.load_model({path}{objects}"
LOADERS: Dict[str, LoaderSpec] = {
    "load_model": LoaderSpec(("h5", "keras", "savedmodel", "export"), "keras.models.load_model", resaves=True,
                             compiles=True, snippet=_KERAS_LOAD + ")"),
    "load_model_custom": LoaderSpec(("h5", "keras", "savedmodel"), "load_model(custom_objects=...)",
                                    needs_custom_objects=True, resaves=True, compiles=True,
                                    probes_only="load_model already passes the model's custom_objects",
                                    snippet=_KERAS_LOAD + ")"),
    "load_model_unsafe": LoaderSpec(("keras",), "load_model(safe_mode=False), which runs the file's code",
                                    opt_in=True, resaves=True, change="option", compiles=True, runs_file_code=True,
                                    snippet=_KERAS_LOAD + ", safe_mode=False)"),
    "load_model_nocompile": LoaderSpec(("h5", "keras", "savedmodel"), "load_model(compile=False)", opt_in=True,
                                       resaves=True, change="option", users_default=True,
                                       snippet=_KERAS_LOAD + ", compile=False)"),
    "rebuild": LoaderSpec(("h5", "weights_h5", "tf_checkpoint"), "rebuild in code + load_weights", resaves=True,
                          change="code", needs_code=True, snippet="model = {factory}()\nmodel.load_weights({path})"),
    "model_from_json": LoaderSpec(("json",), "model_from_json + load_weights", resaves=True,
                                  snippet="with open({path}) as fh:\n"
                                          "    model = {keras}.models.model_from_json(fh.read(){objects})\n"
                                          "model.load_weights({weights})"),
    "saved_model": LoaderSpec(("savedmodel", "export"), "tf.saved_model.load, serving signature", change="serving",
                              keras_object=False,
                              snippet="serve = tf.saved_model.load({path}).signatures[\"serving_default\"]"),
    "tfsm_layer": LoaderSpec(("savedmodel", "export"), "keras.layers.TFSMLayer", change="serving",
                             snippet="model = {keras}.layers.TFSMLayer({path}, call_endpoint=\"serving_default\")"),
    "rebuild_from_seed": LoaderSpec(("seed",), "rebuilt from the seed", change="code", needs_code=True,
                                    probes_only="it rebuilds a probe from its seed"),
    "tf1_session": LoaderSpec(("h5",), "load_model in a TF1 session", named_only=True, graph_mode=True,
                              keras_majors=(2,), change="code", compiles=True,
                              probes_only="it exercises one probe's TF1 hazard"),
    # Serving and conversion routes: slower, and tried only on the models that name them.
    "serving": LoaderSpec(("savedmodel", "export"), "serving signature by input names and output keys",
                          opt_in=True, named_only=True, change="serving", keras_object=False),
    "saved_model_call": LoaderSpec(("savedmodel", "export"), "tf.saved_model.load, called with float64",
                                   opt_in=True, named_only=True, change="serving", keras_object=False),
    "tflite": LoaderSpec(("h5", "keras", "savedmodel", "export"), "TFLite converter + tf.lite.Interpreter",
                         opt_in=True, named_only=True, change="serving", keras_object=False, may_abort=True),
    "load_model_xla": LoaderSpec(("h5", "keras"), "load_model, predict under XLA (jit_compile=True)",
                                 opt_in=True, named_only=True, change="option", compiles=True),
    # A .tflite file as mobile and edge code runs it: every TensorFlow has the interpreter.
    "tflite_interpreter": LoaderSpec(("tflite",), "tf.lite.Interpreter", opt_in=True, users_default=True,
                                     keras_object=False,
                                     snippet="interpreter = tf.lite.Interpreter(model_path={path})"),
    # Adapting loaders: a copy of the file is edited for this Keras (harness/agent/adapters.py; no model is
    # loaded with another Keras), then loaded with its format's own loader. The copy is a file made again, handed
    # over only where its predictions match the original's; the snippet that loads it is its format's. They read
    # a model's file, not its hazard: a matrix that lists them tries them on the hazard probes too.
    "adapted": LoaderSpec(("h5", "keras", "json", "weights_h5"), "adapted for the target's Keras, then loaded",
                          opt_in=True, change="migrated", adapts=True, any_model=True),
    "adapted_keras": LoaderSpec(("h5", "json"), "adapted for the target's Keras, saved there as .keras, then "
                                "keras.models.load_model", opt_in=True, change="migrated", adapts=True,
                                makes="keras", any_model=True),
}

_PROBES = "harness.agent.probes:"
_FAULTS = "harness.agent.faults:"
# The plain loaders load a probe as a process without its code would: without custom objects (the
# hazard the custom-object probes show); load_model_custom passes them.
_PLAIN_LOADERS = ("load_model", "load_model_unsafe", "load_model_nocompile", "adapted", "adapted_keras")


def _probe(name: str, description: str, factory: str, data: str = "features4", *, custom: bool = False,
           objects: Optional[str] = None, train_labels: Optional[str] = None, files: Optional[str] = None,
           postprocess: Optional[str] = None, state: Optional[str] = None, **fields: Any) -> ModelSpec:
    """A built-in probe: briefly trained on its own seeded data; custom objects registered where it is built.

    `objects` names custom objects a loading process passes that the building one does not register
    (the fix for a hazard, such as a patched built-in layer).
    """
    def ref(function: Optional[str]) -> Optional[str]:
        return None if function is None else _PROBES + function

    code = Code(factory=ref(factory), data=ref(data),
                custom_objects=ref("custom_objects" if custom and objects is None else objects),
                train_labels=ref(train_labels), files=ref(files), postprocess=ref(postprocess), state=ref(state))
    return ModelSpec(name=name, kind="probe", description=description, code=code, train_epochs=2,
                     register_custom_objects=custom, withhold_custom_objects=_PLAIN_LOADERS,
                     random_in_weights_only=True, **fields)


PROBES: Dict[str, ModelSpec] = {spec.name: spec for spec in (
    _probe("dense", "small Dense/Dropout classifier, fixed seed, sparse_categorical_accuracy", "dense"),
    _probe("classifier",
           "Conv/BatchNorm/Dropout/Dense classifier compiled with metrics=['accuracy'], briefly trained",
           "classifier", "images", hazards=("accuracy-metric",),
           drift_hint="the ambiguous 'accuracy' metric resolved differently after reload: "
                      "compile with an explicit metric such as sparse_categorical_accuracy"),
    _probe("classifier_explicit",
           "the same classifier compiled with an explicit sparse_categorical_accuracy (control)",
           "classifier_explicit", "images"),
    _probe("lambda", "a Lambda layer holding a Python lambda (stored as bytecode)", "lambda_model",
           hazards=("lambda-bytecode", "safe-mode")),
    _probe("custom_layer", "a registered custom layer with get_config", "custom_layer",
           hazards=("custom-objects",), custom=True),
    _probe("custom_loss", "a regression model compiled with a custom loss function", "custom_loss", "regression",
           hazards=("custom-objects",), custom=True),
    _probe("text_rnn", "Embedding + LSTM + GRU text classifier", "text_rnn", "tokens", hazards=("rnn-kernels",)),
    _probe("multi_input", "functional model with two named inputs", "multi_input", "two_inputs",
           hazards=("input-order",)),
    _probe("label_order", "class names indexed by list(set(labels)), recomputed in the loading process",
           "labels_model", "features8", hazards=("label-order",), train_labels="labels_by_set_order", shows_hazard=True,
           postprocess="by_set_order",
           drift_hint="class order built with list(set(...)) changes with PYTHONHASHSEED: "
                      "store the class list with the model (see label_order_sorted)"),
    _probe("label_order_sorted", "the same classifier with its sorted class list stored beside the model (control)",
           "labels_model", "features8", files="class_files", postprocess="by_stored_order"),
    _probe("seeded", "the same seeded model built and briefly trained in each environment, never saved", "dense",
           hazards=("unseeded-randomness",), formats=("seed",), exact=True, shows_hazard=True,
           drift_hint="a model built from the same seed differs: initialisers or kernels changed between "
                      "versions (or the run is not deterministic); compare saved weights, not seeds"),
    _probe("tf1_init", "Keras 2 model loaded on the TF1 session path, then global_variables_initializer()", "dense",
           hazards=("tf1-reinit",), formats=("h5",), loaders=("load_model", "tf1_session"), shows_hazard=True,
           drift_hint="global_variables_initializer() after load_model re-initialised the loaded weights: "
                      "initialise before loading, or leave TF1 sessions behind"),
)}

_KERAS2_FILES = "tf-keras (TF_USE_LEGACY_KERAS=1) loads files Keras 2 wrote; "
_ONLY_TF = ("tensorflow",)



def _hazard(name: str, description: str, factory: str, data: str = "features4", **fields: Any) -> ModelSpec:
    """A hazard probe: judged on its predictions (and, where its spec says, its state), not on evaluate(),
    whose compile() config breaks across Keras generations on its own (the accuracy probes show that)."""
    return _probe(name, description, factory, data, **{"evaluate": False, **fields})


# The breaks users report most when they move saved models between versions: one probe per hazard,
# each with the fix users were given (a load error's fix is a hint rule in harness/hints.py).
HAZARD_PROBES: Dict[str, ModelSpec] = {spec.name: spec for spec in (
    _hazard("depthwise_groups", "MobileNet-style DepthwiseConv2D block: Keras 2 configs carry groups=1, which Keras 3 "
           "refuses (fix: custom_objects with a DepthwiseConv2D subclass that pops groups: load_model_custom)",
           "depthwise", "images8", objects="depthwise_fix", hazards=("depthwise-groups",),
           formats=("h5", "keras"), loaders=("load_model", "load_model_custom")),
    _hazard("tf_op_lambda", "raw TF ops on Keras tensors (x + 1, x[:, :4], tf.concat): TFOpLambda and "
           "SlicingOpLambda layers in Keras 2 files; Keras 3 cannot build or load them (fix: keras.ops or a custom "
           "layer; " + _KERAS2_FILES + "rebuilding in Keras 3 needs the code changed)", "tf_ops",
           hazards=("tf-op-lambda",), formats=("h5", "keras", "weights_h5"), loaders=("load_model", "rebuild"),
           builds_on=(2,), build_note="raw TensorFlow ops on Keras tensors (TFOpLambda) exist only in Keras 2; "
           "Keras 3 refuses them when the model is built"),
    _hazard("hub_layer", "a TF-Hub-style layer (hub.KerasLayer: a Keras 2 layer around a SavedModel found by its "
           "handle) in a Sequential model; the SavedModel is local, under the temporary folder (fix: tf-keras with "
           "TF_USE_LEGACY_KERAS=1 on TF >= 2.16; keep the module where every loading process finds it)",
           "hub_layer", objects="hub_objects", hazards=("hub-keras-layer",), formats=("h5", "keras", "weights_h5"),
           loaders=("load_model_custom", "rebuild"), backends=_ONLY_TF,
           build_note="the layer calls a TensorFlow SavedModel: TensorFlow backend only"),
    _hazard("lambda_globals", "a Lambda calling tf.* through a module global, with no output_shape (fix: give "
           "output_shape and import inside the function, or a custom layer)", "lambda_globals",
           hazards=("lambda-globals", "safe-mode"), formats=("h5", "keras"),
           loaders=("load_model", "load_model_unsafe"), backends=_ONLY_TF,
           build_note="the Lambda calls tf.nn: TensorFlow backend only"),
    _hazard("subclassed_weights", "a subclassed Model (variables created at its first call) rebuilt from code, then "
           "load_weights (fix: build it first: call it on a batch, or model.build(shape))", "subclassed",
           hazards=("unbuilt-subclassed",), formats=("weights_h5", "tf_checkpoint"), loaders=("rebuild",),
           drift_hint="load_weights into a subclassed model that was never called restored nothing (some Keras "
                      "releases only warn): call the model on a batch, or model.build(shape), before load_weights"),
    _hazard("normalization_state", "an adapted Normalization layer and an inverting one (invert=True); their "
           "statistics are compared after every load beside evaluate()", "normalized", "regression",
           state="normalization_state", evaluate=True, hazards=("normalization-state",),
           formats=("h5", "keras", "savedmodel", "weights_h5", "export"),
           loaders=("load_model", "rebuild", "saved_model"),
           drift_hint="the adapted Normalization statistics (mean, variance) were not restored: the loaded layer "
                      "normalizes with other numbers, silently; save as .keras from a fixed Keras, or set "
                      "mean/variance explicitly in the layer's constructor"),
    _hazard("optimizer_state", "a model trained with Adam; predictions are taken after one more training step, in "
           "the source and after each load: moments and iterations lost on reload show as drift",
           "adam_dense", train_step=True, evaluate=True, hazards=("optimizer-state",),
           formats=("h5", "keras", "savedmodel", "tf_checkpoint"), loaders=("load_model", "rebuild"),
           drift_hint="the optimizer state (Adam moments, iteration count) was not restored: training resumes from "
                      "fresh moments, silently (Keras 3 only warns 'Skipping variable loading for optimizer'); "
                      "resume training from a checkpoint of the same Keras generation, or accept a restart"),
    _hazard("sequential_input_shape", "Sequential with input_shape= on its first layer, then build() (fix: start "
           "with keras.Input(shape), and do not build() again)", "sequential_shape",
           hazards=("sequential-build",), formats=("h5", "keras", "json", "weights_h5"),
           loaders=("load_model", "model_from_json", "rebuild")),
    _hazard("serving_signature", "two named inputs and a named output, served from a SavedModel: the signature "
           "called by name with output keys (serving), and the restored object called with float64 inputs "
           "(saved_model_call), and converted to TFLite from the loaded .keras model or from the SavedModel (tflite)",
           "serving_model", "two_inputs", hazards=("serving-signature", "tflite-conversion"),
           formats=("keras", "savedmodel", "export"), loaders=("saved_model", "serving", "saved_model_call", "tflite")),
    _hazard("rnn_zoo", "Bidirectional(LSTM), GRU(reset_after=False) and TimeDistributed: RNN configs that changed "
           "between Keras 2 and 3 (fix: tf-keras for Keras 2 files, or rebuild in code + load_weights)", "rnn_zoo",
           "sequences", hazards=("rnn-configs",), formats=("h5", "keras", "weights_h5"),
           loaders=("load_model", "rebuild")),
    _hazard("nested_shared", "a functional sub-model nested in the model and shared by two inputs", "nested_shared",
           "pairs", hazards=("nested-models",), formats=("h5", "keras"), loaders=("load_model",),
           cell_timeout=60.0),
    _hazard("mixed_precision", "a layer under the mixed_float16 dtype policy (fix: tf-keras for Keras 2 files, or "
           "rebuild with keras.mixed_precision in code + load_weights)", "mixed_precision",
           hazards=("mixed-precision",), formats=("h5", "keras", "weights_h5"), loaders=("load_model", "rebuild"),
           tolerance=Tolerance(rtol=1e-3, atol=1e-3)),
    _hazard("vocabulary_file", "an IntegerLookup (the StringLookup / TextVectorization machinery) whose vocabulary "
           "is a file under the temporary folder (fix: pass the vocabulary as a list, or save as .keras, which keeps "
           "it inside the archive)", "vocabulary_lookup", "token_ids", hazards=("vocabulary-file",),
           formats=("h5", "keras", "savedmodel", "export"),
           loaders=("load_model", "saved_model"), backends=_ONLY_TF,
           build_note="lookup layers inside a model need the TensorFlow backend"),
    _hazard("nested_sublayers", "a custom layer holding its sublayers in nested lists, loaded with its custom "
           "objects", "nested_lists", objects="nested_objects", custom=True, hazards=("untracked-sublayers",),
           formats=("keras", "weights_h5"), loaders=("load_model_custom", "rebuild"),
           drift_hint="sublayers held in nested lists were not saved or not restored by one of the two Keras "
                      "releases: their weights are fresh, silently; keep sublayers in attributes or flat lists"),
    _hazard("grown_configs", "Dense + BatchNormalization: layer configs that gain keys in newer Keras 3 minors "
           "(quantization_config, renorm)", "grown_configs", hazards=("newer-minor",), formats=("h5", "keras"),
           loaders=("load_model",)),
    _hazard("concat_axis", "Concatenate along an integer axis (axis=1) of sequences of different lengths",
           "concat_axis", "short_sequences", hazards=("concatenate-axis",), formats=("h5", "keras"),
           loaders=("load_model",)),
    _hazard("numeric_runtime", "convolutions and a wide Dense compared bit for bit: oneDNN on or off "
           "(TF_ENABLE_ONEDNN_OPTS), XLA (load_model_xla) and other CPU kernels change the last bits",
           "conv_numeric", "images16", hazards=("runtime-numerics",), formats=("keras",),
           loaders=("load_model", "load_model_xla"), exact=True,
           drift_hint="the same weights computed with other kernels: oneDNN on/off (TF_ENABLE_ONEDNN_OPTS), XLA "
                      "(jit_compile) or another TensorFlow's CPU kernels round differently; compare with a "
                      "tolerance, or pin the runtime options where results must be bit-identical"),
)}

_APPS = "harness.agent.applications:"
# keras.applications, small: real layer mixes. Their formats are the full-model ones, the weights and an export
# (a Keras 2 SavedModel of a real architecture takes seconds per load and says nothing the export does not).
_APP_FORMATS = ("h5", "keras", "weights_h5", "export")


def _application(name: str, architecture: str, description: str, *, data: str = "images32", since: str = "",
                 objects: Optional[str] = None, hazards: Tuple[str, ...] = (), **fields: Any) -> ModelSpec:
    """An architecture from keras.applications: built where this Keras has it (`needs`), else unsupported."""
    code = Code(factory=_APPS + name, data=_APPS + data, custom_objects=None if objects is None else _APPS + objects)
    return ModelSpec(name="app_" + name, kind="probe", description=description, code=code, train_epochs=1,
                     hazards=("real-architecture", *hazards), formats=_APP_FORMATS,
                     needs=(f"applications.{architecture}",),
                     build_note=f"keras.applications.{architecture} arrived in Keras {since}" if since else "",
                     **fields)


APPLICATION_PROBES: Dict[str, ModelSpec] = {spec.name: spec for spec in (
    _application("mobilenet_v3_small", "MobileNetV3Small", "MobileNetV3Small (alpha 0.75, 32x32): squeeze-and-"
                 "excitation, hard-swish, depthwise convolutions, Rescaling inside the model", since="2.4",
                 hazards=("depthwise-groups",)),
    _application("efficientnet_b0", "EfficientNetB0", "EfficientNetB0 (32x32): Rescaling and Normalization inside "
                 "the model, squeeze-and-excitation, swish, stochastic depth", since="2.3",
                 hazards=("depthwise-groups",)),
    _application("mobilenet", "MobileNet", "MobileNet V1 (alpha 0.25, 32x32): depthwise separable convolutions",
                 hazards=("depthwise-groups",)),
    _application("mobilenet_v2", "MobileNetV2", "MobileNetV2 (alpha 0.35, 32x32): inverted residuals",
                 hazards=("depthwise-groups",)),
    _application("efficientnet_v2_b0", "EfficientNetV2B0", "EfficientNetV2B0 (32x32): fused MBConv blocks",
                 since="2.8", hazards=("depthwise-groups",)),
    _application("densenet121", "DenseNet121", "DenseNet121 (32x32): dense concatenations"),
    _application("nasnet_mobile", "NASNetMobile", "NASNetMobile (32x32): searched cells of separable convolutions"),
    _application("resnet50", "ResNet50", "ResNet50 (32x32, 94 MB of weights): residual bottlenecks"),
    _application("xception", "Xception", "Xception (71x71, 84 MB of weights): separable convolution flows",
                 data="images71"),
    _application("regnetx002", "RegNetX002", "RegNetX002 (32x32): grouped convolutions", since="2.9"),
    _application("convnext_micro", "ConvNeXtTiny", "ConvNeXt from its own builder at a micro size: layer scale "
                 "(LayerScale, which no Keras registers: passed as a custom object), LayerNormalization",
                 since="2.10", objects="convnext_objects", hazards=("custom-objects",),
                 withhold_custom_objects=_PLAIN_LOADERS),
)}
# One covers the mixes in the default matrix (depthwise, squeeze-and-excitation, hard-swish, Rescaling inside,
# layer names Keras 3 refuses); the others run when a matrix names them (matrices/applications.yaml). EfficientNetB0
# cost 42 % of the default run's cell time for one cause of its own (depthwise-groups, which the hazard zoo has).
DEFAULT_APPLICATIONS = ("app_mobilenet_v3_small",)

# Probes that break the loading process on purpose, to prove faults become cells.
FAULT_PROBES: Dict[str, ModelSpec] = {
    "fault_" + mode: ModelSpec(
        name="fault_" + mode, kind="probe", hazards=("hostile-artifact",), formats=("keras",), evaluate=False,
        shows_hazard=True,
        description="a custom layer whose from_config causes a " + what + " (harness self-test)",
        code=Code(factory=_FAULTS + mode, data=_PROBES + "features4", custom_objects=_FAULTS + "custom_objects"),
        register_custom_objects=True, withhold_custom_objects=_PLAIN_LOADERS)
    for mode, what in (("segfault", "segmentation fault"), ("abort", "abort()"), ("hang", "hang"),
                       ("oom", "runaway allocation"), ("network", "network connection attempt"),
                       ("write", "write outside the output folder"))
}
PROBES.update(FAULT_PROBES)
PROBES.update(HAZARD_PROBES)
PROBES.update(APPLICATION_PROBES)

# The hazard zoo runs when a matrix names its probes (matrices/hazards.yaml): it doubles the default run.
DEFAULT_MODELS = tuple(name for name in PROBES if name not in FAULT_PROBES and name not in HAZARD_PROBES
                       and (name not in APPLICATION_PROBES or name in DEFAULT_APPLICATIONS))
DEFAULT_FORMATS = tuple(FORMATS)
DEFAULT_LOADERS = tuple(name for name, spec in LOADERS.items() if not spec.opt_in)
OPT_IN_LOADERS = tuple(name for name, spec in LOADERS.items() if spec.opt_in)
