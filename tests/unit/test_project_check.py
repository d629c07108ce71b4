"""check from the project's own files: [tool.harness] models, --from-ref/--to-ref, checks.json, and exit 2 on bad
input (named by file and key)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from fake_engine import FakeEngine
from harness.advisor.project import parse_models, project_models
from harness.cli import main
from harness.errors import UsageError

PYPROJECT = """\
[project]
name = "svc"
requires-python = ">=3.10"
dependencies = [
    "tensorflow=={tf}",
    "numpy<2",
]

[[tool.harness.models]]
model = "model.h5"
inputs = "inputs.npy"
tolerance = {{ atol = 1e-4 }}

[[tool.harness.models]]
name = "built"
model = "build.py:make"
inputs = "4x3:float32"
"""


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project at two commits: TensorFlow 2.15.1, then 2.16.2."""
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    np.save(folder / "inputs.npy", np.zeros((2, 3), dtype="float32"))
    (folder / "build.py").write_text("def make():\n    pass\n")
    (folder / "pyproject.toml").write_text(PYPROJECT.format(tf="2.15.1"))
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-qm", "base")
    (folder / "pyproject.toml").write_text(PYPROJECT.format(tf="2.16.2"))
    _git(folder, "commit", "-qam", "bump")
    return folder


def test_models_are_declared_once(repo: Path) -> None:
    found = project_models(repo, "3.11")
    assert found.file == repo / "pyproject.toml"
    first, second = found.models
    assert first.model == str(repo / "model.h5") and first.inputs == str(repo / "inputs.npy")
    assert first.tolerance == {"atol": 1e-4}
    assert second.model == f"{repo / 'build.py'}:make" and second.name == "built" and second.inputs == "4x3:float32"


@pytest.mark.parametrize(("table", "message"), [
    ({"model": [{"model": "m.h5"}]}, r"tool.harness.model: unknown key; did you mean 'models'\?"),
    ({"models": [{"modle": "m.h5"}]}, r"tool.harness.models\[0\].modle: unknown key; did you mean 'model'\? \(and 1"),
    ({"models": [{"model": "gone.keras"}]}, r"tool.harness.models\[0\].model: not found: .*gone.keras"),
    ({"models": [{"model": "mods:build"}]}, r"models\[0\].model: 'mods:build': name the module by its file"),
    ({"models": [{"model": "m.h5", "tolerance": {"rtol": -1}}]}, r"models\[0\].tolerance.rtol: expected a non-neg"),
    ({"models": [{"model": "m.h5", "unsafe": "yes"}]}, r"models\[0\].unsafe: expected true or false"),
    ({"models": [{"model": "m.h5"}, {"model": "m.h5"}]}, r"models\[1\]: a second model named 'm'"),
    ({"models": []}, r"tool.harness.models: expected a non-empty array of tables"),
])
def test_bad_tables_name_the_key(tmp_path: Path, table: dict[str, object], message: str) -> None:
    (tmp_path / "m.h5").write_bytes(b"")
    with pytest.raises(UsageError, match=message):
        parse_models(table, "tool.harness", tmp_path, tmp_path / "pyproject.toml", "3.11")


def test_harness_toml_declares_them_at_its_top_level(tmp_path: Path) -> None:
    (tmp_path / "m.h5").write_bytes(b"")
    (tmp_path / "pyproject.toml").write_text('[tool.harness]\nmodels = [{ model = "other.h5" }]\n')
    (tmp_path / "harness.toml").write_text('[[models]]\nmodel = "m.h5"\ninputs = "2x3"\nunsafe = true\n')
    found = project_models(tmp_path, "3.11")
    assert found.file.name == "harness.toml" and found.models[0].unsafe and found.models[0].folder == str(tmp_path)
    (tmp_path / "harness.toml").write_text('[[models]]\nmodel = "m.h5"\nformta = "h5"\n')
    with pytest.raises(UsageError, match=r"harness.toml: models\[0\].formta: unknown key; did you mean 'format'\?"):
        project_models(tmp_path, "3.11")


def test_no_models_declared(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(UsageError, match=r"no --model, and no models declared"):
        project_models(tmp_path, "3.11")


def test_check_from_refs_checks_every_declared_model(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = repo.parent / "run"
    code = main(["check", "--from-ref", "HEAD~1", "--to-ref", "HEAD", "--project", str(repo), "--out", str(out),
                 "-q"], engine=FakeEngine)
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "HEAD~1 (" in printed and "tensorflow==2.15.1, numpy<2" in printed
    index = json.loads((out / "checks.json").read_text())
    assert [m["model"] for m in index["models"]] == ["model", "built"] and index["exit_code"] == 0
    assert json.loads((out / "check.sarif").read_text())["runs"][0]["invocations"][0]["exitCode"] == 0
    assert index["dependencies"]["changed"] == [{"package": "tensorflow", "from": "==2.15.1", "to": "==2.16.2",
                                                 "file": "pyproject.toml", "line": 5}]
    matrix = yaml.safe_load((out / "model" / "check.yaml").read_text())
    assert [e["tensorflow"] for e in matrix["environments"]][:2] == ["==2.15.1", "==2.16.2"]
    assert matrix["environments"][0]["packages"] == ["numpy<2"] and matrix["environments"][0]["python"] == "3.11"
    assert matrix["models"][0]["tolerance"] == {"atol": 1e-4}
    report = json.loads((out / "built" / "report.json").read_text())
    assert report["check"]["dependencies"]["sides"][1]["pins"]["tensorflow"] == {
        "spec": "==2.16.2", "file": "pyproject.toml", "line": 5}


def test_from_ref_alone_compares_with_the_working_tree(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = repo.parent / "run"
    assert main(["check", "--from-ref", "HEAD", "--project", str(repo), "--out", str(out), "-q"],
                engine=FakeEngine) == 0
    assert "nothing to check: HEAD (" in capsys.readouterr().out
    assert json.loads((out / "checks.json").read_text())["unchanged"] is True


@pytest.mark.parametrize(("argv", "message"), [
    (["--from-ref", "HEAD~1", "--from", "2.15.1"], "--from and --from-ref: give one"),
    (["--from-ref", "HEAD~9"], "--from-ref 'HEAD~9': no such commit"),
    (["--from", "2.15.1"], "give --to SPEC"),
    (["--to-ref", "HEAD"], "give --from SPEC, or --from-ref REF"),
    (["--from-ref", "HEAD~1", "--inputs", "4x3"], "--inputs is for --model"),
])
def test_bad_usage_is_one_line_and_exit_2(repo: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                          message: str) -> None:
    assert main(["check", "--project", str(repo), *argv], engine=FakeEngine) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_spec_side_and_a_project_side_mix(repo: Path) -> None:
    out = repo.parent / "run"
    assert main(["check", "--from-ref", "HEAD", "--to", "2.17.1", "--project", str(repo), "--model",
                 str(repo / "model.h5"), "--inputs", str(repo / "inputs.npy"), "--out", str(out), "-q"],
                engine=FakeEngine) == 0
    matrix = yaml.safe_load((out / "check.yaml").read_text())
    assert [e["tensorflow"] for e in matrix["environments"]][:2] == ["==2.16.2", "2.17.1"]
