"""The pull request surfaces and the composite action: action.yml's shape, its steps run here on a fake pull_request
event (the fake engine behind `python -m harness`, a fake GitHub API on 127.0.0.1), and `harness pr` on its own.
The comment, the job summary, the annotations and the SARIF say what the check's exit code says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from action_steps import action, fake_github, pull_request_event, run_action, shims
from fake_engine import FakeEngine
from fake_loads import RefusesInTargets
from harness.cli import main
from harness.github.answer import read_answer, workflow_commands
from surfaces import SARIF_SCHEMA

PYPROJECT = """\
[project]
name = "svc"
requires-python = ">=3.11"
dependencies = [
    "tensorflow==2.20.0",
    "keras=={keras}",
]

[[tool.harness.models]]
model = "model.keras"
inputs = "4x3:float32"
"""


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository whose project folder bumps Keras 3.12.0 -> 3.12.1: (folder, base sha, head sha)."""
    root = tmp_path / "repo"
    folder = root / "svc"
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"PK")
    (folder / "pyproject.toml").write_text(PYPROJECT.format(keras="3.12.0"))
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    base = _git(root, "rev-parse", "HEAD")
    (folder / "pyproject.toml").write_text(PYPROJECT.format(keras="3.12.1"))
    _git(root, "commit", "-qam", "bump keras")
    return folder, base, _git(root, "rev-parse", "HEAD")


