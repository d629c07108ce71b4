"""The runner against a fake engine: phases, container count, reuse, build errors, resume."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import harness.runner as runner_module
from fake_engine import FakeEngine, planned_runner
from harness.engine import RunResult, RunSpec
from harness.matrix import parse_matrix
from harness.plan import plan_environments
from harness.rundir import RunDir
from harness.workflow import execute

MATRIX = {
    "environments": [
        {"python": "3.11", "tensorflow": "2.15.1"},
        {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"},
        {"python": "3.11", "tensorflow": "2.12.9"},  # no such release: the build fails
    ],
    "models": ["dense"],
    "formats": ["h5", "keras"],
    "loaders": ["load_model"],
}


def _run(engine: FakeEngine, out: Path, *, resume: bool = False, jobs: int = 1) -> dict[str, Any]:
    matrix = parse_matrix(MATRIX, path="m.yaml", sha256="0" * 64)
    report = execute(planned_runner(engine, matrix, RunDir.prepare(out, resume=resume), jobs=jobs, resume=resume))
    assert report is not None
    return report


def _tags() -> list[str]:
    matrix = parse_matrix(MATRIX, path="m.yaml", sha256="0" * 64)
    return [p.image.tag for p in plan_environments(matrix, {})]


@pytest.mark.parametrize("jobs", [1, 2])
def test_two_containers_per_environment_and_every_pair_reported(tmp_path: Path, jobs: int) -> None:
    engine = FakeEngine()
    report = _run(engine, tmp_path / "run", jobs=jobs)
    assert len(engine.runs) == 2 * 3
    assert sorted(s.command[3] for s in engine.runs) == ["load"] * 3 + ["save"] * 3
    cells = report["cells"]
    assert len(cells) == 3 * 3 * 2  # source x target x formats
    assert {c["status"] for c in cells} == {"pass"}
    assert report["verdict"]["exit_code"] == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["containers_started"] == 6
    assert run["status"] == "complete"


def test_images_are_built_once_and_reused(tmp_path: Path) -> None:
    engine = FakeEngine()
    _run(engine, tmp_path / "a")
    assert len(engine.builds) == 4  # and the TensorFlow image the Keras 3 environment builds FROM
    first = json.loads((tmp_path / "a" / "run.json").read_text())
    parents = {e["id"]: e["build"].get("from") for e in first["environments"]}
    built = set(engine.builds)
    assert [p for p in parents.values() if p] and all(p in built for p in parents.values() if p)
    assert [e for e, p in parents.items() if p is None]  # TensorFlow alone: the environment's own image
    _run(engine, tmp_path / "b")
    assert len(engine.builds) == 4
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    assert all(e["build"]["built"] is False for e in run["environments"])


class _SlowBuilds(FakeEngine):
    """Builds that take a while, as real ones do: two threads asking for one tag overlap."""

    def build(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return super().build(*args, **kwargs)


def test_environments_sharing_an_image_build_it_once_in_parallel(tmp_path: Path) -> None:
    engine = _SlowBuilds()
    data = {"environments": [{"python": "3.11", "tensorflow": "2.15.1"},
                             {"python": "3.11", "tensorflow": "2.15.1", "env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}],
            "models": ["dense"], "formats": ["h5"], "loaders": ["load_model"]}
    matrix = parse_matrix(data, path="m.yaml", sha256="0" * 64)
    plans = plan_environments(matrix, {})
    assert plans[0].image.tag == plans[1].image.tag
    report = execute(planned_runner(engine, matrix, RunDir.prepare(tmp_path / "run", resume=False), jobs=2))
    assert engine.builds == [plans[0].image.tag]
    assert report is not None and {c["status"] for c in report["cells"]} == {"pass"}
    assert [s.env.get("TF_ENABLE_ONEDNN_OPTS") for s in engine.runs if s.command[3] == "save"].count("0") == 1


def test_failed_build_is_a_result_and_the_others_go_on(tmp_path: Path) -> None:
    failing = _tags()[2]
    engine = FakeEngine(failing_tags=frozenset({failing}))
    report = _run(engine, tmp_path / "run")
    envs = {e["id"]: e for e in report["environments"]}
    broken = envs["py3.11-tf2.12.9"]
    assert broken["status"] == "build_error"
    assert "No matching distribution" in broken["error"]
    assert len(engine.runs) == 2 * 2
    statuses = {(c["source"], c["target"]): c["status"] for c in report["cells"]}
    assert statuses[("py3.11-tf2.12.9", "py3.11-tf2.15.1")] == "skipped"
    assert statuses[("py3.11-tf2.15.1", "py3.11-tf2.12.9")] == "skipped"
    assert statuses[("py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3")] == "pass"
    assert report["verdict"]["exit_code"] == 1
    assert any("py3.11-tf2.12.9" in u for u in report["verdict"]["unexpected"])


def test_drift_beyond_tolerance_fails_the_run(tmp_path: Path) -> None:
    report = _run(FakeEngine(drift=0.01), tmp_path / "run")  # a drift in every environment but the saving one
    assert {c["status"] for c in report["cells"] if c["source"] != c["target"]} == {"drift"}
    assert {c["route_status"] for c in report["cells"] if c["source"] != c["target"]} == {"breaks"}
    drift = next(c for c in report["cells"] if c["source"] != c["target"])
    assert drift["max_abs_diff"] == pytest.approx(0.01, rel=1e-3)
    assert report["verdict"]["exit_code"] == 1


def test_resume_redoes_nothing_finished(tmp_path: Path) -> None:
    engine = FakeEngine()
    first = _run(engine, tmp_path / "run")
    started = len(engine.runs)
    again = _run(engine, tmp_path / "run", resume=True)
    assert len(engine.runs) == started
    assert again["cells"] == first["cells"]


def test_resume_finishes_an_interrupted_load(tmp_path: Path) -> None:
    engine = FakeEngine()
    _run(engine, tmp_path / "run")
    records = tmp_path / "run" / "records" / "load-py3.11-tf2.15.1.jsonl"
    lines = records.read_text().splitlines()
    records.write_text("\n".join(lines[:2]) + "\n")  # killed after two cells
    started = len(engine.runs)
    report = _run(engine, tmp_path / "run", resume=True)
    assert len(engine.runs) == started + 1  # only the unfinished load container
    assert len(records.read_text().splitlines()) == len(lines)
    assert {c["status"] for c in report["cells"]} == {"pass"}


class FlakyEngine(FakeEngine):
    """An engine whose first `failures` container starts fail as the daemon, not the container."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        if self.failures > 0:
            self.failures -= 1
            return RunResult(exit_code=125, seconds=0.0, output_tail="Error response from daemon: hiccup")
        return super().run(spec, log_path)


