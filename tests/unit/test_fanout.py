"""`harness plan`: the CI job matrix, one entry per environment, split past GitHub's job limit."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from harness.cli import build_parser, main
from harness.fanout import fanout_plan, github_matrices
from harness.matrix import load_matrix, parse_matrix
from harness.plan import plan_environments
from harness.selectors import Versions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HARNESS_BASE_IMAGE", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT",
                 "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)


def _plan(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["plan", *argv]) == 0
    out = capsys.readouterr().out
    data: dict[str, object] = json.loads(out)
    return data


def test_github_plan_of_the_default_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan(capsys, "matrices/default.yaml", "--format", "github")
    versions = Versions({}, None)
    matrix = load_matrix(ROOT / "matrices" / "default.yaml", versions=versions)
    assert plan["count"] == len(matrix.environments) and plan["chunks"] == 1
    include = plan["matrices"][0]["include"]  # type: ignore[index]
    assert [job["env"] for job in include] == [e.id for e in matrix.environments]
    tags = [p.image.tag for p in plan_environments(matrix, {})]
    assert [job["image"] for job in include] == tags
    for job in include:
        for step in ("build", "save", "load"):
            args = build_parser().parse_args(shlex.split(job[step])[3:])  # the command parses as the CLI's own
            assert args.only == [job["env"]] and args.out == Path("run")
            assert args.versions == Path("versions.json")  # what the plan resolved, which the job writes first
        assert shlex.split(job["save"])[-4:] == ["--phase", "build", "--phase", "save"]
    assert plan["report"] == ("python -m harness run matrices/default.yaml --out run --versions versions.json "
                              "--phase report")
    assert plan["versions"] == versions.resolved() and plan["versions"]
    assert all(value is not None for job in include for value in job.values())  # GitHub matrices hold no null


def test_github_format_is_one_deterministic_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "matrices/smoke.yaml", "--format", "github"]) == 0
    first = capsys.readouterr().out
    assert main(["plan", "matrices/smoke.yaml", "--format", "github"]) == 0
    assert capsys.readouterr().out == first
    assert first.count("\n") == 1  # fits one $GITHUB_OUTPUT line


def test_json_plan_carries_the_matrix_identity_and_base_image(capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan(capsys, "matrices/smoke.yaml", "--base-image", "harness-base:{python}", "--out", "shared run")
    assert plan["matrix"]["name"] == "smoke" and len(plan["matrix"]["sha256"]) == 64  # type: ignore[index]
    job = plan["environments"][0]  # type: ignore[index]
    assert "--base-image 'harness-base:{python}'" in job["load"] and "--out 'shared run'" in job["load"]


def test_more_environments_than_github_allows_are_split() -> None:
    envs = [{"python": "3.11", "tensorflow": f"2.{minor}.{patch}"} for minor in range(10, 17) for patch in range(3)]
    matrix = parse_matrix({"environments": envs}, path="big.yaml", sha256="0" * 64)
    plan = fanout_plan(plan_environments(matrix, {}), matrix_name="big", matrix_arg="big.yaml",
                       matrix_sha256=matrix.sha256, out="run", max_jobs=8)
    sizes = [len(m["include"]) for m in plan["matrices"]]
    assert sizes == [8, 8, 5]
    assert [j["env"] for m in plan["matrices"] for j in m["include"]] == [j["env"] for j in plan["environments"]]
    assert github_matrices([]) == [{"include": []}]


def test_plan_of_a_bad_matrix_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("environments: [{python: 3.10, tensorflow: '2.16.2'}]\n")
    assert main(["plan", str(bad)]) == 2
    assert capsys.readouterr().out == ""
