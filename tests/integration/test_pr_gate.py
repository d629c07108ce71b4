"""Installable anywhere, answered where upgrades happen: the built wheel in a fresh virtual environment outside the
checkout runs doctor, run and check; the composite action's steps answer examples/pr-gate/'s dependency bump
(TensorFlow 2.15.1 -> 2.21.0 + Keras 3.15.1) on a fake pull_request event; and a Keras 3.12.0 -> 3.12.1 bump of a
project whose model is a .keras file wrapping TFSMLayer is reported as breaking, with its cause and fix.

Economy: one wheel and one virtual environment for the module; the tf-keras environment is left out of both
checks (one image less each); the run uses one probe in an image the default matrix builds anyway.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from action_steps import fake_github, pull_request_event, run_action, shims
from harness.advisor.check import check_matrix
from harness.advisor.question import CheckQuestion, ModelQuestion
from surfaces import SARIF_SCHEMA, assert_one_answer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pr-gate"
TFSM = ROOT / "examples" / "tfsm_layer"
# The hand run of the same question (check --from 2.15.1 --to 2.21.0+keras3.15.1 --model model.keras --inputs
# inputs.npy --no-tf-keras; exit 1): its answer for the one target, a Keras 2 .keras file in Keras 3, whose
# BatchNormalization keeps its axis as a list ([1]).
HAND_RUN = {"verdict": "safe via another route", "route": ["keras", "load_model"], "cause": "keras2-list-axis"}


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                          capture_output=True, text=True).stdout.strip()


def _two_commits(source: Path, folder: Path, bump: tuple[str, str] | None = None) -> tuple[str, str]:
    """The example's files committed, then its bump (bump.patch, or one replacement in pyproject.toml)."""
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("bump.patch", "make_model.py", "README.md"))
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-qm", "base")
    if bump is None:
        _git(folder, "apply", str(source / "bump.patch"))
    else:
        path = folder / "pyproject.toml"
        path.write_text(path.read_text().replace(*bump))
    _git(folder, "commit", "-qam", "bump")
    return _git(folder, "rev-parse", "HEAD~1"), _git(folder, "rev-parse", "HEAD")


@pytest.fixture
def readable() -> Iterator[Path]:
    """A folder the containers' user can read (pytest's own are private to their owner, and a check mounts the
    project's folder read-only into its containers, where a root-run harness runs them as nobody)."""
    folder = Path(tempfile.mkdtemp(prefix="harness-pr-gate-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the built wheel, the Python of a fresh virtual environment that has it installed, and nothing else)."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(ROOT), "-w", str(dist)],
                   check=True, cwd=dist)
    wheel = next(dist.glob("harness-*.whl"))
    env = tmp_path_factory.mktemp("fresh") / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, cwd=env)
    return wheel, python


