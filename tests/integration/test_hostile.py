"""Hostile artifacts and run directories, in real containers.

- A model whose code runs when it is loaded (a custom layer's from_config) forges the records and predictions of its
  target's other cells: under the default isolation level it succeeds (the run says that level allows it), and the
  FIFO it leaves where a prediction belongs is an error on that cell, not a hang; under --isolation artifact every
  forgery is refused.
- Its factory, run by the save container, leaves the environment's pip freeze as a link to a host file: the host
  never follows it, and the report never shows the file.
- An artifact directory holding a link to a host file is refused before anything is built.
- The containers of a harness running as root run as nobody (`docker inspect` of a running load container).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.engine import LABEL_RUN
from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENV = "py3.11-tf2.16.2-keras3.3.3"
SECRET = "host-secret-5d1c"
HOSTILE = '''
"""A model whose Forger layer forges its target's other cells when a load container deserializes it."""
import glob
import json
import os
import shutil

import tensorflow as tf

keras = tf.keras
SECRET_PATH = {secret!r}
_FORGED = []


def _forge():
    if _FORGED:
        return  # Keras may deserialize a layer more than once
    _FORGED.append(True)
    for manifest in glob.glob("/harness/artifacts/*/manifest.json"):
        source = manifest.split("/")[3]
        with open(manifest) as fh:
            models = json.load(fh)["models"]
        for name, entry in models.items():
            if name == "zhostile":
                continue
            for fmt in entry["formats"]:
                out = f"/harness/outputs/{{source}}/{{name}}/{{fmt}}/load_model.npy"
                try:
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    if name == "dense":  # where its prediction belongs, a FIFO: a reader would block for ever
                        if os.path.exists(out):
                            os.remove(out)
                        os.mkfifo(out)
                    else:  # the reference as the prediction, and a record that says it loaded: a pass
                        shutil.copyfile(f"/harness/artifacts/{{source}}/{{entry['reference']}}", out)
                except OSError:
                    pass  # not writable in this container
                if name == "dense":
                    continue
                with open("/harness/records.jsonl", "a") as fh:
                    fh.write(json.dumps({{"kind": "load", "source": source, "model": name, "format": fmt,
                                         "loader": "load_model", "status": "ok",
                                         "evaluate": entry.get("evaluate")}}) + "\\n")


class Forger(keras.layers.Layer):
    def call(self, inputs):
        return inputs

    @classmethod
    def from_config(cls, config):
        if os.path.exists("/harness/records.jsonl") and os.path.isdir("/harness/outputs"):
            _forge()
        return cls(**config)


CUSTOM_OBJECTS = {{"Forger": Forger}}


