"""The static pre-flight scan in the load workers: findings from files alone, predicted by the table the host reads."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from harness.agent.preflight import predict, scan

KERAS2 = {"python": "3.11.2", "keras": "2.15.0", "keras_package": "keras"}
KERAS3 = {"python": "3.11.2", "keras": "3.3.3", "keras_package": "keras"}


def _keras_zip(path: Path, layers: list[dict[str, object]], version: str, module: str) -> Path:
    config = {"class_name": "Functional", "module": module, "config": {"layers": layers}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": version}))
    return path


def test_a_keras_file_with_a_lambda_and_a_custom_layer(tmp_path: Path) -> None:
    path = _keras_zip(tmp_path / "m.keras", [
        {"class_name": "Lambda", "module": "keras.layers", "config": {"name": "affine"}},
        {"class_name": "ScaleLayer", "module": "mycompany.layers", "registered_name": "mycompany>ScaleLayer",
         "config": {"name": "scale"}},
    ], "3.3.3", "keras.src.models.functional")
    findings = scan(str(path), "keras")
    assert findings["lambda_layers"] == ["affine"]
    assert findings["custom_objects"] == ["mycompany>ScaleLayer"]
    assert findings["keras_generation"] == 3
    verdict = predict(findings, "keras", "load_model", KERAS3)
    assert verdict["outcome"] == "error"
    assert "safe_mode" in verdict["why"] and "custom_objects" in verdict["why"]
    assert "safe_mode" not in predict(findings, "keras", "load_model_unsafe", KERAS3)["why"]
    assert predict(findings, "keras", "load_model_custom", KERAS3, custom_objects=True)["why"].count(";") == 0


def test_keras_2_safe_mode_refuses_a_lambda_in_its_own_keras_file_too(tmp_path: Path) -> None:
    # Keras 2.12 and later load .keras files under safe_mode as Keras 3 does: a Lambda is refused at home.
    path = _keras_zip(tmp_path / "m.keras", [{"class_name": "Lambda", "module": "keras.layers",
                                             "config": {"name": "affine"}}], "2.15.0", "keras.src.engine.functional")
    findings = scan(str(path), "keras")
    assert "safe_mode refuses them" in predict(findings, "keras", "load_model", KERAS2)["why"]
    assert predict(findings, "keras", "load_model_unsafe", KERAS2) == {"outcome": "pass", "why": ""}


def test_a_plain_file_is_predicted_to_load_where_its_module_paths_import(tmp_path: Path) -> None:
    path = _keras_zip(tmp_path / "m.keras", [{"class_name": "Dense", "module": "keras.layers",
                                             "config": {"name": "d"}}], "3.3.3", "keras.src.models.functional")
    findings = scan(str(path), "keras")
    assert predict(findings, "keras", "load_model", KERAS3) == {"outcome": "pass", "why": ""}
    assert "cannot import Keras 3's module paths" in predict(findings, "keras", "load_model", KERAS2)["why"]
    assert "newer Keras 3" in predict(findings, "keras", "load_model", {**KERAS3, "keras": "3.2.0"})["why"]


def test_savedmodels_and_unreadable_files(tmp_path: Path) -> None:
    saved = tmp_path / "sm"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x00ops: MatMul SaveV2 ReadFile\x00")
    findings = scan(str(saved), "savedmodel")
    assert findings["file_ops"] == ["ReadFile"]
    assert "load_model reads only .keras and .h5" in predict(findings, "savedmodel", "load_model", KERAS3)["why"]
    assert "no keras_metadata.pb" in predict(findings, "savedmodel", "load_model", KERAS2)["why"]
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    assert "scan_error" in scan(str(broken), "keras")
    assert predict(scan(str(broken), "keras"), "keras", "load_model", KERAS3)["outcome"] == "error"
