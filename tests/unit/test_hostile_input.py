"""Bad and hostile matrices: each is exit 2 with one line naming the key, before anything is built or written.

`validate` lists every problem of a matrix; `run` names the first and how many more there are.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fake_engine import FakeEngine
from harness.cli import main
from harness.images import plan_image
from harness.matrix import MatrixError, load_matrix
from harness.matrix.problems import project_root

ENV = '{python: "3.11", tensorflow: "2.16.2"}'
FACTORY = "{name: m, path: code, factory: mymodels:build"


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HARNESS_BASE_IMAGE", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT",
                 "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "code").mkdir(parents=True)
    (root / "code" / "mymodels.py").write_text("def build():\n    return None\n")
    np.save(root / "x.npy", np.zeros((4, 3), dtype="float32"))
    (root / "old.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    return root


def _write(root: Path, body: str) -> Path:
    path = root / "m.yaml"
    path.write_text(textwrap.dedent(body))
    return path


# Each: the matrix, and the start of the problem that names the key.
BAD = {
    "trailing comma": ('environments: [{python: "3.11", tensorflow: ">=2.16,"}]',
                       "environments[0].tensorflow: expected a version"),
    "arbitrary equality": ('environments: [{python: "3.11", tensorflow: "===anything"}]',
                           "environments[0].tensorflow: '===' compares"),
    "arbitrary equality, keras": ('environments: [{python: "3.11", tensorflow: "2.16.2", keras: "===3.3.3"}]',
                                  "environments[0].keras: '===' compares"),
    "5,000-digit version": (f'environments: [{{python: "3.11", tensorflow: "{"1" * 5000}"}}]',
                            "environments[0].tensorflow: expected a version or specifier of at most 64"),
    "5,000-digit number": (f"environments: [{ENV}]\ntolerance: {{rtol: {'1' * 5000}}}",
                           "invalid YAML: Exceeds the limit"),
    "infinite tolerance": (f"environments: [{ENV}]\ntolerance: {{rtol: .inf}}",
                           "tolerance.rtol: expected a finite number"),
    "infinite model tolerance": (f"environments: [{ENV}]\nmodels: [{FACTORY}, tolerance: {{atol: 1.0e+999}}}}]",
                                 "models[0].tolerance.atol: expected a finite number"),
    "300-character environment name": (f'environments: [{{python: "3.11", tensorflow: "2.16.2", name: {"a" * 300}}}]',
                                       "environments[0].name: expected at most 100"),
    "300-character model name": (f"environments: [{ENV}]\nmodels: [{{name: {'m' * 300}, path: code, "
                                 "factory: mymodels:build}]", "models[0].name: expected at most 100"),
    "300-character matrix name": (f"name: {'n' * 300}\nenvironments: [{ENV}]", "name: expected at most 100"),
    "long derived id": ('environments: [{python: "3.11", tensorflow: "' + ",".join(
        f"!=2.{i}.{i}0000000000" for i in range(3)) + '", keras: "' + ",".join(
        f"!=3.{i}.{i}0000000000" for i in range(3)) + '"}]', "environments[0]: the environment id"),
    "huge inputs shape": (f"environments: [{ENV}]\nmodels: [{FACTORY}, inputs: {{shape: [100000, 100000, 1000]}}}}]",
                          "models[0].inputs.shape: [100000, 100000, 1000] is 10000000000000 values"),
    "infinite inputs bound": (f"environments: [{ENV}]\nmodels: [{FACTORY}, inputs: {{shape: [4], low: -.inf, "
                              "high: 1}}]", "models[0].inputs.low: expected a finite number"),
    "integer bound out of range": (f"environments: [{ENV}]\nmodels: [{FACTORY}, inputs: {{shape: [4], dtype: int8, "
                                   "high: 1000}}]", "models[0].inputs.high: expected a whole number from -128"),
    "duplicate keys": (f"environments: [{ENV}]\nname: a\nname: b", "line 3: key 'name' repeats the one on line 2"),
    "NUL in a path": (f'environments: [{ENV}]\nmodels: [{{name: m, path: "co\\0de", factory: "mymodels:build"}}]',
                      "models[0].path: expected a path, found a string with a NUL byte"),
    "unknown user's home": (f"environments: [{ENV}]\nmodels: [{{name: m, path: ~nosuchuser/code, "
                            "factory: mymodels:build}]", "models[0].path: cannot resolve '~nosuchuser/code'"),
    "NUL in an artifact": (f'environments: [{ENV}]\nmodels: [{{name: m, artifact: "old\\0.h5", inputs: x.npy}}]',
                           "models[0].artifact: expected a path, found a string with a NUL byte"),
    "a path out of the project": (f"environments: [{ENV}]\nmodels: [{{name: m, path: ../../.., "
                                  "factory: mymodels:build}]", "models[0].path: '../../..' leads out of the matrix's"),
    "a file out of the project": (f"environments: [{ENV}]\nmodels: [{{name: m, artifact: ../../../etc/passwd, "
                                  "format: h5, inputs: x.npy}]", "models[0].artifact: '../../../etc/passwd' leads out"),
    "the root mounted": (f"environments: [{ENV}]\nmodels: [{{name: m, path: /, factory: mymodels:build}}]",
                         "models[0].path: / is the file system's root"),
    "newline in base_image": (f'environments: [{ENV}]\nbase_image: "python:{{python}}-slim\\nRUN id"',
                              "base_image: expected an image reference"),
    "space in base_image": ('environments: [{python: "3.11", tensorflow: "2.16.2", base_image: "a b"}]',
                            "environments[0].base_image: expected an image reference"),
    "newline in pip.index_url": (f'environments: [{ENV}]\npip: {{index_url: "https://x/simple\\n[evil]\\nx = y"}}',
                                 "pip.index_url: expected an index URL"),
    "space in an extra index": (f'environments: [{ENV}]\npip: {{extra_index_urls: ["https://x/simple -i http://e"]}}',
                                "pip.extra_index_urls[0]: expected an index URL"),
    "not a URL": (f'environments: [{ENV}]\npip: {{index_url: "javascript:alert(1)"}}', "pip.index_url: expected"),
    "newline in a trusted host": (f'environments: [{ENV}]\npip: {{trusted_hosts: ["x\\n[global]"]}}',
                                  "pip.trusted_hosts[0]: expected a host name"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_every_bad_input_is_exit_2_with_one_line_naming_the_key(
        case: str, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = BAD[case]
    path = _write(project, text + "\n")
    out = project / "out"
    engine = FakeEngine()
    assert main(["run", str(path), "--out", str(out)], engine=lambda: engine) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: {expected}" in err, err
    assert not engine.builds and not engine.runs and not out.exists()
    assert main(["validate", str(path)]) == 2
    assert f"{path}: {expected}" in capsys.readouterr().err


def test_base_image_from_the_command_line_or_environment_is_checked_too(
        project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(project, f"environments: [{ENV}]\n")
    assert main(["validate", str(path), "--base-image", "python:{python}\nRUN id"]) == 2
    assert "--base-image/HARNESS_BASE_IMAGE: expected an image reference" in capsys.readouterr().err
    monkeypatch.setenv("HARNESS_BASE_IMAGE", "harness-base:{python}\nUSER root")
    assert main(["validate", str(path)]) == 2
    assert "--base-image/HARNESS_BASE_IMAGE: expected an image reference" in capsys.readouterr().err


@pytest.mark.parametrize("image", ["python:{python}-slim", "harness-base:{python}", "localhost:5000/team/py:{python}",
                                   "ghcr.io/org/python@sha256:" + "a" * 64, "[::1]:5000/python:{python}"])
def test_usual_image_references_are_accepted(image: str, project: Path) -> None:
    path = _write(project, f"environments: [{ENV}]\nbase_image: '{image}'\n")
    assert load_matrix(path).environments[0].base_image == image.replace("{python}", "3.11")


def test_validate_lists_every_problem_one_line_each(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(project, f"""\
        environments:
          - {{python: "3.11", tensorflow: ">=2.16,"}}
          - {{python: "3.11", tensorflow: "2.16.2", name: {"x" * 101}}}
        tolerance: {{rtol: .inf}}
        base_image: "a\\nb"
        """)
    assert main(["validate", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert sorted(line.split(": ")[3] for line in lines) == ["base_image", "environments[0].tensorflow",
                                                             "environments[1].name", "tolerance.rtol"], lines
    assert main(["run", str(path), "--out", str(project / "out")], engine=FakeEngine) == 2
    assert "(and 3 more problem(s))" in capsys.readouterr().err


def test_every_repeated_key_is_named(project: Path) -> None:
    path = _write(project, f"environments: [{ENV}]\nname: a\nmodels: [{{name: m, name: n}}]\nname: b\n")
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert info.value.problems == [
        "line 3: key 'name' repeats the one on line 3; YAML would keep only the last: merge them",
        "line 4: key 'name' repeats the one on line 2; YAML would keep only the last: merge them"]


def test_a_sibling_folder_in_the_same_checkout_is_fine_and_an_absolute_path_is_explicit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "models").mkdir()
    (repo / "models" / "mymodels.py").write_text("def build():\n    return None\n")
    (repo / "matrices").mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "mymodels.py").write_text("def build():\n    return None\n")
    path = _write(repo / "matrices", f"environments: [{ENV}]\nmodels:\n"
                                     "  - {name: a, path: ../models, factory: mymodels:build}\n"
                                     f"  - {{name: b, path: {outside}, factory: mymodels:build}}\n")
    assert project_root(path.parent) == repo
    roots = [m.origin.root for m in load_matrix(path).models if m.origin]
    assert roots == [str(repo / "models"), str(outside)]
    path.write_text(f"environments: [{ENV}]\nmodels: [{{name: a, path: ../../elsewhere, factory: mymodels:build}}]\n")
    with pytest.raises(MatrixError, match=r"models\[0\].path: '../../elsewhere' leads out of the matrix's project"):
        load_matrix(path)


def test_the_home_directory_is_never_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "mymodels.py").write_text("def build():\n    return None\n")
    monkeypatch.setenv("HOME", str(home))
    for where, why in ((home, "your home directory"), (tmp_path, "a folder holding your home directory")):
        path = _write(home, f"environments: [{ENV}]\nmodels: [{{name: a, path: {where}, factory: mymodels:build}}]\n")
        with pytest.raises(MatrixError, match=f"models\\[0\\].path: {where} is {why}"):
            load_matrix(path)


def test_a_link_or_a_fifo_inside_an_artifact_directory_is_refused(project: Path) -> None:
    saved = project / "sm"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"")
    (saved / "variables" / "variables.index").symlink_to("/etc/passwd")
    path = _write(project, f"environments: [{ENV}]\nmodels: [{{name: m, artifact: sm, inputs: x.npy}}]\n")
    with pytest.raises(MatrixError, match=r"models\[0\].artifact: .*sm holds variables/variables.index, a symbolic "
                                          "link; only regular files and folders are copied"):
        load_matrix(path)
    (saved / "variables" / "variables.index").unlink()
    os.mkfifo(saved / "variables" / "variables.index")
    with pytest.raises(MatrixError, match=r"variables/variables\.index, a FIFO"):
        load_matrix(path)
    fifo = project / "pipe.h5"
    os.mkfifo(fifo)
    path = _write(project, f"environments: [{ENV}]\nmodels: [{{name: m, artifact: pipe.h5, inputs: x.npy}}]\n")
    with pytest.raises(MatrixError, match=r"pipe\.h5 is a FIFO; expected a file or a directory"):
        load_matrix(path)


def test_inputs_files_are_checked_by_their_headers_without_reading_the_data(project: Path) -> None:
    big = project / "big.npy"
    with big.open("wb") as fh:  # a header claiming 2**40 values over a few bytes of data
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)})
    path = _write(project, f"environments: [{ENV}]\nmodels: [{FACTORY}, inputs: big.npy}}]\n")
    with pytest.raises(MatrixError, match=r"models\[0\].inputs: big.npy (holds 1099511627776 values|is not a read)"):
        load_matrix(path)


def test_a_valid_matrix_renders_one_from_line(project: Path) -> None:
    path = _write(project, f"""\
        environments: [{ENV}]
        base_image: "registry.example:5000/py:{{python}}-slim"
        pip: {{index_url: "https://user@mirror.example/simple", extra_index_urls: ["http://a.example/s"],
              trusted_hosts: ["a.example:8080"]}}
        """)
    matrix = load_matrix(path)
    plan = plan_image(matrix.environments[0], matrix.pip)
    assert [line for line in plan.dockerfile.splitlines() if line.startswith("FROM")] == [
        "FROM registry.example:5000/py:3.11-slim"]
    assert matrix.pip.trusted_hosts == ("a.example:8080",)


CHECK = {
    "NUL in --model": (["--model", "m\x00.h5"], "--model 'm\\x00.h5': no such file"),
    "unknown home in --model": (["--model", "~nosuchuser/m.h5"], "--model '~nosuchuser/m.h5': no such file"),
    "300-character --model": (["--model", "m" * 300 + ".h5"], "(303 characters): no such file"),
    "NUL in --inputs": (["--model", "{code}:build", "--inputs", "x\x00.npy"],
                        "--inputs 'x\\x00.npy': not a usable path"),
    "unknown home in --inputs": (["--model", "{code}:build", "--inputs", "~nosuchuser/x.npy"],
                                 "--inputs '~nosuchuser/x.npy': no such user's home directory"),
    "huge --inputs shape": (["--model", "{code}:build", "--inputs", "100000x100000x1000"],
                            "--inputs.shape: [100000, 100000, 1000] is 10000000000000 values"),
    "5,000-digit --inputs dimension": (["--model", "{code}:build", "--inputs", "8x" + "9" * 5000],
                                       "--inputs: not a usable path"),
    "NUL in --custom-objects": (["--model", "{code}:build", "--custom-objects", "x\x00.py"],
                                "--custom-objects 'x\\x00.py': not a usable path"),
    "5,000-digit version in --to": (["--model", "{code}:build", "--to", "tf==" + "1" * 5000],
                                    "--to.tensorflow: expected a version or specifier of at most 64"),
    "=== in --to": (["--model", "{code}:build", "--to", "tf===2.16.2"], "--to.tensorflow: '===' compares"),
    "a newline in --base-image": (["--model", "{code}:build", "--base-image", "python:{{python}}\nRUN id"],
                                  "--base-image/HARNESS_BASE_IMAGE: expected an image reference"),
}


@pytest.mark.parametrize("case", sorted(CHECK))
def test_every_bad_check_input_is_exit_2_with_one_line_naming_the_flag(
        case: str, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra, expected = CHECK[case]
    argv = ["check", "--from", "2.15.1", "--to", "2.16.2+keras3.3.3", "--out", str(project / "out"),
            *(a.format(code=project / "code" / "mymodels.py") for a in extra)]
    engine = FakeEngine()
    assert main(argv, engine=lambda: engine) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not engine.builds and not engine.runs and not (project / "out").exists()