def test_the_action_is_composite_and_thin() -> None:
    spec = action()
    assert spec["runs"]["using"] == "composite"
    steps = spec["runs"]["steps"]
    for step in steps:
        assert ("uses" in step) != ("run" in step), step
        if "run" in step:
            assert step["shell"] == "bash"
            assert "${{" not in step["run"], "expressions go through env:, never into a script"
            assert len(step["run"].strip().splitlines()) <= 15, step.get("name")
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses == ["actions/setup-python", "actions/cache/restore", "actions/cache/save",
                    "github/codeql-action/upload-sarif"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "python -m harness check" in runs and "python -m harness pr" in runs
    for name, meta in spec["inputs"].items():
        assert meta.get("description") and "default" in meta, name
    assert {o["value"] for o in spec["outputs"].values()} == {"${{ steps.answer.outputs.exit-code }}",
                                                              "${{ steps.answer.outputs.sarif }}",
                                                              "${{ steps.answer.outputs.comment-url }}"}
    assert spec["inputs"]["fail-on"]["default"] == "breaks"


def _job(tmp_path: Path, github: Any, **extra: str) -> dict[str, str]:
    env = {"HOME": str(tmp_path), "GITHUB_API_URL": github.url, "GITHUB_TOKEN": "t0ken",
           "HARNESS_FAKE_BREAK_IN": "keras3.12.1", **extra}
    env.update(shims(tmp_path / "bin", sys.executable, fake_engine=True))
    return env


def test_the_action_answers_on_a_fake_pull_request_and_updates_its_one_comment(
        repo: tuple[Path, str, str], tmp_path: Path) -> None:
    folder, base, head = repo
    event = pull_request_event("acme/svc", 7, base, head)
    with fake_github() as github:
        env = _job(tmp_path, github)
        (tmp_path / "t1").mkdir()
        first = run_action({"project": "svc"}, event, folder.parent, tmp_path / "t1", env=env, sha=head)
        (tmp_path / "t2").mkdir()
        second = run_action({"project": "svc"}, event, folder.parent, tmp_path / "t2", env=env, sha=head)
    assert first.codes["check"] == 0 and first.outputs["check"]["exit-code"] == "1", first.log
    assert first.codes["answer"] == 1 and first.outputs["answer"]["exit-code"] == "1"
    assert "save images and wheels (actions/cache/save@v4)" in first.skipped
    assert "upload SARIF (github/codeql-action/upload-sarif@v3)" in first.skipped
    # one comment, created by the first push and edited by the second
    assert [m for m, _ in github.requests if m != "GET"] == ["POST", "PATCH"] and len(github.comments) == 1
    body = github.comments[0]["body"]
    assert body.startswith("<!-- harness check: svc -->\n### harness check: ❌ 1 of 1 model(s) break")
    assert "- `keras` ==3.12.0 → ==3.12.1 (svc/pyproject.toml:6)" in body
    row = next(line for line in body.splitlines() if line.startswith("| `model` |"))
    assert "❌ breaks (another route works): safe_mode refuses TFSMLayer" in row and "tfsm-layer-safe-mode" in row
    assert body.rstrip().endswith("exit 1 (fail-on: breaks; the check's own exit code: 1)")
    assert body in first.summary  # the job summary says the same, after the check's own report.md
    annotation = next(line for line in first.log.splitlines() if line.startswith("::error file="))
    assert annotation.startswith("::error file=svc/pyproject.toml,line=6,title=harness%3A model breaks")
    assert "tfsm-layer-safe-mode" in annotation
    sarif = json.loads(Path(first.outputs["answer"]["sarif"]).read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    errors = [r for r in sarif["runs"][0]["results"] if r["level"] == "error"]
    assert errors and errors[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "svc/pyproject.toml"
    calls = (tmp_path / "bin" / "calls.log").read_text()
    assert "pip install --quiet " + str(Path(__file__).resolve().parents[2]) in calls  # the action's own source
    assert calls.count("docker save --output " + str(tmp_path / "t1")) == 3  # its three images, for the next run
    assert second.codes["answer"] == 1


def test_fail_on_never_comments_and_passes(repo: tuple[Path, str, str], tmp_path: Path) -> None:
    folder, base, head = repo
    with fake_github() as github:
        run = run_action({"project": "svc", "fail-on": "never", "comment": "false"},
                         pull_request_event("acme/svc", 7, base, head), folder.parent, tmp_path, env=_job(
                             tmp_path, github), sha=head)
    assert not run.failed and run.outputs["answer"]["exit-code"] == "0", run.log
    assert github.requests == [] and "::warning file=svc/pyproject.toml,line=6" in run.log
    assert "exit 0 (fail-on: never; the check's own exit code: 1)" in run.summary


def test_a_forks_read_only_token_warns_and_the_answer_still_decides(repo: tuple[Path, str, str],
                                                                    tmp_path: Path) -> None:
    folder, base, head = repo
    event = pull_request_event("acme/svc", 7, base, head)
    event["pull_request"]["head"]["repo"]["full_name"] = "someone/svc"
    with fake_github() as github:
        github.refuse = 403
        run = run_action({"project": "svc"}, event, folder.parent, tmp_path, env=_job(tmp_path, github), sha=head)
    assert run.codes["answer"] == 1
    assert "::warning title=harness pr::the comment was not posted (a pull request from a fork gets a read-only" \
        in run.log


def test_a_check_that_cannot_answer_says_why(tmp_path: Path, repo: tuple[Path, str, str]) -> None:
    folder, base, head = repo
    with fake_github() as github:
        run = run_action({"project": "svc", "to-ref": "nope"}, pull_request_event("acme/svc", 7, base, head),
                         folder.parent, tmp_path, env=_job(tmp_path, github), sha=head)
    assert run.outputs["check"]["exit-code"] == "2" and run.codes["answer"] == 2, run.log
    assert "could not answer (exit 2)" in github.comments[0]["body"]
    assert "--to-ref 'nope': no such commit" in github.comments[0]["body"]
    assert "keep the images for the next run (if: false)" in run.skipped


def test_harness_pr_on_a_run_directory(repo: tuple[Path, str, str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _, _ = repo
    monkeypatch.setenv("HARNESS_FAKE_BREAK_IN", "keras3.12.1")
    out = tmp_path / "run"
    assert main(["check", "--from-ref", "HEAD~1", "--to-ref", "HEAD", "--project", str(folder), "--out", str(out),
                 "-q"], engine=RefusesInTargets) == 1
    capsys.readouterr()
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    assert main(["pr", str(out), "--sarif", str(tmp_path / "x.sarif")], engine=FakeEngine) == 1
    printed = capsys.readouterr()
    assert "no pull request in this event: no comment" in printed.err
    assert printed.out.count("::error ") == 1 and (tmp_path / "x.sarif").is_file()
    assert main(["pr", str(out), "--fail-on", "unsafe", "--no-comment"], engine=FakeEngine) == 0  # another route works
    answer = read_answer(out)
    assert answer.exit_code == 1 and [m for m, _ in answer.reports] == ["model"]
    assert all(re.match(r"::warning ", line) for line in workflow_commands(answer, "never"))
    assert main(["pr", str(tmp_path)], engine=FakeEngine) == 2
