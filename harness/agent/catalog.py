"""Names shared by the host and the agent: probe models, formats, loaders, and which apply together.

Standard library only; imported on the host (validation, planning, reports) and
in containers (the agent), so it must run on Python 3.9.
"""

from typing import Dict, List, Tuple

# name -> description, the known causes it exercises (hazards), the formats it
# is saved in (None: every format), whether it needs custom_objects, an exact
# comparison, and the hint shown when it loads but predicts differently.
PROBES: Dict[str, Dict[str, object]] = {
    "dense": {
        "description": "small Dense/Dropout classifier, fixed seed, sparse_categorical_accuracy",
        "hazards": [],
    },
    "classifier": {
        "description": "Conv/BatchNorm/Dropout/Dense classifier compiled with metrics=['accuracy'], briefly trained",
        "hazards": ["accuracy-metric"],
        "drift_hint": "the ambiguous 'accuracy' metric resolved differently after reload: "
                      "compile with an explicit metric such as sparse_categorical_accuracy",
    },
    "classifier_explicit": {
        "description": "the same classifier compiled with an explicit sparse_categorical_accuracy (control)",
        "hazards": [],
    },
    "lambda": {
        "description": "a Lambda layer holding a Python lambda (stored as bytecode)",
        "hazards": ["lambda-bytecode", "safe-mode"],
    },
    "custom_layer": {
        "description": "a registered custom layer with get_config",
        "hazards": ["custom-objects"],
        "custom_objects": True,
    },
    "custom_loss": {
        "description": "a regression model compiled with a custom loss function",
        "hazards": ["custom-objects"],
        "custom_objects": True,
    },
    "text_rnn": {
        "description": "Embedding + LSTM + GRU text classifier",
        "hazards": ["rnn-kernels"],
    },
    "multi_input": {
        "description": "functional model with two named inputs",
        "hazards": ["input-order"],
    },
    "label_order": {
        "description": "class names indexed by list(set(labels)), recomputed in the loading process",
        "hazards": ["label-order"],
        "drift_hint": "class order built with list(set(...)) changes with PYTHONHASHSEED: "
                      "store the class list with the model (see label_order_sorted)",
    },
    "label_order_sorted": {
        "description": "the same classifier with its sorted class list stored beside the model (control)",
        "hazards": [],
    },
    "seeded": {
        "description": "the same seeded model built and briefly trained in each environment, never saved",
        "hazards": ["unseeded-randomness"],
        "formats": ["seed"],
        "exact": True,
        "drift_hint": "a model built from the same seed differs: initialisers or kernels changed between "
                      "versions (or the run is not deterministic); compare saved weights, not seeds",
    },
    "tf1_init": {
        "description": "Keras 2 model loaded on the TF1 session path, then global_variables_initializer()",
        "hazards": ["tf1-reinit"],
        "formats": ["h5"],
        "drift_hint": "global_variables_initializer() after load_model re-initialised the loaded weights: "
                      "initialise before loading, or leave TF1 sessions behind",
    },
}

# Probes that break the loading process on purpose, to prove faults become cells.
FAULT_PROBES: Dict[str, Dict[str, object]] = {
    "fault_" + mode: {
        "description": "a custom layer whose from_config causes a " + what + " (harness self-test)",
        "hazards": ["hostile-artifact"],
        "formats": ["keras"],
        "custom_objects": True,
        "fault": mode,
    }
    for mode, what in (("segfault", "segmentation fault"), ("abort", "abort()"), ("hang", "hang"),
                       ("oom", "runaway allocation"), ("network", "network connection attempt"),
                       ("write", "write outside the output folder"))
}
PROBES.update(FAULT_PROBES)

DEFAULT_MODELS = tuple(name for name in PROBES if name not in FAULT_PROBES)

# format -> the Keras generations that can write it ("seed" is no file: the model is rebuilt).
FORMATS: Dict[str, Tuple[int, ...]] = {
    "h5": (2, 3),
    "keras": (2, 3),
    "savedmodel": (2,),
    "weights_h5": (2, 3),
    "tf_checkpoint": (2,),
    "json": (2, 3),
    "export": (2, 3),
    "seed": (2, 3),
}

# loader -> the formats it reads.
LOADERS: Dict[str, Tuple[str, ...]] = {
    "load_model": ("h5", "keras", "savedmodel", "export"),
    "load_model_custom": ("h5", "keras", "savedmodel"),
    "load_model_unsafe": ("keras",),
    "load_model_nocompile": ("h5", "keras", "savedmodel"),
    "rebuild": ("h5", "weights_h5", "tf_checkpoint"),
    "model_from_json": ("json",),
    "saved_model": ("savedmodel", "export"),
    "tfsm_layer": ("savedmodel", "export"),
    "rebuild_from_seed": ("seed",),
    "tf1_session": ("h5",),
}
# Loaders that switch TensorFlow to graph mode for the whole process: they run last, in a worker of their own.
ISOLATED_LOADERS = ("tf1_session",)
# safe_mode=False executes whatever a file holds: only when a matrix asks for it. compile=False is
# the route for old files whose training config no longer loads; user models try it by default.
OPT_IN_LOADERS = ("load_model_unsafe", "load_model_nocompile")
DEFAULT_LOADERS = tuple(name for name in LOADERS if name not in OPT_IN_LOADERS)
DEFAULT_FORMATS = tuple(FORMATS)


def probe_formats(model: str, formats: List[str]) -> List[str]:
    """The requested formats this probe is saved in."""
    own = PROBES.get(model, {}).get("formats")
    if own is None:
        return [f for f in formats if f != "seed"]
    return [f for f in formats if f in own]  # type: ignore[operator]


def applies(model: str, fmt: str, loader: str) -> bool:
    """Whether a loader is tried on a probe saved in a format (one report cell)."""
    if fmt not in LOADERS.get(loader, ()):
        return False
    probe = PROBES.get(model, {})
    if loader == "load_model_custom":
        return bool(probe.get("custom_objects"))
    if loader == "tf1_session":
        return model == "tf1_init"
    if model == "tf1_init":
        return loader == "load_model"
    return True
