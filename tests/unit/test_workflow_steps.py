"""Each step of a run alone, against the fake engine: resolve the images, prepare the run directory, then build,
stage, save, load and report. A whole run pings the engine once, plans its environments once, builds its report
once, and records its own gate; a report's flags are that report's only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fake_engine import FakeEngine
from fake_run import FakeRun
from harness import plan as plan_module
from harness.cells import CellPlan
from harness.cli import main
from harness.console import Console
from harness.matrix import Matrix, parse_matrix
from harness.report import writers
from harness.rundir import RunDir
from harness.runner import Runner
from harness.workflow import RunRequest, build, load, prepare_run_dir, report, resolve_images, save, stage

A, B = "py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3"
ENVS = [{"python": "3.11", "tensorflow": "2.15.1"}, {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"}]
MATRIX = {"name": "steps", "environments": ENVS, "models": ["dense"], "formats": ["h5", "keras"],
          "loaders": ["load_model"]}
QUIET = Console(quiet=True)


class CountingEngine(FakeEngine):
    """The fake engine, counting how often it is asked whether it is there."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pings = 0

    def ping(self) -> None:
        """Reachable; counted."""
        self.pings += 1


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_BASE_IMAGE", raising=False)


def _matrix(data: dict[str, Any] | None = None) -> Matrix:
    return parse_matrix(data or MATRIX, path="m.yaml", sha256="0" * 64)


def _prepared(engine: FakeEngine, out: Path, matrix: Matrix | None = None, **asked: Any) -> Runner:
    """A runner through the first two steps, as run_matrix makes it."""
    request = RunRequest(out=out, **asked)
    resolved, envs = resolve_images(matrix or _matrix(), request, engine, console=QUIET, environ={})
    return prepare_run_dir(resolved, envs, request, engine, console=QUIET, environ={})


def _steps(engine: FakeEngine) -> list[tuple[str, str]]:
    return [(s.command[3], json.loads(s.command[5])["env"]) for s in engine.runs]


@pytest.fixture
def old_report(tmp_path: Path) -> Path:
    old = FakeRun(tmp_path / "old")
    writers.write_reports(RunDir(old.root))
    return old.root / "report.json"


# ---------------------------------------------------------------------------- each step alone


def test_resolving_the_images_pings_the_engine_once_and_plans_only_the_selected_environments() -> None:
    engine = CountingEngine()
    _, envs = resolve_images(_matrix(), RunRequest(only=(A,)), engine, console=QUIET, environ={})
    assert engine.pings == 1 and [p.env.id for p in envs] == [A]
    assert engine.pulls == ["python:3.11-slim"] and engine.builds == [] and engine.runs == []


def test_a_report_alone_resolves_no_image_and_never_asks_for_the_engine() -> None:
    engine = CountingEngine()
    _, envs = resolve_images(_matrix(), RunRequest(phases=("report",)), engine, console=QUIET, environ={})
    assert engine.pings == 0 and engine.pulls == [] and len(envs) == 2


def test_preparing_the_run_directory_records_the_plan_and_the_runs_gate(tmp_path: Path, old_report: Path) -> None:
    engine = CountingEngine()
    runner = _prepared(engine, tmp_path / "run", baseline=old_report, fail_on="regressions")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "running" and run["run_id"] == runner.plan.run_id
    assert run["plan"] == CellPlan.of(_matrix()).to_dict()
    assert (run["baseline"], run["fail_on"]) == (str(old_report.resolve()), "regressions")
    assert sorted(runner.plan.saves) == sorted(runner.plan.loads) == [A, B]
    assert len(runner.plan.expected) == 2 * 2 * 2 and engine.builds == engine.runs == []


def test_the_build_step_builds_every_image_and_starts_no_container(tmp_path: Path) -> None:
    engine = FakeEngine()
    build(_prepared(engine, tmp_path / "run", phases=("build",)))
    assert len(engine.builds) == 3 and engine.runs == []  # B's TensorFlow image first


def test_an_environment_saves_once_its_own_image_is_built_and_the_save_step_has_nothing_left(tmp_path: Path) -> None:
    engine = FakeEngine()
    runner = _prepared(engine, tmp_path / "run")
    build(runner)
    assert len(engine.builds) == 3 and sorted(_steps(engine)) == [("save", A), ("save", B)]
    assert runner.saved == {A, B} and {"build", "save"} <= set(runner.state.timings)
    engine.runs.clear()
    save(runner)
    assert engine.runs == []


def test_with_every_image_there_the_build_step_starts_no_container(tmp_path: Path) -> None:
    engine = FakeEngine()
    build(_prepared(engine, tmp_path / "first"))
    engine.runs.clear()
    build(_prepared(engine, tmp_path / "run"))
    assert engine.runs == []


