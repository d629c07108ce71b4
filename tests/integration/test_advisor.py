"""The upgrade advisor for real: a Keras 2 SavedModel that no Keras 3 route reads, checked, migrated and bisected.

examples/legacy_savedmodel/legacy_classifier was saved by TF 2.15 with a legacy Adam's slots inside: in
TF 2.16 + Keras 3 every route fails ('_UserObject' object has no attribute 'add_slot'), tf-keras in the same
TensorFlow loads it, and so does an .h5 saved again in TF 2.15. The environments are the ones the other
integration tests build (TF 2.15.1, TF 2.16.2 with Keras 3.3.3, TF 2.16.2 with tf-keras): nothing new to build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "legacy_savedmodel"
OLD, NEW, LEGACY = "py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3", "py3.11-tf2.16.2-tfkeras"
MODEL = ["--model", str(EXAMPLE / "legacy_classifier"), "--inputs", str(EXAMPLE / "inputs.npy"), "--reference",
         str(EXAMPLE / "reference.npy")]


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ), timeout=1800, check=False)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory, docker: None) -> tuple[subprocess.CompletedProcess[str], Path]:
    root = tmp_path_factory.mktemp("advisor")
    proc = harness("check", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", *MODEL, "--out", str(root / "check"),
                   "--migrate", str(root / "migrated"))
    return proc, root


def test_a_file_no_keras3_route_reads_is_not_safe_and_the_tf_keras_route_is_named(
        checked: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, root = checked
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "verdict: NOT SAFE by your route, but another route works" in proc.stdout
    assert "'_UserObject' object has no attribute 'add_slot'" in proc.stdout
    assert f"with tf-keras in the same TensorFlow ({LEGACY}" in proc.stdout
    assert "    ok SavedModel / keras.models.load_model: matches" in proc.stdout
    verdict = json.loads((root / "check" / "check.json").read_text())
    assert (verdict["verdict"], verdict["route"], verdict["tf_keras"]) == ("safe via another route",
                                                                          ["savedmodel", "load_model"], LEGACY)
    assert not [r for r in verdict["works"] if r["kind"] == "as_is"]  # nothing Keras 3 reads as it is
    legacy = [r for r in verdict["works"] if r["kind"] == "tf_keras"]
    assert legacy and legacy[0]["max_abs_diff"] is not None and legacy[0]["max_abs_diff"] <= 1e-5
    report = load_report(root / "check" / "report.json")
    (migration,) = report["migrations"]
    assert (migration["status"], migration["env"], migration["loader"]) == ("made", OLD, "load_model")
    assert any(v["target"] == NEW for v in migration["verified"])


def test_the_migrated_file_handed_over_loads_in_the_target_and_predicts_like_the_original(
        checked: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, root = checked
    folder = root / "migrated"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["verified"]["env"] == NEW and manifest["verified"]["tf_keras"] is False
    assert manifest["made"]["env"] == OLD and manifest["original"]["format"] == "savedmodel"
    image = next(e["image"] for e in load_report(root / "check" / "report.json")["environments"] if e["id"] == NEW)
    np.save(folder / "inputs.npy", np.load(EXAMPLE / "inputs.npy"))
    script = ("import runpy, numpy as np; ns = runpy.run_path('/handed/load.py'); model = ns['model']; "
              "x = np.load('/handed/inputs.npy'); np.save('/out/predicted.npy', np.asarray(model(x)))")
    (root / "out").mkdir()
    run = subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}",
                          "-e", "HOME=/tmp", "-e",
                          "TF_CPP_MIN_LOG_LEVEL=3", "-v", f"{folder}:/handed:ro", "-v", f"{root / 'out'}:/out",
                          image, "python", "-c", script], capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    predicted, reference = np.load(root / "out" / "predicted.npy"), np.load(EXAMPLE / "reference.npy")
    assert np.allclose(predicted, reference, rtol=1e-5, atol=1e-5)
    assert f"migrated: {folder / manifest['file']}" in proc.stdout


def test_bisect_names_the_release_that_broke_the_route(tmp_path: Path, docker: None) -> None:
    # The releases come from the package index: between 2.15.1 and 2.16.2 there is no other minor.
    proc = harness("bisect", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", *MODEL, "--out", str(tmp_path / "b"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "your route  SavedModel / keras.models.load_model" in proc.stdout
    assert "last good 2.15.1, first bad 2.16.2" in proc.stdout
    found = load_report(tmp_path / "b" / "report.json")["bisect"]
    assert (found["axis"], found["package"], found["releases"], found["probed"]) == (
        "tensorflow", "tensorflow-cpu", ["2.15.1", "2.16.2"], ["2.15.1", "2.16.2"])
    yours = found["routes"][0]
    assert (yours["last_good"], yours["first_bad"], yours["adjacent"], yours["monotone"]) == ("2.15.1", "2.16.2",
                                                                                              True, True)
    assert yours["cause"] and yours["error"].startswith("ValueError")
    assert "Bisect" in (tmp_path / "b" / "report.html").read_text()
