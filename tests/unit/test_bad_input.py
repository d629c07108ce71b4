"""Bad input on the command line and in the files it names: exit 2 with one line naming the problem, never a
traceback, a hang or a machine out of memory, and nothing built, contacted or written first."""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deadline import within
from fake_engine import FakeEngine
from fake_run import ENV_A, ENV_B, FakeRun
from harness.advisor import releases
from harness.agent import protocol
from harness.cli import main
from harness.report.writers import write_reports

ENV = '{python: "3.11", tensorflow: "2.16.2"}'


def exit_code(argv: list[str], engine: FakeEngine | None = None) -> int:
    """main()'s exit code, argparse's refusals (SystemExit) included."""
    try:
        return main(argv, engine=lambda: engine or FakeEngine())
    except SystemExit as exc:
        return int(exc.code or 0)


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if not ln.startswith(("usage:", " "))]  # argparse prints its usage first
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "m.yaml").write_text(f"environments: [{ENV}]\nmodels: [dense]\n")
    (root / "old.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    np.save(root / "x.npy", np.zeros((4, 3), dtype="float32"))
    return root


# ---------------------------------------------------------------------------- flags


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", "0", "-5", "1e9", "ten"])
def test_a_cell_timeout_that_is_not_a_finite_positive_number_of_seconds_is_refused(
        project: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    engine = FakeEngine()
    assert exit_code(["run", str(project / "m.yaml"), "--out", str(project / "run"), f"--cell-timeout={value}"],
                     engine) == 2
    assert "--cell-timeout" in one_line(capsys)
    assert engine.builds == [] and not (project / "run").exists()


@pytest.mark.parametrize(("flag", "value"), [("--memory", "1"), ("--memory", "99999999999999999999g"),
                                             ("--memory", "2000000g"), ("--runtime", "--privileged"),
                                             ("--runtime", "runc --privileged"), ("--cpus", "nan")])
def test_container_limits_docker_would_refuse_are_refused_first(project: Path, flag: str, value: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["run", str(project / "m.yaml"), f"{flag}={value}"]) == 2
    assert flag in one_line(capsys)


@pytest.mark.parametrize("command", ["check", "bisect"])
@pytest.mark.parametrize("python", ["3", "abc", "3.11.2", "", " 3.11", "3.11\n", "３.１１", "3.1x", "[3.11]"])
def test_an_odd_python_for_check_or_bisect_is_refused(project: Path, command: str, python: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command, "--from", "2.15.1", "--to", "2.16.2", "--model", str(project / "old.h5"), "--inputs",
            str(project / "x.npy"), "--out", str(project / "run"), f"--python={python}"]
    assert exit_code(argv) == 2
    assert "--python" in one_line(capsys)
    assert not (project / "run").exists()


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("out", ["a file", "a name too long", "a NUL"])
def test_an_out_that_cannot_be_a_run_directory_is_one_line(project: Path, command: str, out: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = {"a file": str(project / "m.yaml"), "a name too long": str(project / ("r" * 300)),
            "a NUL": str(project / "r\x00n")}[out]
    argv = (["run", str(project / "m.yaml")] if command == "run" else
            ["check", "--from", "2.15.1", "--to", "2.16.2", "--model", str(project / "old.h5"), "--inputs",
             str(project / "x.npy")])
    engine = FakeEngine()
    assert exit_code([*argv, "--out", path], engine) == 2
    assert one_line(capsys).startswith("harness: error: --out")
    assert engine.builds == []


def test_check_with_an_empty_model_is_refused_without_reading_the_current_folder(
        project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project)
    walked: list[str] = []
    real_walk = os.walk

    def walk(top: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        walked.append(str(top))
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(os, "walk", walk)
    for model in ("", "  "):
        assert exit_code(["check", "--from", "2.15.1", "--to", "2.16.2", "--model", model, "--inputs", "4x3"]) == 2
        assert "--model" in one_line(capsys)
    assert walked == []


@pytest.mark.parametrize(("flags", "said"), [
    (["--model", "missing.h5"], "--model"),
    (["--model", "old.h5", "--format", "onnx"], "--format"),
    (["--model", "old.h5", "--inputs", "4x3:float99"], "--inputs"),
    (["--model", "old.h5", "--reference", "missing.npy"], "--reference"),
    (["--model", "old.h5", "--custom-objects", "nope.py"], "--custom-objects"),
    (["--model", "old.h5", "--factory", "nomodule:build"], "no module 'nomodule'"),
])
def test_bisect_reads_all_its_flags_before_it_asks_the_package_index(
        project: Path, flags: list[str], said: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project)
    asked: list[str] = []

    def listing(*args: Any, **kwargs: Any) -> Any:
        asked.append(str(args[1]))
        raise AssertionError("the package index was asked")

    monkeypatch.setattr(releases, "listing", listing)
    assert exit_code(["bisect", "--from", "2.15.1", "--to", "2.17.1", "--inputs", "x.npy", *flags]) == 2
    assert said in one_line(capsys)
    assert asked == []


# ---------------------------------------------------------------------------- matrices


@pytest.mark.parametrize(("body", "said"), [
    (f"environments: [{ENV}]\ntolerance: {{rtol: {'1' * 400}}}", "tolerance.rtol: expected a finite number, found a "
                                                                  "number of 400 digits"),
    (f"environments: [{ENV}]\ntolerance: {{atol: {'9' * 400}.5}}", "tolerance.atol: expected a finite number"),
    (f"environments: [{ENV}]\nmodels: [{{name: m, path: code, factory: 'mymodels:build', tolerance: "
     f"{{rtol: {'2' * 500}}}}}]", "models[0].tolerance.rtol: expected a finite number"),
    (f"environments: [{ENV}]\nmodels: [{{name: m, path: code, factory: 'mymodels:build', inputs: {{shape: [4], "
     f"low: -{'1' * 310}, high: 1}}}}]", "models[0].inputs.low: expected a finite number"),
    (f"environments: [{ENV}]\nmodels: [{{name: m, path: code, factory: 'mymodels:build', inputs: {{shape: [4], "
     f"dtype: int8, high: {'7' * 320}}}}}]", "models[0].inputs.high: expected a finite number"),
    ('environments: [{python: "3.١١", tensorflow: "2.16.2"}]', 'expected a Python version "3.X"'),
])
def test_numbers_of_hundreds_of_digits_and_other_odd_values_are_exit_2_naming_the_key(
        project: Path, body: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "code").mkdir()
    (project / "code" / "mymodels.py").write_text("def build():\n    return None\n")
    (project / "odd.yaml").write_text(body + "\n")
    assert exit_code(["validate", str(project / "odd.yaml")]) == 2
    assert said in one_line(capsys)


@pytest.mark.parametrize("kind", ["a FIFO", "/dev/zero", "a folder", "2 MB"])
def test_a_matrix_path_that_is_not_a_small_regular_file_is_refused_at_once(
        tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = {"a FIFO": tmp_path / "fifo.yaml", "/dev/zero": Path("/dev/zero"), "a folder": tmp_path,
            "2 MB": tmp_path / "big.yaml"}[kind]
    if kind == "a FIFO":
        os.mkfifo(path)
    elif kind == "2 MB":
        path.write_text("#" * 2_000_000)
    for command in ("validate", "run"):
        assert within(10, lambda c=command: exit_code([c, str(path), "--out", str(tmp_path / "run")]
                                                      if c == "run" else [c, str(path)])) == 2
        line = one_line(capsys)
        assert line.startswith(f"harness: error: {path}: "), line


# ---------------------------------------------------------------------------- reports read back


@pytest.fixture
def reports(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A real report.json (as a run leaves it), and its content."""
    run = FakeRun(tmp_path / "run")
    output = run.references[ENV_A.id].copy()
    output[0, 0] += np.float32(0.5)
    run.load_ok(ENV_A.id, ENV_B.id, "h5", output)
    write_reports(run.run_dir)
    return run.root / "report.json", json.loads((run.root / "report.json").read_text())


def _set(data: dict[str, Any], where: str, value: Any) -> None:
    *path, last = where.split(".")
    node: Any = data
    for key in path:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[last] = value


@pytest.mark.parametrize("case", [
    ("cells.0.max_abs_diff", "big", "cells[0].max_abs_diff is not a finite number"),
    ("cells.0.max_abs_diff", math.nan, "cells[0].max_abs_diff is not a finite number"),
    ("cells.0.error", "boom", "cells[0].error is not a mapping"),
    ("cells.0.error", {"type": 5}, "cells[0].error.type is not a string"),
    ("cells.0.evaluate", {"max_abs_diff": [1]}, "cells[0].evaluate.max_abs_diff is not a finite number"),
    ("cells.0.expected", "yes", "cells[0].expected is not a boolean"),
    ("cells.0.expectation", [1], "cells[0].expectation is neither an index nor a reason"),
    ("cells.0.preflight", "pass", "cells[0].preflight is not a mapping"),
    ("causes", "none", "'causes' is not a list of mappings with name"),
    ("causes", [1], "'causes' is not a list of mappings with name"),
    ("expectations", [{"reason": "x"}], "'expectations' is not a list of mappings with index and reason"),
    ("artifacts", {"a/b/h5": "x"}, "'artifacts' is not a mapping of mappings"),
    ("artifacts", {"a/b/h5": {"save": "x"}}, "'artifacts' holds a save that is not a mapping"),
    ("references", [], "'references' is not a mapping of mappings"),
    ("tolerance.rtol", math.inf, "'tolerance' is not a mapping with finite numbers"),
])
def test_diff_of_reports_whose_fields_have_unexpected_types_is_one_line(
        reports: tuple[Path, dict[str, Any]], tmp_path: Path, case: tuple[str, Any, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    (where, value, said), (path, data) = case, reports
    _set(data, where, value)
    (tmp_path / "odd.json").write_text(json.dumps(data))
    for argv in (["diff", str(tmp_path / "odd.json"), str(path)], ["diff", str(path), str(tmp_path / "odd.json")]):
        assert exit_code(argv) == 2
        assert said in one_line(capsys)


def test_a_report_read_back_is_bounded(reports: tuple[Path, dict[str, Any]], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = reports
    huge = tmp_path / "huge.json"
    with huge.open("wb") as fh:
        fh.truncate(600 << 20)  # sparse: no disk used
    assert exit_code(["diff", str(huge), str(path)]) == 2
    assert "more than the" in one_line(capsys)


# ---------------------------------------------------------------------------- users' files, crafted


def _patch_zip(path: Path, flags: int = 0, method: int | None = None) -> None:
    """Set bits of every member's flags (0x1: encrypted) and its compression method, in both of its headers."""
    raw = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = raw.find(signature)
        old = struct.unpack("<H", raw[at + flag_at:at + flag_at + 2])[0]
        raw[at + flag_at:at + flag_at + 2] = struct.pack("<H", old | flags)
        if method is not None:
            raw[at + method_at:at + method_at + 2] = struct.pack("<H", method)
    path.write_bytes(bytes(raw))


def _keras_file(path: Path, metadata: bytes, *, flags: int = 0, method: int | None = None) -> Path:
    """A .keras zip whose metadata.json is `metadata`, its header bits and compression method as given."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", metadata)
    _patch_zip(path, flags, method)
    return path


KERAS_FILES = {
    "non-ASCII digits": {"metadata": json.dumps({"keras_version": "٣.٣.٣"}).encode()},
    "5,000 digits": {"metadata": json.dumps({"keras_version": "3" * 5000 + ".0"}).encode()},
    "deep nesting": {"metadata": b"[" * 100_000 + b"]" * 100_000},
    "a list": {"metadata": b'["3.3.3"]'},
    "a version that is a list": {"metadata": b'{"keras_version": ["3.3.3"]}'},
    "an encrypted member": {"metadata": b'{"keras_version": "3.3.3"}', "flags": 0x1},
    "an unknown compression": {"metadata": b'{"keras_version": "3.3.3"}', "method": 99},
}


@pytest.mark.parametrize("kind", list(KERAS_FILES))
def test_a_crafted_keras_file_never_crashes_staging(project: Path, kind: str) -> None:
    _keras_file(project / "model.keras", **KERAS_FILES[kind])
    (project / "k.yaml").write_text(f"environments: [{ENV}]\nmodels: [{{name: old, artifact: model.keras, "
                                    "inputs: {shape: [2, 3]}}]\n")
    assert exit_code(["validate", str(project / "k.yaml")]) == 0
    engine = FakeEngine()
    assert exit_code(["run", str(project / "k.yaml"), "--out", str(project / "run"), "-q"], engine) in (0, 1)
    versions = json.loads((project / "run" / "artifacts" / "user-old" / "env.json").read_text())
    assert versions["keras"] is None and versions["keras_major"] is None  # the file says nothing usable


@pytest.mark.parametrize("name", ["file", "allow_pickle", "args", "kwds", "arr_0"])
def test_an_input_array_named_like_a_savez_keyword_is_staged_by_its_name(project: Path, name: str) -> None:
    arrays = {name: np.ones((2, 3), dtype="float32"), "other": np.zeros((2, 1), dtype="float32")}
    with zipfile.ZipFile(project / "inputs.npz", "w") as archive:  # as np.savez would write it, whatever the names
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, array)
    (project / "i.yaml").write_text(f"environments: [{ENV}]\nmodels: [{{name: old, artifact: old.h5, "
                                    "inputs: inputs.npz}]\n")
    engine = FakeEngine()
    assert exit_code(["run", str(project / "i.yaml"), "--out", str(project / "run"), "-q"], engine) in (0, 1)
    with np.load(project / "run" / "artifacts" / "user-old" / "old" / "inputs.npz") as staged:
        assert sorted(staged.files) == sorted(arrays) and staged[name].tolist() == arrays[name].tolist()


def test_the_agent_writes_a_models_inputs_by_name_too(tmp_path: Path) -> None:
    """A save container writes the inputs of a model whose Keras inputs are named like savez's parameters."""
    arrays = {"file": np.ones(3), "allow_pickle": np.zeros(2), "x": np.arange(4)}
    protocol.write_npz(tmp_path / "inputs.npz", arrays)
    with np.load(tmp_path / "inputs.npz", allow_pickle=False) as found:
        assert {k: found[k].tolist() for k in found.files} == {k: v.tolist() for k, v in arrays.items()}


@pytest.mark.parametrize(("kind", "said"), [
    ("an encrypted member", "encrypted or compressed in a way numpy cannot read"),
    ("an unknown compression", "encrypted or compressed in a way numpy cannot read"),
    ("a member that is no array", "is not a .npy array"),
    ("a zero-size array of a huge shape", "its header declares the shape"),
    ("wide strings past 1 GiB", "bytes"),
])
def test_a_crafted_inputs_npz_is_exit_2_at_validation(project: Path, kind: str, said: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "inputs.npz"
    header = {"a zero-size array of a huge shape": {"descr": "<f4", "fortran_order": False, "shape": (0, 1 << 62)},
              "wide strings past 1 GiB": {"descr": "<U1000000", "fortran_order": False, "shape": (300,)}}.get(kind)
    name = "notes.txt" if kind == "a member that is no array" else "x.npy"
    with zipfile.ZipFile(path, "w") as archive, archive.open(name, "w") as member:
        if header is not None:
            np.lib.format.write_array_header_1_0(member, header)
        else:
            np.lib.format.write_array(member, np.zeros((2, 3), dtype="float32"))
    if kind in ("an encrypted member", "an unknown compression"):
        _patch_zip(path, **({"flags": 0x1} if kind == "an encrypted member" else {"method": 99}))
    (project / "i.yaml").write_text(f"environments: [{ENV}]\nmodels: [{{name: old, artifact: old.h5, "
                                    "inputs: inputs.npz}]\n")
    assert exit_code(["validate", str(project / "i.yaml")]) == 2
    line = one_line(capsys)
    assert "models[0].inputs" in line and said in line, line


@pytest.mark.parametrize("changed", ["artifact", "inputs", "nothing"])
def test_resume_refuses_a_staged_artifact_whose_file_changed(project: Path, changed: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    (project / "a.yaml").write_text(f"environments: [{ENV}]\nmodels: [{{name: old, artifact: old.h5, "
                                    "inputs: x.npy}]\n")
    out = project / "run"
    assert exit_code(["run", str(project / "a.yaml"), "--out", str(out), "-q"]) in (0, 1)
    if changed == "artifact":
        (project / "old.h5").write_bytes(b"\x89HDF\r\n\x1a\nchanged")
    elif changed == "inputs":
        np.save(project / "x.npy", np.ones((4, 3), dtype="float32"))
    capsys.readouterr()
    code = exit_code(["run", str(project / "a.yaml"), "--out", str(out), "--resume", "-q"])
    if changed == "nothing":
        assert code in (0, 1)
        return
    assert code == 2
    line = one_line(capsys)
    assert f"old's {changed} {project / ('old.h5' if changed == 'artifact' else 'x.npy')} changed" in line, line


def test_what_the_host_stages_is_readable_by_the_containers_user(project: Path) -> None:
    """Containers of a harness running as root run as nobody: staged files get the usual modes, not 0600."""
    (project / "code").mkdir()
    (project / "code" / "mymodels.py").write_text("def build():\n    return None\n")
    (project / "s.yaml").write_text(f"environments: [{ENV}]\nmodels:\n"
                                    "  - {name: old, artifact: old.h5, inputs: x.npy}\n"
                                    "  - {name: mine, path: code, factory: 'mymodels:build', inputs: x.npy}\n")
    previous = os.umask(0o022)
    try:
        assert exit_code(["run", str(project / "s.yaml"), "--out", str(project / "run"), "-q"]) in (0, 1)
    finally:
        os.umask(previous)
    run = project / "run"
    for path in (run / "userdata" / "mine" / "inputs.npz", run / "artifacts" / "user-old",
                 run / "artifacts" / "user-old" / "old" / "inputs.npz", run / "envs"):
        assert path.stat().st_mode & 0o044 == 0o044, (path, oct(path.stat().st_mode))