def build():
    # Run by the save container: leave its pip freeze as a link to a file of the host.
    os.remove("/harness/out/packages.txt")
    os.symlink(SECRET_PATH, "/harness/out/packages.txt")
    inputs = keras.Input(shape=(4,), name="features")
    outputs = Forger(name="forger")(keras.layers.Dense(3, name="dense_out")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    return model
'''
MATRIX = """
name: hostile
environments:
  - {python: "3.11", tensorflow: "2.16.2", keras: "3.3.3"}
models:
  - dense
  - lambda
  - name: zhostile            # sorts last: it loads after the cells it forges
    path: code
    factory: hostile:build
    custom_objects: hostile:CUSTOM_OBJECTS
    inputs: {shape: [8, 4]}
formats: [keras]
loaders: [load_model]
"""


def harness(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, check=False)


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def _cells(run: Path) -> dict[str, dict[str, Any]]:
    return {c["model"]: c for c in load_report(run / "report.json")["cells"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    secret = root / "host-secret.txt"
    secret.write_text(SECRET + "\n")
    (root / "code").mkdir()
    (root / "code" / "hostile.py").write_text(HOSTILE.format(secret=str(secret)))
    (root / "matrix.yaml").write_text(MATRIX)
    return root


def _run(project: Path, level: str) -> tuple[Path, str]:
    out = project / f"run-{level}"
    proc = harness("run", str(project / "matrix.yaml"), "--out", str(out), "--isolation", level,
                   "--cell-timeout", "120")
    assert proc.returncode in (0, 1), proc.stderr
    return out, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def target_run(project: Path, docker: None) -> tuple[Path, str]:
    """The hostile matrix under the default isolation level: its run directory and the run's output."""
    return _run(project, "target")


@pytest.fixture(scope="module")
def artifact_run(project: Path, docker: None) -> tuple[Path, str]:
    """The hostile matrix under --isolation artifact."""
    return _run(project, "artifact")


def test_the_default_level_lets_a_loaded_file_rewrite_its_targets_column_and_says_so(
        target_run: tuple[Path, str]) -> None:
    out, _ = target_run
    cells = _cells(out)
    # lambda's .keras file does not load under safe_mode: an honest error, forged into a pass.
    assert cells["lambda"]["status"] == "pass"
    report = load_report(out / "report.json")
    assert report["isolation"]["level"] == "target"
    assert "rewrite the records and predictions of every cell of its target's column" in report["isolation"]["promise"]


def test_a_fifo_left_where_a_prediction_belongs_is_an_error_not_a_hang(target_run: tuple[Path, str]) -> None:
    out, _ = target_run
    fifo = out / "outputs" / ENV / ENV / "dense" / "keras" / "load_model.npy"
    assert fifo.is_fifo()
    dense = _cells(out)["dense"]
    assert (dense["status"], dense["error"]["type"]) == ("error", "UnreadableFile")
    assert "a FIFO" in dense["error"]["message"]
    started = time.monotonic()
    assert harness("report", str(out), timeout=120).returncode in (0, 1)  # re-rendering does not block either
    assert time.monotonic() - started < 60


def test_under_artifact_isolation_every_forgery_is_refused(artifact_run: tuple[Path, str]) -> None:
    out, output = artifact_run
    cells = _cells(out)
    assert cells["lambda"]["status"] == "error"  # what loading it really did
    assert cells["dense"]["status"] == "pass"
    assert not (out / "outputs" / ENV / ENV / "dense" / "keras" / "load_model.npy").is_fifo()
    phase = load(out / "envs" / ENV / "load.json")
    loads = [c for c in load_report(out / "report.json")["cells"] if c["model"] == "zhostile"]
    # Each load of the file (one per loader, each in a fresh worker) forged lambda's record; dense's never got written.
    assert phase["refused_records"] == len(loads) == 2
    assert "record(s) from" in output and "named other cells; not kept" in output
    assert load_report(out / "report.json")["isolation"]["level"] == "artifact"


@pytest.mark.parametrize("level", ["target", "artifact"])
def test_a_pip_freeze_left_as_a_link_to_a_host_file_is_not_followed(level: str, request: pytest.FixtureRequest) -> None:
    out, output = request.getfixturevalue(f"{level}_run")
    assert (out / "artifacts" / ENV / "packages.txt").is_symlink()  # what the save container left
    assert not (out / "envs" / ENV / "packages.txt").exists()
    assert "a symbolic link" in load(out / "envs" / ENV / "save.json")["refused"]
    assert "a symbolic link" in output
    for name in ("report.html", "report.md", "report.json", "junit.xml"):
        assert SECRET not in (out / name).read_text(), name


@pytest.mark.parametrize("level", ["target", "artifact"])
def test_the_run_directory_stays_the_invoking_users(level: str, request: pytest.FixtureRequest) -> None:
    out, _ = request.getfixturevalue(f"{level}_run")
    foreign = [p for p in out.rglob("*") if p.lstat().st_uid != os.getuid()]
    assert foreign == []


def test_an_artifact_directory_holding_a_link_to_a_host_file_is_refused(project: Path, docker: None) -> None:
    saved = project / "saved"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"")
    (saved / "variables" / "variables.index").symlink_to(project / "host-secret.txt")
    (project / "linked.yaml").write_text(
        'environments: [{python: "3.11", tensorflow: "2.16.2", keras: "3.3.3"}]\n'
        "models: [{name: old, artifact: saved, inputs: {shape: [2, 4]}}]\n")
    proc = harness("run", str(project / "linked.yaml"), "--out", str(project / "linked-run"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "variables/variables.index, a symbolic link" in proc.stderr
    assert not (project / "linked-run").exists()


def test_a_load_container_never_runs_as_root(tmp_path: Path, docker: None) -> None:
    (tmp_path / "matrix.yaml").write_text('environments: [{python: "3.11", tensorflow: "2.16.2", keras: "3.3.3"}]\n'
                                          "models: [fault_hang]\nformats: [keras]\nloaders: [load_model_custom]\n")
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(tmp_path / "matrix.yaml"), "--out",
                             str(tmp_path / "run"), "--cell-timeout", "300"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        container = _wait_for_load_container(tmp_path / "run", 600)
        inspected = subprocess.run(["docker", "inspect", "--format", "{{.Config.User}} {{.State.Running}}",
                                    container], capture_output=True, text=True, check=True).stdout.split()
        user = inspected[0]
        print(f"docker inspect {container}: User={user} Running={inspected[1]}")
        assert inspected[1] == "true"
        assert user == ("65534:65534" if os.getuid() == 0 else f"{os.getuid()}:{os.getgid()}")
        assert not user.startswith("0:")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr


def _wait_for_load_container(run: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run / "run.json").is_file():
            run_id = load(run / "run.json").get("run_id")
            found = subprocess.run(["docker", "ps", "-q", "--filter", f"label={LABEL_RUN}={run_id}",
                                    "--filter", "name=-load-"], capture_output=True, text=True, check=True)
            if found.stdout.split():
                time.sleep(2)  # its worker is inside from_config, hanging
                return found.stdout.split()[0]
        time.sleep(0.5)
    raise AssertionError("no load container appeared")
