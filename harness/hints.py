"""Known causes of load failures: an error's type and message -> a hint naming cause and fix."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """A pattern over 'Type: message' and the hint it earns."""

    pattern: str
    hint: str


RULES = (
    Rule(r"bad marshal data|unknown opcode|SystemError.*(code|lambda)|code\(\) argument",
         "Lambda layer bytecode from another Python version: rebuild the layer in code, or save weights only"),
    Rule(r"safe_mode|unsafe deserialization|lambda.*not allowed",
         "Keras 3 safe_mode refused a Lambda layer: rebuild it in code, or pass safe_mode=False for a trusted file"),
    Rule(r"File format not supported.*SavedModel|legacy SavedModel|TFSMLayer",
         "Keras 3 load_model cannot read a SavedModel: use keras.layers.TFSMLayer, or re-export the model as .keras"),
    Rule(r"keras\.src\.engine|No module named 'keras\.(src\.)?engine'|keras\.engine",
         "written by Keras 2 (keras.engine): load it with tf-keras (TF_USE_LEGACY_KERAS=1), or rebuild + load_weights"),
    Rule(r"keras\.src\.models\.functional|keras\.src\.models|module 'keras\.src\.(ops|backend)",
         "written by Keras 3 (keras.src.models): Keras 2 cannot read it; load it with Keras 3, or save weights"),
    Rule(r"Unknown (layer|loss|metric|activation|object)|Could not locate (class|function)",
         "custom object not known at load time: pass custom_objects or register it with register_keras_serializable"),
    Rule(r"'str' object has no attribute 'decode'",
         "h5py >= 3 returns str where old Keras expects bytes: pin h5py<3 for this Keras"),
    Rule(r"Layer count mismatch|axes don't match|shape mismatch|Shapes .* are incompatible",
         "weights do not fit the rebuilt architecture: the model code changed between save and load"),
    Rule(r"unexpected keyword argument|Unrecognized keyword arguments",
         "the layer config holds arguments this Keras does not know: written by a newer Keras"),
    Rule(r"No file or directory found|Unable to (open|synchronously open) file|not a zip file|BadZipFile",
         "the artifact is missing or truncated"),
    Rule(r"WorkerCrash.*SIGKILL", "the loading process was killed, most likely out of memory: raise the memory limit"),
    Rule(r"WorkerCrash.*SIG(SEGV|ABRT|BUS|ILL)",
         "the loading process crashed in native code: a TensorFlow/h5py binary incompatibility or a hostile file"),
    Rule(r"WorkerCrash", "the loading process died: see the container log"),
    Rule(r"Timeout", "no result within the per-load timeout: the load hangs, or the timeout is too short"),
)


def hint_for(error_type: str, message: str) -> str | None:
    """The first matching hint for an error, or None when the cause is unknown."""
    text = f"{error_type}: {message}"
    for rule in RULES:
        if re.search(rule.pattern, text, flags=re.IGNORECASE | re.DOTALL):
            return rule.hint
    return None
