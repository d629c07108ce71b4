"""Fault injection in real containers: artifacts whose loading damages what their own load container may write.

Each hostile model's code runs when its file is loaded (a custom layer's from_config, in the load worker) and damages
one thing: its records (NaN seconds, grown sparse past 512 MiB, made unreadable, cut mid-line) or its predictions
(a .npy whose header declares a zero-size array of a huge shape, a link to a file of the container, a FIFO). One
more model's factory, run by the save container, damages its environment's files (NaN in env.json, the pip freeze
left as a FIFO).

Under --isolation artifact every other artifact's cells are what a clean run gives (pass), the hostile artifacts'
cells are errors, and the run and all its reports are whole. Under the default level, which promises less (a
loaded file may rewrite its target's column), the run and its reports survive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fake_run import strict_json

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENV = "py3.11-tf2.16.2-keras3.3.3"
HOSTILE = '''
"""Models whose loading damages what its own load container may write."""
import atexit
import os

import numpy as np
import tensorflow as tf

keras = tf.keras
RECORDS = "/harness/records.jsonl"
_DONE = []


def _damage(mode):
    # Only in a load container (it has an outputs folder), once per process.
    if mode in _DONE or not os.path.isdir("/harness/outputs") or not os.path.exists(RECORDS):
        return
    _DONE.append(mode)
    if mode == "nan_seconds":  # the worker times its load with this clock: its record's seconds are NaN
        import time
        time.monotonic = lambda: float("nan")
    elif mode == "oversize":  # sparse: no disk used
        os.truncate(RECORDS, 600 << 20)
    elif mode == "unreadable":
        os.chmod(RECORDS, 0)
    elif mode == "truncated":  # a record cut mid-line: the agent's own record lands on the same line
        with open(RECORDS, "a") as fh:
            fh.write('{{"kind": "load", "status": "ok", "source": ')
    elif mode == "huge_shape":
        def save(fh, array, *args, **kwargs):
            np.lib.format.write_array_header_1_0(fh, {{"descr": "<f4", "fortran_order": False,
                                                      "shape": (0, 1 << 62)}})
        np.save = save
    elif mode in ("linked_output", "fifo_output"):
        real = os.replace

        def replace(src, dst, *args, **kwargs):
            if not str(dst).endswith(".npy"):
                return real(src, dst, *args, **kwargs)
            os.unlink(src)
            if os.path.lexists(dst):
                os.unlink(dst)
            if mode == "linked_output":
                os.symlink("/etc/passwd", dst)
            else:
                os.mkfifo(dst)
        os.replace = replace


class Saboteur(keras.layers.Layer):
    def __init__(self, mode="none", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {{**super().get_config(), "mode": self.mode}}

    @classmethod
    def from_config(cls, config):
        _damage(config.get("mode", "none"))
        return cls(**config)


CUSTOM_OBJECTS = {{"Saboteur": Saboteur}}


def _model(mode):
    inputs = keras.Input(shape=(4,), name="features")
    outputs = keras.layers.Dense(3, name="dense_out")(Saboteur(mode=mode, name="saboteur")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    return model


def good():
    return _model("none")


def env_files():
    """Run by the save container: on its way out it leaves NaN in env.json and its pip freeze as a FIFO."""
    def spoil():
        with open("/harness/out/env.json", "w") as fh:
            fh.write('{{"python": "3.11.9", "tensorflow": Infinity, "keras": "3.3.3", "keras_major": NaN}}')
        os.unlink("/harness/out/packages.txt")
        os.mkfifo("/harness/out/packages.txt")
    atexit.register(spoil)
    return _model("none")

{factories}
'''
FAULTS = ("nan_seconds", "oversize", "unreadable", "truncated", "huge_shape", "linked_output", "fifo_output")
INNOCENT = ("dense", "classifier", "good", "env_files")


def _matrix() -> str:
    entry = "  - {{name: {name}, path: code, factory: 'hostile:{name}', custom_objects: 'hostile:CUSTOM_OBJECTS', " \
            "inputs: {{shape: [8, 4]}}}}\n"
    return ("name: faults\n"
            'environments: [{python: "3.11", tensorflow: "2.16.2", keras: "3.3.3"}]\n'
            "models:\n  - dense\n  - classifier\n"
            + "".join(entry.format(name=name) for name in ("good", "env_files", *FAULTS))
            + "formats: [keras]\nloaders: [load_model]\n")


def harness(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    (root / "code").mkdir()
    factories = "\n".join(f"def {mode}():\n    return _model({mode!r})\n\n" for mode in FAULTS)
    (root / "code" / "hostile.py").write_text(HOSTILE.format(factories=factories))
    (root / "matrix.yaml").write_text(_matrix())
    return root


def _run(project: Path, level: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = project / f"run-{level}"
    proc = harness("run", str(project / "matrix.yaml"), "--out", str(out), "--isolation", level,
                   "--cell-timeout", "180")
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    return out, proc


@pytest.fixture(scope="module")
def artifact_run(project: Path, docker: None) -> tuple[Path, subprocess.CompletedProcess[str]]:
    return _run(project, "artifact")


@pytest.fixture(scope="module")
def target_run(project: Path, docker: None) -> tuple[Path, subprocess.CompletedProcess[str]]:
    return _run(project, "target")


def _whole(out: Path, proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The run ended with a verdict (0 or 1, never 2), every report was written, report.json is standard JSON, and
    `harness report` renders it again from the records."""
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    report: dict[str, Any] = strict_json((out / "report.json").read_text())
    for name in ("report.md", "report.html", "junit.xml"):
        assert (out / name).stat().st_size > 0, name
    again = harness("report", str(out), timeout=600)
    assert again.returncode in (0, 1) and "Traceback" not in again.stderr, again.stderr
    return report