def test_engine_failures_are_retried_twice_and_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(runner_module, "_pause", pauses.append)
    engine = FlakyEngine(failures=2)
    report = _run(engine, tmp_path / "run")
    assert {c["status"] for c in report["cells"] if "tf2.12.9" not in c["source"] + c["target"]} == {"pass"}
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["containers_started"] == 2 * 3 + 2
    first = run["environments"][0]
    assert first["save"]["infrastructure_retries"] == 2
    assert pauses == list(runner_module.RETRY_PAUSES)  # each retry after a pause, the second a longer one


class _LoadsFail(FakeEngine):
    """An engine that cannot run the load containers of one target (exit 125, every attempt)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def run(self, spec: RunSpec, log_path: Path) -> RunResult:
        if spec.name.endswith(f"-load-{self.target}"):
            return RunResult(exit_code=125, seconds=0.0, output_tail="Error: layer not known")
        return super().run(spec, log_path)


def test_a_target_the_engine_could_not_load_in_says_so_and_resume_computes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "_pause", lambda seconds: None)
    target = "py3.11-tf2.16.2-keras3.3.3"
    report = _run(_LoadsFail(target), tmp_path / "run")
    into = [c for c in report["cells"] if c["target"] == target and "tf2.12.9" not in c["source"]]
    assert into and {c["status"] for c in into} == {"skipped"}
    assert all("container engine could not run the load container" in c["reason"] for c in into)
    others = [c for c in report["cells"] if c["target"] != target and "tf2.12.9" not in c["source"] + c["target"]]
    assert {c["status"] for c in others} == {"pass"}
    again = _run(FakeEngine(), tmp_path / "run", resume=True)
    assert {c["status"] for c in again["cells"] if "tf2.12.9" not in c["source"] + c["target"]} == {"pass"}


def test_a_third_engine_failure_is_a_failed_container_not_a_retry_loop(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "_pause", lambda seconds: None)
    engine = FlakyEngine(failures=3)
    report = _run(engine, tmp_path / "run")
    assert report["verdict"]["exit_code"] == 1
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["containers_started"] == 2 * 3 + 3 - 1  # the failed save's env has no load container
