"""A first answer from the file alone: the bounded HDF5 reader, the host's reading of every format, the table of
what each release accepts, `harness inspect` and check's first lines. No TensorFlow, no container."""

from __future__ import annotations

import contextlib
import io
import json
import random
import struct
import time
import zipfile
from pathlib import Path

import pytest

from fake_engine import FakeEngine
from harness import inspection
from harness.agent.protocol import Release, accepts_predict, config_findings
from harness.cli import main
from harness.h5attrs import H5Error, read_root_attributes, root_attributes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LEGACY_H5 = EXAMPLES / "legacy_h5" / "model.h5"
KERAS3 = Release(keras="3.3.3", python="3.11.2", tensorflow="2.16.2")
KERAS2 = Release(keras="2.15.0", python="3.11.2", tensorflow="2.15.1")


def test_the_hdf5_reader_finds_what_keras_keeps_on_the_root_group() -> None:
    found = root_attributes(str(LEGACY_H5), LEGACY_H5.stat().st_size)
    assert found.text("keras_version") == "2.12.0" and found.text("backend") == "tensorflow"
    assert json.loads(found.text("model_config") or "")["class_name"] in ("Functional", "Sequential")
    assert "model_weights" in found.members and found.unread == []


def test_a_damaged_hdf5_file_is_an_h5error_and_nothing_else() -> None:
    data = LEGACY_H5.read_bytes()
    rng = random.Random(7)
    for _ in range(300):
        damaged = bytearray(data[:rng.randrange(len(data))] if rng.random() < 0.3 else data)
        for _ in range(rng.randrange(1, 12)):
            damaged[rng.randrange(min(len(damaged), 4096))] = rng.randrange(256)
        start = time.monotonic()
        with contextlib.suppress(H5Error):
            read_root_attributes(io.BytesIO(bytes(damaged)), len(damaged))
        assert time.monotonic() - start < 1.0


def test_a_dataspace_that_claims_too_many_values_is_refused_not_allocated() -> None:
    data = bytearray(LEGACY_H5.read_bytes())
    at = data.find(b"keras_version")
    assert at > 0
    # The scalar dataspace after the name becomes a one-dimensional one of 2**40 elements.
    space = data.find(b"\x01\x00\x00\x00", at)  # version 1, rank 0: rank 1 now
    data[space + 1] = 1
    data[space + 8:space + 16] = struct.pack("<Q", 1 << 40)
    with pytest.raises(H5Error):
        read_root_attributes(io.BytesIO(bytes(data)), len(data))


@pytest.mark.parametrize(("content", "words"), [
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 34184\n", "Git LFS pointer"),
    (b"<!DOCTYPE html><html><head><title>Sign in</title></head></html>", "HTML page"),
    (b"", "empty file"),
    (b"\x1f\x8b\x08\x00compressed", "compressed archive"),
])
def test_files_that_are_no_model_are_named_at_once(tmp_path: Path, content: bytes, words: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.h5"
    path.write_bytes(content)
    found = inspection.inspect_file(path)
    assert found.format is None and words in found.words()
    assert main(["inspect", str(path), "--to", "2.16.2"], engine=FakeEngine) == 2
    assert words in capsys.readouterr().out


def test_a_keras_archive_whose_config_claims_more_than_the_limit_is_not_inflated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspection, "MAX_JSON", 1000)
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{" + " " * 5000 + "}")
        archive.writestr("metadata.json", "{}")
    found = inspection.inspect_file(path)
    assert found.format == "keras" and "more than 1000" in found.findings["unread"]
    assert accepts_predict(found.findings, "keras", "load_model", KERAS3)["outcome"] == "unknown"


def test_every_example_is_read_in_well_under_a_second() -> None:
    for path in [*EXAMPLES.glob("*/*.h5"), *EXAMPLES.glob("*/*.keras"), EXAMPLES / "legacy_savedmodel" /
                 "legacy_classifier"]:
        found = inspection.inspect_file(path)
        assert found.format is not None and not found.findings.get("unread"), path
        assert found.seconds < 1.0


def _h5_like(findings: dict[str, object]) -> dict[str, object]:
    return {"keras_version": "2.15.0", "keras_generation": 2, "classes": ["DepthwiseConv2D"], **findings}


def test_the_table_names_what_a_release_refuses_and_why() -> None:
    groups = _h5_like({"keras2_arguments": {"DepthwiseConv2D": ["groups"]}})
    refused = accepts_predict(groups, "h5", "load_model", KERAS3)
    assert refused["outcome"] == "error" and refused["causes"] == ["depthwise-groups"]
    assert "groups" in refused["why"] and "3.3.3" in refused["why"]
    assert accepts_predict(groups, "h5", "load_model", KERAS2)["outcome"] == "pass"
    assert accepts_predict(groups, "h5", "load_model_custom", KERAS3, custom_objects=True)["outcome"] == "pass"
    newer = {"keras_version": "3.12.0", "keras_generation": 3}
    assert accepts_predict(newer, "keras", "load_model", KERAS3)["causes"] == ["newer-keras-config"]
    assert accepts_predict(newer, "keras", "load_model", Release(keras="3.12.0"))["outcome"] == "pass"
    bytecode = _h5_like({"lambda_layers": ["f"], "lambda_pythons": ["3.11", "3.12"]})
    assert "lambda-bytecode" in accepts_predict(bytecode, "h5", "load_model", Release(keras="2.15.0",
                                                                                      python="3.9.2"))["causes"]
    assert accepts_predict(bytecode, "h5", "load_model", KERAS2)["outcome"] == "pass"


