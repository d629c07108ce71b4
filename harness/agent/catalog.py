"""What the harness knows by name: the built-in probe models, the save formats and the loaders.

Adding a probe is one entry below plus its code (harness/agent/probes.py); nothing else names it.
Standard library only: read by the host (validation, planning, reports) and by the agent.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from harness.agent.spec import Code, FormatSpec, LoaderSpec, ModelSpec

# format -> the Keras generations that can write it ("seed" is no file: the model is rebuilt from its seed).
FORMATS: Dict[str, FormatSpec] = {
    "h5": FormatSpec((2, 3), "load_model", ".h5"),
    "keras": FormatSpec((2, 3), "load_model", ".keras"),
    "savedmodel": FormatSpec((2,), "load_model", "SavedModel"),
    "weights_h5": FormatSpec((2, 3), "rebuild", "weights .h5"),
    "tf_checkpoint": FormatSpec((2,), "rebuild", "TF checkpoint"),
    "json": FormatSpec((2, 3), "model_from_json", "JSON + weights"),
    "export": FormatSpec((2, 3), "saved_model", "model.export() SavedModel"),
    "seed": FormatSpec((2, 3), "rebuild_from_seed", "seed", named_only=True),
}

# safe_mode=False executes whatever a file holds: only when a matrix asks for it. compile=False is
# the route for old files whose training config no longer loads; user models try it by default.
LOADERS: Dict[str, LoaderSpec] = {
    "load_model": LoaderSpec(("h5", "keras", "savedmodel", "export"), "keras.models.load_model"),
    "load_model_custom": LoaderSpec(("h5", "keras", "savedmodel"), "load_model(custom_objects=...)",
                                    needs_custom_objects=True),
    "load_model_unsafe": LoaderSpec(("keras",), "load_model(safe_mode=False)", opt_in=True),
    "load_model_nocompile": LoaderSpec(("h5", "keras", "savedmodel"), "load_model(compile=False)", opt_in=True),
    "rebuild": LoaderSpec(("h5", "weights_h5", "tf_checkpoint"), "rebuild in code + load_weights"),
    "model_from_json": LoaderSpec(("json",), "model_from_json + load_weights"),
    "saved_model": LoaderSpec(("savedmodel", "export"), "tf.saved_model.load, serving signature"),
    "tfsm_layer": LoaderSpec(("savedmodel", "export"), "keras.layers.TFSMLayer"),
    "rebuild_from_seed": LoaderSpec(("seed",), "rebuilt from the seed"),
    "tf1_session": LoaderSpec(("h5",), "load_model in a TF1 session", named_only=True, graph_mode=True),
}

_PROBES = "harness.agent.probes:"
_FAULTS = "harness.agent.faults:"
# The plain loaders load a probe as a process without its code would: without custom objects (the
# hazard the custom-object probes show); load_model_custom passes them.
_PLAIN_LOADERS = ("load_model", "load_model_unsafe", "load_model_nocompile")


def _probe(name: str, description: str, factory: str, data: str = "features4", *, custom: bool = False,
           train_labels: Optional[str] = None, files: Optional[str] = None, postprocess: Optional[str] = None,
           **fields: Any) -> ModelSpec:
    """A built-in probe: briefly trained on its own seeded data; custom objects registered where it is built."""
    def ref(function: Optional[str]) -> Optional[str]:
        return None if function is None else _PROBES + function

    code = Code(factory=ref(factory), data=ref(data), custom_objects=ref("custom_objects") if custom else None,
                train_labels=ref(train_labels), files=ref(files), postprocess=ref(postprocess))
    return ModelSpec(name=name, kind="probe", description=description, code=code, train_epochs=2,
                     register_custom_objects=custom, withhold_custom_objects=_PLAIN_LOADERS,
                     **fields)


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

DEFAULT_MODELS = tuple(name for name in PROBES if name not in FAULT_PROBES)
DEFAULT_FORMATS = tuple(FORMATS)
DEFAULT_LOADERS = tuple(name for name, spec in LOADERS.items() if not spec.opt_in)
OPT_IN_LOADERS = tuple(name for name, spec in LOADERS.items() if spec.opt_in)
