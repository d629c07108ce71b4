"""Adapting real files with the agent's own file code (harness/agent/adapt.py), then loading the copies with the Keras
installed here (Keras 3): small files saved by TF 2.12.1 and 2.15.1 in the harness images (tests/agent/fixtures)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.agent import adapt
from harness.agent.protocol import ADAPTED, sha256_file

pytestmark = [pytest.mark.agent,
              pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")]

FIXTURES = Path(__file__).parent / "fixtures"
X = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)


PREDICT = """
import json, sys
import numpy as np
import keras
model = keras.models.load_model(sys.argv[1], safe_mode=True)
np.save(sys.argv[2], np.asarray(model(np.load(sys.argv[3]))))
rate = getattr(model.optimizer, "_learning_rate", None) if model.optimizer else None
print(json.dumps({"keras": keras.__version__, "schedule": type(rate).__name__}))
"""


def keras_version() -> str:
    """The Keras installed here (asked in a process of its own, as the agent runs: TensorFlow's warnings stay there)."""
    found = subprocess.run([sys.executable, "-c", "import keras; print(keras.__version__)"], capture_output=True,
                           text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=600)
    return found.stdout.split()[-1]


def predict(path: Path, tmp: Path) -> tuple[np.ndarray, dict[str, str]]:
    """What keras.models.load_model(path) (safe mode on) predicts for X here, and what it says of the optimizer."""
    np.save(tmp / "x.npy", X)
    found = subprocess.run([sys.executable, "-c", PREDICT, str(path), str(tmp / "y.npy"), str(tmp / "x.npy")],
                           capture_output=True, text=True, check=True, timeout=600,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return np.load(tmp / "y.npy"), json.loads(found.stdout.strip().splitlines()[-1])


def _softmax(kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    logits = X @ kernel + bias
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _dense_by_hand(path: Path) -> np.ndarray:
    """What the .h5 file's one Dense softmax layer predicts for X, from its stored weights (no Keras)."""
    import h5py

    with h5py.File(path, "r") as handle:
        group = handle["model_weights"]["probs"]["probs"]
        return _softmax(np.asarray(group["kernel:0"]), np.asarray(group["bias:0"]))


def _archive_by_hand(path: Path) -> np.ndarray:
    """The same for the Keras 2.12 archive, whose weights sit under _layer_checkpoint_dependencies/."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as handle:
        group = handle["_layer_checkpoint_dependencies"]["dense"]["vars"]
        return _softmax(np.asarray(group["0"]), np.asarray(group["1"]))


def test_a_keras_2_15_h5_with_a_legacy_decay_is_adapted_compiled_and_predicts_the_same(tmp_path: Path) -> None:
    source = tmp_path / "model.h5"
    shutil.copyfile(FIXTURES / "legacy-decay-2.15.h5", source)
    before = sha256_file(str(source))
    account = adapt.make(str(source), keras_version(), str(tmp_path / "adapted"))
    assert account["status"] == "adapted" and sha256_file(str(source)) == before  # the original is untouched
    assert account["files"]["model.h5"] == sha256_file(str(tmp_path / "adapted" / "model.h5"))
    assert json.loads((tmp_path / "adapted" / ADAPTED).read_text()) == account
    predicted, said = predict(tmp_path / "adapted" / "model.h5", tmp_path)
    assert said["schedule"] == "InverseTimeDecay"  # compiled, the legacy decay as its schedule
    assert np.allclose(predicted, _dense_by_hand(source), atol=1e-6)


def test_a_keras_2_12_archive_is_adapted_and_keras_3_loads_it_in_safe_mode(tmp_path: Path) -> None:
    account = adapt.make(str(FIXTURES / "dense-2.12.keras"), keras_version(), str(tmp_path / "adapted"))
    # Keras 2.12 left its compile options unset too, which Keras 3 compiles so that evaluate() fails
    assert [a["adapter"] for a in account["adapters"]] == ["keras3-module-paths", "keras2-compile-options"]
    predicted, _ = predict(tmp_path / "adapted" / "dense-2.12.keras", tmp_path)
    assert np.allclose(predicted, _archive_by_hand(FIXTURES / "dense-2.12.keras"), atol=1e-6)


def test_a_change_that_cannot_be_made_leaves_no_copy(tmp_path: Path) -> None:
    account = adapt.make(str(FIXTURES / "time-major-2.15.h5"), keras_version(), str(tmp_path / "adapted"))
    assert account["status"] == "cannot" and account["adapters"][-1]["adapter"] == "rnn-time-major"
    assert sorted(p.name for p in (tmp_path / "adapted").iterdir()) == [ADAPTED]


def test_a_file_that_needs_nothing_for_its_own_release_is_left_alone(tmp_path: Path) -> None:
    account = adapt.make(str(FIXTURES / "legacy-decay-2.15.h5"), "2.15.0", str(tmp_path / "same"))
    assert account["status"] == "nothing" and not (tmp_path / "same" / "legacy-decay-2.15.h5").exists()