def test_the_stage_step_writes_a_users_inputs_and_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "mymodels.py").write_text("def build():\n    return None\n")
    mine = {"name": "mine", "path": str(tmp_path / "code"), "factory": "mymodels:build", "inputs": {"shape": [4, 3]}}
    engine = FakeEngine()
    runner = _prepared(engine, tmp_path / "run", _matrix({**MATRIX, "models": [mine]}))
    stage(runner)
    assert (runner.run_dir.userdata / "mine" / "inputs.npz").is_file()
    assert engine.builds == engine.runs == []


def test_the_save_step_starts_a_container_per_environment_whose_image_built(tmp_path: Path) -> None:
    failing = plan_module.plan_environments(_matrix(), {})[1].image.tag
    engine = FakeEngine(failing_tags=frozenset({failing}))
    runner = _prepared(engine, tmp_path / "run")
    build(runner)
    save(runner)
    assert _steps(engine) == [("save", A)]
    assert runner.failures == [f"{B}: image did not build: ERROR: No matching distribution found for x"]


def test_the_load_step_starts_a_container_per_target_and_records_every_cell(tmp_path: Path) -> None:
    engine = FakeEngine()
    runner = _prepared(engine, tmp_path / "run")
    for step in (build, stage, save):
        step(runner)
    engine.runs.clear()
    load(runner)
    assert sorted(_steps(engine)) == [("load", A), ("load", B)]
    loads = [r for r in runner.run_dir.read_loads(A) if r.get("kind") == "load"]
    assert len(loads) == len(runner.plan.cells_of(A)) == 2 * 2


def test_the_report_step_builds_the_report_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = _count(monkeypatch, writers, "build_report")
    runner = _prepared(FakeEngine(), tmp_path / "run")
    for step in (build, stage, save, load, report):
        step(runner)
    assert built == [1] and runner.report is not None and runner.report["verdict"]["exit_code"] == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "complete"


def test_without_the_report_phase_the_report_step_says_the_phases_are_done(tmp_path: Path) -> None:
    runner = _prepared(FakeEngine(), tmp_path / "run", phases=("build",))
    build(runner)
    report(runner)
    assert runner.report is None and not (tmp_path / "run" / "report.json").exists()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "complete"


# ---------------------------------------------------------------------------- a whole run, and its gate


def _count(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Count the calls of module.name from now on (one list item, incremented)."""
    calls = [0]
    real = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_gated_run_pings_once_plans_once_and_reports_once(tmp_path: Path, old_report: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import workflow

    planned, built = _count(monkeypatch, workflow, "plan_environments"), _count(monkeypatch, writers, "build_report")
    engine = CountingEngine()
    (tmp_path / "m.yaml").write_text(json.dumps(MATRIX))
    out = tmp_path / "run"
    code = main(["run", str(tmp_path / "m.yaml"), "--out", str(out), "--baseline", str(old_report), "--fail-on",
                 "regressions", "-q"], engine=lambda: engine)
    assert code == 0 and (engine.pings, planned, built) == (1, [1], [1])
    run = json.loads((out / "run.json").read_text())
    assert (run["baseline"], run["fail_on"]) == (str(old_report.resolve()), "regressions")
    assert json.loads((out / "report.json").read_text())["verdict"]["fail_on"] == "regressions"


def test_a_reports_flags_are_that_reports_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.yaml").write_text(json.dumps(MATRIX))
    out = tmp_path / "run"
    assert main(["run", str(tmp_path / "m.yaml"), "--out", str(out), "--fail-on", "unexpected", "-q"],
                engine=FakeEngine) == 0
    recorded = json.loads((out / "run.json").read_text())
    assert main(["report", str(out), "--fail-on", "regressions"]) == 0
    assert json.loads((out / "report.json").read_text())["verdict"]["fail_on"] == "regressions"
    assert {k: v for k, v in json.loads((out / "run.json").read_text()).items() if k != "timings"} == {
        k: v for k, v in recorded.items() if k != "timings"}
    assert main(["report", str(out)]) == 0  # a plain report: the run's own gate
    assert json.loads((out / "report.json").read_text())["verdict"]["fail_on"] == "unexpected"
    capsys.readouterr()


def test_the_report_reads_its_cells_from_the_plan_run_json_records(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(json.dumps(MATRIX))
    out = tmp_path / "run"
    assert main(["run", str(tmp_path / "m.yaml"), "--out", str(out), "-q"], engine=FakeEngine) == 0
    run = json.loads((out / "run.json").read_text())
    run["plan"]["models"][0]["routes"] = [["keras", "load_model"]]  # a plan without the h5 cells
    (out / "run.json").write_text(json.dumps(run))
    assert {c["format"] for c in writers.write_reports(RunDir(out))["cells"]} == {"keras"}
    del run["plan"]  # a run directory from before plans were recorded: the matrix's cells
    (out / "run.json").write_text(json.dumps(run))
    assert len(writers.write_reports(RunDir(out))["cells"]) == 2 * 2 * 2