def _architecture(input_config: dict[str, object], **top: object) -> dict[str, object]:
    """A model's config as a file stores it: an InputLayer with this config, then a Dense."""
    layers = [{"class_name": "InputLayer", "config": {"name": "x", "dtype": "float32", **input_config}},
              {"class_name": "Dense", "config": {"name": "d", "units": 2}}]
    return {"class_name": "Functional", "config": {"name": "m", "layers": layers}, **top}


def test_a_keras3_architecture_json_with_no_version_is_refused_by_keras2() -> None:
    config = _architecture({"batch_shape": [None, 4]}, module="keras.src.models.functional")
    found = config_findings(config, None)
    refused = accepts_predict(found, "json", "model_from_json", KERAS2)
    assert refused["causes"] == ["keras3-file-in-keras2"] and "written by Keras 3" in refused["why"]
    assert accepts_predict(found, "json", "model_from_json", KERAS3)["outcome"] == "pass"


def test_an_input_layers_optional_argument_is_refused_before_tf_keras_2_21() -> None:
    found = config_findings(_architecture({"batch_input_shape": [None, 4], "optional": False}), "2.21.0")
    for older in (KERAS2, Release(keras="2.20.1", keras_package="tf-keras"), Release(keras="2.12.0")):
        refused = accepts_predict(found, "h5", "load_model", older)
        assert refused["causes"] == ["newer-keras-config"] and "optional" in refused["why"], older
    assert accepts_predict(found, "h5", "load_model", Release(keras="2.21.0", keras_package="tf-keras"))[
        "outcome"] == "pass"
    plain = config_findings(_architecture({"batch_input_shape": [None, 4]}), "2.15.0")
    assert accepts_predict(plain, "h5", "load_model", Release(keras="2.12.0"))["outcome"] == "pass"


def test_lambda_bytecode_tells_its_python() -> None:
    # marshal.dumps((lambda x: x).__code__) under 3.11: five header fields, then RESUME (151) first
    code = bytes([0xE3]) + struct.pack("<5I", 1, 0, 0, 1, 3) + bytes([0xF3]) + struct.pack("<I", 4) + bytes([151, 0])
    from harness.agent.accepts import bytecode_pythons

    assert bytecode_pythons(code + b"\x00" * 16) == ["3.11", "3.12"]
    older = bytes([0xE3]) + struct.pack("<6I", 1, 0, 0, 1, 1, 67) + bytes([0x73]) + struct.pack("<I", 4) + b"|\x00S\x00"
    assert bytecode_pythons(older + b"\x00" * 16) == ["3.8", "3.9", "3.10"]


def test_inspect_answers_per_target_with_the_usual_route_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(LEGACY_H5), "--to", "2.15.1", "--to", "2.16.2+keras3.3.3"], engine=FakeEngine) == 0
    out = capsys.readouterr().out
    assert "a legacy .h5 model written by Keras 2.12.0" in out and "2.16.2+keras3.3.3: load_model predicted" in out
    assert "x tflite" in out  # TensorFlow 2.16's converter aborts on a Keras 3 model loaded from a file
    newest = EXAMPLES / "newest_keras" / "model.keras"
    assert main(["inspect", str(newest), "--to", "2.15.1", "--json"], engine=FakeEngine) == 1
    routes = json.loads(capsys.readouterr().out)["routes"]
    assert any(r["loader"] == "load_model" and r["outcome"] == "error" for r in routes)


def test_check_says_what_the_file_says_before_any_container(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    engine = FakeEngine()
    main(["check", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", "--model", str(LEGACY_H5), "--inputs", "2x8",
          "--out", str(tmp_path / "run")], engine=lambda: engine)
    out = capsys.readouterr().out
    assert out.startswith("first answer, from the file alone (a legacy .h5 model written by Keras 2.12.0")


def test_the_first_answer_reads_a_side_named_by_its_git_ref() -> None:
    from harness.advisor.check import Target, first_answer
    from harness.advisor.question import CheckQuestion, ModelQuestion, parse_spec

    head = "037ae0a063594e512a8d083571e8d4309e69c44a (037ae0a)"  # --to-ref: the side is read, not a SPEC
    question = CheckQuestion(source="origin/main (3f2a1c9)", targets=(head,), model=ModelQuestion(str(LEGACY_H5)),
                             environments=(parse_spec("2.15.1", "--from"), parse_spec("2.16.2+keras3.3.3", "--to")))
    lines = first_answer({"models": [{"artifact": str(LEGACY_H5)}]}, question, [Target(head, "py3.11-x", None)])
    assert lines[1].startswith(f"  {head}: load_model"), lines


def test_check_refuses_a_git_lfs_pointer_before_anything_is_built(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    pointer = tmp_path / "model.h5"
    pointer.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"b" * 64 + b"\n")
    engine = FakeEngine()
    assert main(["check", "--from", "2.15.1", "--to", "2.20.0", "--model", str(pointer), "--inputs", "2x8",
                 "--out", str(tmp_path / "run")], engine=lambda: engine) == 2
    assert "a Git LFS pointer, not the model" in capsys.readouterr().err and engine.builds == engine.runs == []


def test_a_tflite_file_is_a_model_whose_routes_the_containers_answer(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))  # a flatbuffer's header: its identifier at bytes 4-8
    found = inspection.inspect_file(path)
    assert found.format == "tflite" and "no Keras config" in str(found.findings.get("unread"))
    engine = FakeEngine()
    main(["check", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", "--model", str(path), "--inputs", "2x8",
          "--out", str(tmp_path / "run")], engine=lambda: engine)
    assert capsys.readouterr().out.startswith("first answer: none from the file alone")
    assert engine.runs  # not refused: the containers answer for it
