"""The static pre-flight scan: findings from files alone, and the outcome they predict."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from harness.agent.preflight import predict, scan

KERAS2 = {"python": "3.9.2", "keras_major": 2}
KERAS3 = {"python": "3.11.2", "keras_major": 3}


def _keras_zip(path: Path, layers: list[dict[str, object]], version: str) -> Path:
    config = {"class_name": "Functional", "module": "keras.src.models.functional",
              "config": {"layers": layers}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": version}))
    return path


def test_a_keras_file_with_a_lambda_and_a_custom_layer(tmp_path: Path) -> None:
    path = _keras_zip(tmp_path / "m.keras", [
        {"class_name": "Lambda", "module": "keras.layers", "config": {"name": "affine"}},
        {"class_name": "ScaleLayer", "module": "mycompany.layers", "registered_name": "mycompany>ScaleLayer",
         "config": {"name": "scale"}},
    ], "3.3.3")
    findings = scan(str(path), "keras")
    assert findings["lambda_layers"] == ["affine"]
    assert findings["custom_objects"] == ["mycompany>ScaleLayer"]
    assert findings["unusual_modules"] == ["mycompany.layers"]
    assert findings["keras_generation"] == 3
    verdict = predict(findings, "keras", "load_model", KERAS3, KERAS3)
    assert verdict["outcome"] == "error"
    assert "safe_mode" in verdict["why"] and "custom_objects" in verdict["why"]
    assert "safe_mode" not in predict(findings, "keras", "load_model_unsafe", KERAS3, KERAS3)["why"]


def test_keras_2_safe_mode_refuses_a_lambda_in_its_own_keras_file_too(tmp_path: Path) -> None:
    # Keras 2.12 and later load .keras files under safe_mode as Keras 3 does: a Lambda is refused at home.
    path = _keras_zip(tmp_path / "m.keras", [{"class_name": "Lambda", "module": "keras.layers",
                                             "config": {"name": "affine"}}], "2.15.0")
    findings = scan(str(path), "keras")
    assert "safe_mode refuses Lambda layers" in predict(findings, "keras", "load_model", KERAS2, KERAS2)["why"]
    assert predict(findings, "keras", "load_model_unsafe", KERAS2, KERAS2) == {"outcome": "pass", "why": ""}

def test_a_plain_file_is_predicted_to_load_in_its_own_generation_only(tmp_path: Path) -> None:
    path = _keras_zip(tmp_path / "m.keras", [{"class_name": "Dense", "module": "keras.layers",
                                             "config": {"name": "d"}}], "3.3.3")
    findings = scan(str(path), "keras")
    assert predict(findings, "keras", "load_model", KERAS3, KERAS3) == {"outcome": "pass", "why": ""}
    assert "written by Keras 3, loaded by Keras 2" in predict(findings, "keras", "load_model", KERAS3,
                                                              KERAS2)["why"]


def test_savedmodels_and_unreadable_files(tmp_path: Path) -> None:
    saved = tmp_path / "sm"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x00ops: MatMul SaveV2 ReadFile\x00")
    findings = scan(str(saved), "savedmodel")
    assert findings["file_ops"] == ["ReadFile"]
    assert "Keras 3 load_model cannot read a SavedModel" in predict(findings, "savedmodel", "load_model",
                                                                     KERAS2, KERAS3)["why"]
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    assert "scan_error" in scan(str(broken), "keras")
    assert predict(scan(str(broken), "keras"), "keras", "load_model", KERAS3, KERAS3)["outcome"] == "error"