def _statuses(report: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for cell in report["cells"]:
        found.setdefault(cell["model"], []).append(cell["status"])
    return found


def test_under_artifact_isolation_each_hostile_artifact_costs_only_its_own_cells(
        artifact_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, proc = artifact_run
    report = _whole(out, proc)
    statuses = _statuses(report)
    assert set(statuses) == {*INNOCENT, *FAULTS}
    kept = {m: s for m, s in statuses.items() if m in INNOCENT}
    assert all(set(s) == {"pass"} for s in kept.values()), kept  # as a clean run leaves them
    unreadable_counts = os.getuid() != 0  # root reads a file whatever its mode
    for mode in FAULTS:
        if mode == "unreadable" and not unreadable_counts:
            continue
        assert set(statuses[mode]) <= {"error", "crash", "timeout"}, (mode, statuses[mode])
    errors = {c["model"]: c["error"]["type"] for c in report["cells"] if c["model"] in FAULTS and c.get("error")}
    print(f"fault injection (--isolation artifact): {len(statuses)} artifacts, {len(FAULTS)} faults in load "
          f"containers + 1 in a save container; {sum(map(len, kept.values()))} cells of {len(kept)} other artifacts "
          f"kept intact; hostile cells: {json.dumps(errors, sort_keys=True)}")
    assert errors["nan_seconds"] == "MalformedRecord"
    assert errors["oversize"] == errors["huge_shape"] == errors["linked_output"] == errors["fifo_output"] \
        == "UnreadableFile"
    assert errors["truncated"] == "MissingRecord"


def test_a_save_container_that_damages_its_environments_files_costs_no_cell(
        artifact_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, proc = artifact_run
    report = _whole(out, proc)
    env = next(e for e in report["environments"] if e["id"] == ENV)
    assert env["keras_major"] is None and env["tensorflow"] == "==2.16.2"  # from its spec, not from the damaged file
    assert "a FIFO" in json.loads((out / "envs" / ENV / "save.json").read_text())["refused"]
    assert not (out / "envs" / ENV / "packages.txt").exists()


def test_under_target_isolation_the_run_and_its_reports_survive(
        target_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, proc = target_run
    report = _whole(out, proc)
    statuses = _statuses(report)
    assert set(statuses) == {*INNOCENT, *FAULTS}
    print(f"fault injection (--isolation target): {len(report['cells'])} cells decided: "
          f"{json.dumps({m: sorted(set(s)) for m, s in sorted(statuses.items())})}")