def _harness(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GITHUB_STEP_SUMMARY")}
    return subprocess.run([str(python.parent / "harness"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1800, check=False, env=environ)


def test_the_wheel_runs_outside_the_checkout(docker: None, wheel_env: tuple[Path, Path], tmp_path: Path) -> None:
    _, python = wheel_env
    where = subprocess.run([str(python), "-c", "import harness, sys; print(harness.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout
    assert "site-packages" in where and str(ROOT) not in where
    doctor = _harness(python, "doctor", cwd=tmp_path)
    assert doctor.returncode in (0, 1) and "Traceback" not in doctor.stderr, doctor.stdout + doctor.stderr
    (tmp_path / "tiny.yaml").write_text(
        'name: tiny\nenvironments:\n  - python: "3.13"\n    tensorflow: "2.20.0"\n    keras: "3.12.0"\n'
        "models: [dense]\nformats: [h5]\nloaders: [load_model]\n")
    run = _harness(python, "run", "tiny.yaml", "--out", str(tmp_path / "run"), "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert {c["status"] for c in report["cells"]} == {"pass"}
    assert (tmp_path / "run" / "report.html").read_text().startswith("<!DOCTYPE html>")  # the template travelled


def test_the_action_answers_the_pr_gate_bump_like_a_hand_run(docker: None, wheel_env: tuple[Path, Path],
                                                             tmp_path: Path, readable: Path) -> None:
    wheel, python = wheel_env
    repo = readable / "churn"
    base, head = _two_commits(EXAMPLE, repo)
    temp = tmp_path / "runner"
    temp.mkdir()
    with fake_github() as github:
        env = {"HOME": str(tmp_path), "GITHUB_API_URL": github.url, "GITHUB_TOKEN": "t0ken",
               **shims(tmp_path / "bin", str(python), fake_engine=False)}
        env.update({k: v for k, v in os.environ.items() if k.startswith(("DOCKER_", "HARNESS_", "PIP_"))})
        done = run_action({"harness": str(wheel), "tf-keras": "false"}, pull_request_event("acme/churn", 3, base, head),
                          repo, temp, env=env, sha=head)
    out = temp / "harness-check"
    index = json.loads((out / "checks.json").read_text())
    assert done.outputs["check"]["exit-code"] == str(index["exit_code"]) == done.outputs["answer"]["exit-code"], \
        done.log
    report = json.loads((out / "churn" / "report.json").read_text())
    target = report["check"]["targets"][0]
    assert (target["verdict"], target["route"]) == (HAND_RUN["verdict"], HAND_RUN["route"])
    assert next(r["cause"] for r in target["breaks"] if r["loader"] == "load_model") == HAND_RUN["cause"]
    assert_one_answer(out / "churn")
    # the hand run asks the same question: the same environments and model, from SPECs
    hand = CheckQuestion(source="2.15.1", targets=("2.21.0+keras3.15.1",), tf_keras=False,
                         model=ModelQuestion(model=str(repo / "model.keras"), inputs=str(repo / "inputs.npy"),
                                             name="churn", folder=str(repo)))
    environments = [{k: v for k, v in e.items() if k != "name"} for e in check_matrix(hand, None)[1]["environments"]]
    asked = json.loads((out / "churn" / "run.json").read_text())
    assert [(e["spec"]["python"], e["spec"]["tensorflow"], e["spec"].get("keras")) for e in asked["environments"]] \
        == [(e["python"], "==" + e["tensorflow"].lstrip("="), e.get("keras")) for e in environments]
    body = github.comments[0]["body"]
    assert f"exit {index['exit_code']} (fail-on: breaks" in body and "| `churn` |" in body
    assert "- `tensorflow` ==2.15.1 → ==2.21.0 (pyproject.toml:7)" in body and "- `keras` (none) → ==3.15.1" in body
    assert "fastapi, pandas" in body  # what was not pinned is said
    assert body in done.summary
    sarif = json.loads(Path(done.outputs["answer"]["sarif"]).read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    errors = [r for r in sarif["runs"][0]["results"] if r["level"] == "error"]
    assert bool(errors) == bool(index["exit_code"])
    assert errors[0]["ruleId"] == HAND_RUN["cause"]
    assert errors[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 7
    assert any(line.startswith("::error file=pyproject.toml,line=7,") for line in done.log.splitlines())


def test_a_keras_3121_patch_bump_breaks_a_keras_file_wrapping_tfsmlayer(docker: None, wheel_env: tuple[Path, Path],
                                                                        tmp_path: Path, readable: Path) -> None:
    _, python = wheel_env
    repo = readable / "tfsm"
    _two_commits(TFSM, repo, ('"keras==3.12.0"', '"keras==3.12.1"'))
    out = tmp_path / "check"
    done = _harness(python, "check", "--from-ref", "HEAD~1", "--to-ref", "HEAD", "--no-tf-keras", "--out", str(out),
                    cwd=repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "keras==3.12.0" in done.stdout and "keras==3.12.1" in done.stdout
    assert "hint: safe_mode refuses TFSMLayer" in done.stdout
    report = json.loads((out / "model" / "report.json").read_text())
    target = report["check"]["targets"][0]
    assert target["verdict"] == "safe via another route"  # re-exported, the SavedModel loads
    mine = next(r for r in target["breaks"] if r["loader"] == "load_model")
    assert mine["cause"] == "tfsm-layer-safe-mode" and "safe_mode=False" in mine["hint"]
    assert target["use"]["format"] == "export"
    assert_one_answer(out / "model")
