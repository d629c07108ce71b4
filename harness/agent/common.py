"""Small helpers shared by the agent's save, load and worker steps."""

from __future__ import annotations

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
