"""Users' own models for real: the examples' factory and old .h5 through run, and check between two environments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW, LEGACY = "py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3", "py3.11-tf2.16.2-tfkeras"
EXAMPLES = ROOT / "examples"


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ), timeout=1800, check=False)


def cells(run: Path) -> dict[tuple[str, str, str, str, str], dict[str, Any]]:
    report = load_report(run / "report.json")
    return {(c["source"], c["target"], c["model"], c["format"], c["loader"]): c for c in report["cells"]}


@pytest.fixture(scope="module")
def factory_run(tmp_path_factory: pytest.TempPathFactory,
                docker: None) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("factory") / "run"
    return harness("run", str(EXAMPLES / "custom_model" / "matrix.yaml"), "--out", str(out), "--jobs", "2"), out


def test_a_factory_model_is_built_saved_and_loaded_in_every_environment(
        factory_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = factory_run
    assert proc.returncode == 1, proc.stderr  # Keras 2 files that Keras 3 cannot read: real, unexpected breaks
    report = load_report(out / "report.json")
    assert [(m["name"], m["kind"]) for m in report["models"]] == [("regressor", "user"), ("tagger", "user")]
    got = cells(out)
    # Built in each environment, and loaded there with the user's custom objects, bit for bit.
    for env in (OLD, NEW):
        same = got[(env, env, "regressor", "keras", "load_model")]
        assert same["status"] == "pass" and same["bit_exact"] is True, same
        assert same["loader_options"]["custom_objects"] is True
        assert same["evaluate"]["source"] == same["evaluate"]["target"]  # the custom loss, evaluated again
    # Across the Keras 2 -> 3 break: .keras fails with a hint, rebuild-from-code + weights survives.
    broken = got[(OLD, NEW, "regressor", "keras", "load_model")]
    assert broken["status"] == "error" and "Keras 2" in broken["error"]["hint"]
    assert got[(OLD, NEW, "regressor", "weights_h5", "rebuild")]["bit_exact"] is True
    assert got[(OLD, NEW, "regressor", "savedmodel", "tfsm_layer")]["status"] == "pass"


def test_a_predict_hook_that_orders_classes_by_set_drifts_in_its_own_environment(
        factory_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = factory_run
    for env in (OLD, NEW):
        cell = cells(out)[(env, env, "tagger", "keras", "load_model")]
        assert cell["status"] == "drift" and cell["expected"] is True
        assert "PYTHONHASHSEED" in cell["hint"] and cell["predict_call"].startswith("mymodels:predict_by_label")


def test_an_old_h5_from_tf_2_12_is_loaded_by_every_environment(tmp_path: Path, docker: None) -> None:
    out = tmp_path / "run"
    proc = harness("run", str(EXAMPLES / "legacy_h5" / "matrix.yaml"), "--out", str(out), "--no-cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = load_report(out / "report.json")
    source = next(e for e in report["environments"] if e["id"] == "user-legacy_regressor")
    assert (source["keras"], source["keras_major"], source["image"]) == ("2.12.0", 2, None)
    got = cells(out)
    for target in (OLD, NEW, LEGACY):
        for loader in ("load_model", "rebuild"):
            assert got[("user-legacy_regressor", target, "legacy_regressor", "h5", loader)]["status"] == "pass"
    assert json.loads((out / "run.json").read_text())["containers_started"] == 2 * 3  # none for the artifact


def test_check_says_which_route_survives_the_upgrade(tmp_path: Path, docker: None) -> None:
    code = EXAMPLES / "custom_model" / "mymodels.py"
    proc = harness("check", "--from", "tf==2.15.1", "--to", "tensorflow==2.16.2,keras==3.3.3", "--model",
                   f"{code}:build_model", "--custom-objects", f"{code}:CUSTOM_OBJECTS", "--inputs",
                   str(EXAMPLES / "custom_model" / "inputs.npy"), "--out", str(tmp_path / "check"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "verdict: NOT SAFE by your route, but another route works" in proc.stdout
    assert "x .keras / keras.models.load_model: error: TypeError" in proc.stdout
    assert "ok .h5 / keras.models.load_model: matches bit-exactly" in proc.stdout
    verdict = json.loads((tmp_path / "check" / "check.json").read_text())
    assert (verdict["verdict"], verdict["route"]) == ("safe via another route", ["keras", "load_model"])
    assert (tmp_path / "check" / "report.html").is_file() and (tmp_path / "check" / "check.yaml").is_file()


def test_check_of_an_old_artifact_is_safe_when_its_route_survives(tmp_path: Path, docker: None) -> None:
    legacy, code = EXAMPLES / "legacy_h5", EXAMPLES / "custom_model" / "mymodels.py"
    proc = harness("check", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", "--model", str(legacy / "model.h5"),
                   "--custom-objects", f"{code}:CUSTOM_OBJECTS", "--inputs", str(legacy / "inputs.npy"),
                   "--reference", str(legacy / "reference.npy"), "--out", str(tmp_path / "check"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: SAFE: your route works in the target" in proc.stdout
    assert "saved  user-model: model.h5 (saved elsewhere; Keras 2.12.0)" in proc.stdout
