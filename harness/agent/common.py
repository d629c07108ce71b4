"""Small helpers shared by the agent's save, load and worker steps."""

from __future__ import annotations

import hashlib
import json
import os
import traceback
from typing import Any, Dict

MAX_MESSAGE = 2000


def error_info(exc: BaseException) -> Dict[str, str]:
    """Type, message and a short traceback of an exception, for a record."""
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", ""),
        "message": str(exc)[:MAX_MESSAGE],
        "traceback": "".join(tb)[-4000:],
    }


def sha256_file(path: str) -> str:
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(root: str) -> Dict[str, str]:
    """sha256 of every file below root, keyed by its path relative to root."""
    found = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(folder, name)
            found[os.path.relpath(full, root)] = sha256_file(full)
    return dict(sorted(found.items()))


def write_json_atomic(path: str, data: Any) -> None:
    """Write JSON so that readers see the old file or the whole new one."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ and Python logging out of the way (it is not data)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
