"""Small helpers shared by the agent's save, load and worker steps."""

from __future__ import annotations

import gc
import os
import traceback

from harness.agent.protocol import ErrorInfo

MAX_MESSAGE = 2000
_TAIL = 600  # Keras 3 wraps the cause last ("Error when deserializing ... config={...}. Exception encountered: ...")


def error_info(exc: BaseException) -> ErrorInfo:
    """Type, message and a short traceback of an exception, for a record."""
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", ""),
        "message": cut_message(str(exc)),
        "traceback": "".join(tb)[-4000:],
    }


def cut_message(message: str) -> str:
    """A message of at most MAX_MESSAGE characters that keeps its beginning and its end."""
    if len(message) <= MAX_MESSAGE:
        return message
    return message[:MAX_MESSAGE - _TAIL - 3] + " … " + message[-_TAIL:]


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ and Python logging out of the way (it is not data)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")


# Young objects between collections of the youngest generation (CPython's default: 700). Loading a model
# makes tens of thousands of objects; at 700, the cyclic collector ran thousands of times per load worker and
# its full collections walked TensorFlow's whole heap: a tenth of the worker's CPU time.
GC_YOUNG = 5000


def settle_heap() -> None:
    """Once TensorFlow is imported: its objects live as long as the process, so the cyclic collector stops
    walking them (gc.freeze), and collects less often. Garbage is still collected; values are untouched."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 10)
