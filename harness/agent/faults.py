"""Hostile-artifact self-tests: a layer whose deserialisation breaks the loading process.

Saving builds it through its constructor (harmless); loading it with
custom_objects runs from_config, which crashes, aborts, hangs or allocates
without end, so the harness can prove each fault becomes a report cell.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict

from harness.agent.protocol import ARTIFACTS_MOUNT


def trigger(mode: str) -> None:
    """Break this process in the named way."""
    if mode == "segfault":
        import ctypes

        ctypes.string_at(0)  # read address 0: SIGSEGV
    elif mode == "abort":
        os.abort()
    elif mode == "hang":
        while True:
            time.sleep(3600)
    elif mode == "oom":
        hog = []
        while True:
            hog.append(bytearray(b"\x01") * (1 << 27))  # touched pages: really resident
    elif mode == "network":
        _try_network()
    elif mode == "write":
        _try_writes()


def _try_network() -> None:
    """Open a connection to the outside; the sandbox must refuse it."""
    import socket

    try:
        socket.create_connection(("1.1.1.1", 53), timeout=3).close()
    except OSError as exc:
        raise PermissionError(f"network blocked: {exc}") from None
    raise RuntimeError("SANDBOX BREACH: a network connection succeeded")


# Places a hostile artifact would like to write: other artifacts, the image, the system.
WRITE_TARGETS = (ARTIFACTS_MOUNT + "/.tampered", "/opt/venv/.tampered", "/etc/.tampered", "/.tampered")


def _try_writes() -> None:
    """Write outside the output folder; the sandbox must refuse every attempt."""
    written, refused = [], []
    for path in WRITE_TARGETS:
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("tampered")
            written.append(path)
        except OSError as exc:
            refused.append(f"{path}: {exc.strerror}")
    if written:
        raise RuntimeError("SANDBOX BREACH: wrote " + ", ".join(written))
    raise PermissionError("writes blocked: " + "; ".join(refused))


_CLASSES: Dict[int, Any] = {}  # per Keras module: one FaultLayer class per process


def _keras() -> Any:
    import tensorflow as tf

    return tf.keras


def _fault_layer() -> Any:
    keras = _keras()
    if id(keras) not in _CLASSES:
        _CLASSES[id(keras)] = _define(keras)
    return _CLASSES[id(keras)]


def _define(keras: Any) -> Any:
    class FaultLayer(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self, mode: str = "none", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.mode = mode

        def call(self, inputs: Any) -> Any:
            return inputs

        def get_config(self) -> Dict[str, Any]:
            config: Dict[str, Any] = super().get_config()
            config["mode"] = self.mode
            return config

        @classmethod
        def from_config(cls, config: Dict[str, Any]) -> Any:
            trigger(config.get("mode", "none"))
            return cls(**config)

    return FaultLayer


def custom_objects() -> Dict[str, Any]:
    """The FaultLayer, as a loading process that has the code passes it."""
    layer = _fault_layer()
    return {"FaultLayer": layer, "harness>FaultLayer": layer}


def _model(mode: str) -> Any:
    keras = _keras()
    inputs = keras.Input(shape=(16,), name="features")
    x = _fault_layer()(mode=mode, name="fault")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="fault_probe")


# One factory per fault: the catalog names them like any model's code.
def segfault() -> Any:
    """A model whose loading segfaults."""
    return _model("segfault")


def abort() -> Any:
    """A model whose loading calls abort()."""
    return _model("abort")


def hang() -> Any:
    """A model whose loading never returns."""
    return _model("hang")


def oom() -> Any:
    """A model whose loading allocates without end."""
    return _model("oom")


def network() -> Any:
    """A model whose loading opens a network connection."""
    return _model("network")


def write() -> Any:
    """A model whose loading writes outside its output folder."""
    return _model("write")
