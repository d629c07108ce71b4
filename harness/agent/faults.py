"""Hostile-artifact self-tests: a layer whose deserialisation breaks the loading process.

Saving builds it through its constructor (harmless); loading it with
custom_objects runs from_config, which crashes, aborts, hangs or allocates
without end, so the harness can prove each fault becomes a report cell.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict


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
WRITE_TARGETS = ("/harness/artifacts/.tampered", "/opt/venv/.tampered", "/etc/.tampered", "/.tampered")


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


def fault_layer(keras: Any, mode: str, register: bool) -> Any:
    """The FaultLayer class; registered only in the process that builds the model."""

    class FaultLayer(keras.layers.Layer):  # type: ignore[name-defined,misc]
        def __init__(self, mode: str = "none", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.mode = mode

        def call(self, inputs: Any) -> Any:
            return inputs

        def get_config(self) -> Dict[str, Any]:
            config = super().get_config()
            config["mode"] = self.mode
            return config

        @classmethod
        def from_config(cls, config: Dict[str, Any]) -> Any:
            trigger(config.get("mode", "none"))
            return cls(**config)

    if register:
        from harness.agent.probes import register_once

        return register_once(keras, "FaultLayer", FaultLayer)
    return FaultLayer
