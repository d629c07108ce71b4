"""The environment a project installs, read from its own files: pins, the Python, what is ignored, errors by line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.advisor import deps, files
from harness.advisor.deps import read_project
from harness.errors import UsageError


def _project(tmp_path: Path, **texts: str) -> Path:
    for name, text in texts.items():
        (tmp_path / name.replace("__", ".").replace("_lock", ".lock")).write_text(text)
    return tmp_path


def _read(folder: Path) -> deps.ProjectEnv:
    return read_project(files.working_tree(folder))


def test_requirements_pin_the_loading_packages_and_name_the_rest(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# serving\ntensorflow-cpu==2.15.1 ; sys_platform == 'linux'\ntensorflow-macos==2.15.0; sys_platform == "
        "'darwin'\nnumpy==1.26.4 \\\n    --hash=sha256:abc\npandas>=2\n-r requirements-extra.txt\n--index-url x\n"
        "-e .\n")
    (tmp_path / "requirements-extra.txt").write_text("h5py>=3.10,<3.12\nscikit-learn\n")
    env = _read(tmp_path)
    assert env.tensorflow == deps.Pin("tensorflow", "==2.15.1", "requirements.txt", 2)
    assert env.pins["numpy"] == deps.Pin("numpy", "==1.26.4", "requirements.txt", 4)
    assert env.pins["h5py"].spec == "<3.12,>=3.10" and env.pins["h5py"].file == "requirements-extra.txt"
    assert env.ignored == ("pandas", "scikit-learn")
    assert env.keras() is None and env.python == "3.11" and env.python_from == "the default"
    assert env.packages() == ("numpy==1.26.4", "h5py<3.12,>=3.10")


def test_pyproject_dependencies_and_requires_python(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nrequires-python = ">=3.12"\ndependencies = [\n  "tensorflow==2.21.0",\n'
        '  "keras==3.15.1",\n  "protobuf<6",\n]\n')
    env = _read(tmp_path)
    assert env.python == "3.12" and "requires-python >=3.12 (pyproject.toml)" in env.python_from
    assert env.keras() == "==3.15.1" and env.pins["keras"].line == 6
    assert env.packages() == ("protobuf<6",)


def test_python_version_file_wins_and_must_fit_tensorflow(tmp_path: Path) -> None:
    _project(tmp_path, requirements__txt="tensorflow==2.15.1\n", __python_version="3.11.9\n")
    assert _read(tmp_path).python == "3.11"
    (tmp_path / ".python-version").write_text("3.13\n")
    with pytest.raises(UsageError, match=r"no Python fits: Python 3.13: tensorflow 2.15 has wheels for Python 3.9"):
        _read(tmp_path)


def test_keras_313_moves_the_python_floor(tmp_path: Path) -> None:
    _project(tmp_path, requirements__txt="tensorflow==2.21.0\nkeras==3.13.2\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nrequires-python = ">=3.10,<3.11"\n')
    with pytest.raises(UsageError, match=r"keras 3.13 needs Python >= 3.11"):
        _read(tmp_path)


def test_a_lock_says_what_is_installed(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["tensorflow>=2.15", "keras"]\n')
    (tmp_path / "uv.lock").write_text(
        'version = 1\nrequires-python = ">=3.11"\n\n[[package]]\nname = "keras"\nversion = "3.12.1"\n'
        'source = { registry = "https://pypi.org/simple" }\n\n[[package]]\nname = "numpy"\nversion = "2.1.3"\n'
        'resolution-markers = ["python_full_version >= \'3.12\'"]\n\n[[package]]\nname = "numpy"\n'
        'version = "1.26.4"\nresolution-markers = ["python_full_version < \'3.12\'"]\n\n[[package]]\n'
        'name = "tensorflow"\nversion = "2.20.0"\n\n[[package]]\nname = "x"\nsource = { editable = "." }\n')
    env = _read(tmp_path)
    assert env.pins["keras"] == deps.Pin("keras", "==3.12.1", "uv.lock", 6)
    assert env.pins["numpy"] == deps.Pin("numpy", "==1.26.4", "uv.lock", 16)
    assert env.tensorflow.spec == "==2.20.0" and env.read == ("uv.lock", "pyproject.toml")


def test_poetry_lock_and_its_python_constraint(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text(
        '[[package]]\nname = "tensorflow-cpu"\nversion = "2.16.2"\n\n[[package]]\nname = "tf-keras"\n'
        'version = "2.16.0"\n\n[metadata]\npython-versions = "~3.10"\n')
    env = _read(tmp_path)
    assert (env.python, env.keras(), env.tensorflow.spec) == ("3.10", "tf-keras==2.16.0", "==2.16.2")


@pytest.mark.parametrize(("name", "text", "message"), [
    ("requirements.txt", "numpy\ntensorflow=2.15\n", r"requirements.txt:2: invalid requirement 'tensorflow=2.15'"),
    ("requirements.txt", "tensorflow==2.15.1\n-r missing.txt\n", r"requirements.txt:2: -r missing.txt: no such file"),
    ("requirements.txt", "pandas\n", r"no TensorFlow requirement"),
    ("pyproject.toml", '[project]\ndependencies = ["tensorflow==2.15.1", 3]\n',
     r"pyproject.toml: project.dependencies\[1\]: expected a requirement string"),
    ("pyproject.toml", "[project\n", r"pyproject.toml at the working tree: not valid TOML"),
    ("uv.lock", '[[package]]\nname = "keras"\nversion = "three"\n', r"uv.lock: package\[0\].version: not a version"),
    (".python-version", "pypy3.10\n", r".python-version:1 at the working tree: expected a CPython version"),
])
def test_bad_files_are_named_by_line_or_key(tmp_path: Path, name: str, text: str, message: str) -> None:
    if name != "requirements.txt":
        (tmp_path / "requirements.txt").write_text("tensorflow==2.15.1\n")
    (tmp_path / name).write_text(text)
    with pytest.raises(UsageError, match=message):
        _read(tmp_path)


def test_two_exact_pins_that_disagree(tmp_path: Path) -> None:
    _project(tmp_path, requirements__txt="tensorflow==2.15.1\n", requirements_gpu__txt="tensorflow==2.16.2\n")
    with pytest.raises(UsageError, match=r"tensorflow is pinned twice, to 2.15.1 \(requirements.txt:1\) and to "
                                         r"2.16.2 \(requirements_gpu.txt:1\)"):
        _read(tmp_path)


def test_no_dependency_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no dependency file"):
        _read(tmp_path)


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_refs_are_read_without_a_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "svc").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "svc" / "requirements.txt").write_text("tensorflow==2.15.1\nnumpy==1.26.4\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    (repo / "svc" / "requirements.txt").write_text("tensorflow==2.15.1\nnumpy==2.0.0\n")
    _git(repo, "commit", "-qam", "bump")
    (repo / "svc" / "requirements.txt").write_text("tensorflow==2.16.2\n")  # uncommitted
    before = read_project(files.at_ref(repo / "svc", "HEAD~1", "--from-ref"))
    after = read_project(files.at_ref(repo / "svc", "HEAD", "--to-ref"))
    tree = read_project(files.working_tree(repo / "svc"))
    assert before.pins["numpy"].spec == "==1.26.4" and after.pins["numpy"].spec == "==2.0.0"
    assert tree.tensorflow.spec == "==2.16.2"
    assert before.files.label.startswith("HEAD~1 (") and tree.files.label == "the working tree"
    requests = deps.requests([before, after])
    assert [r.name for r in requests] == ["py3.11-tf2.15.1-numpy1.26.4", "py3.11-tf2.15.1-numpy2.0.0"]
    record = deps.record([before, after])
    assert record["changed"] == [{"package": "numpy", "from": "==1.26.4", "to": "==2.0.0",
                                  "file": "svc/requirements.txt", "line": 2}]
    assert record["project"] == "svc"
    with pytest.raises(UsageError, match=r"--from-ref 'nope': no such commit in .*repo"):
        files.at_ref(repo / "svc", "nope", "--from-ref")
    with pytest.raises(UsageError, match="expected a commit"):
        files.at_ref(repo / "svc", "--output=x", "--from-ref")
