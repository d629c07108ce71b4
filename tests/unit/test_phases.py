"""Phases that run alone against a shared run directory, and directories of separate jobs merged by copying."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from fake_docker import FakeDocker
from fake_engine import FakeEngine, planned_runner
from harness.cli import main
from harness.errors import EngineUnavailable
from harness.matrix import Matrix, parse_matrix
from harness.plan import plan_environments
from harness.rundir import RunDir
from harness.runstate import merge_environment, read_phase
from harness.workflow import execute

MATRIX = {
    "name": "phases",
    "environments": [
        {"python": "3.11", "tensorflow": "2.15.1"},
        {"python": "3.11", "tensorflow": "2.16.2", "keras": "3.3.3"},
    ],
    "models": ["dense"],
    "formats": ["h5", "keras"],
    "loaders": ["load_model"],
}
A, B = "py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3"


def _matrix() -> Matrix:
    return parse_matrix(MATRIX, path="m.yaml", sha256="0" * 64)


def _run(engine: FakeEngine, out: Path, phases: tuple[str, ...] = ("build", "save", "load", "report"),
         only: tuple[str, ...] = (), shared: bool = True) -> dict[str, Any] | None:
    matrix = _matrix()
    return execute(planned_runner(engine, matrix, RunDir.prepare(out, resume=False, shared=shared),
                                  envs=plan_environments(matrix, {}, only), run_id=f"job-{out.name}", phases=phases,
                                  owner={"org.harness.pid": "1"}))


def _steps(engine: FakeEngine) -> list[tuple[str, str]]:
    return [(s.command[3], json.loads(s.command[5])["env"]) for s in engine.runs]


def _comparable(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k != "seconds"} for c in report["cells"]]


def _assemble(into: Path, *parts: Path) -> Path:
    """What a CI does with artifacts: copy every job's directory into one."""
    for part in parts:
        shutil.copytree(part, into, dirs_exist_ok=True)
    return into


def test_build_phase_builds_and_starts_no_container(tmp_path: Path) -> None:
    engine = FakeEngine()
    assert _run(engine, tmp_path / "run", phases=("build",)) is None
    assert len(engine.builds) == 3 and engine.runs == []  # B builds FROM its TensorFlow image, built first
    record = read_phase(RunDir(tmp_path / "run"), A, "build")
    assert record is not None and record["status"] == "ok" and record["finished"]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert [e["status"] for e in run["environments"]] == ["ok", "ok"]


def test_save_on_a_fresh_machine_builds_its_image_itself(tmp_path: Path) -> None:
    engine = FakeEngine()
    _run(engine, tmp_path / "run", phases=("save",), only=(A,))
    assert len(engine.builds) == 1
    assert _steps(engine) == [("save", A)]
    record = read_phase(RunDir(tmp_path / "run"), A, "save")
    assert record is not None and record["build"]["built"] is True and record["containers_started"] == 1


def test_report_phase_alone_needs_no_engine(tmp_path: Path) -> None:
    class Unreachable(FakeEngine):
        def ping(self) -> None:
            raise EngineUnavailable("no engine")

    _run(FakeEngine(), tmp_path / "run", phases=("build", "save", "load"))
    report = _run(Unreachable(), tmp_path / "run", phases=("report",))
    assert report is not None and report["verdict"]["exit_code"] == 0
    assert (tmp_path / "run" / "report.html").is_file()


def test_fanned_out_jobs_merge_into_the_single_run_report(tmp_path: Path) -> None:
    single = _run(FakeEngine(), tmp_path / "single", shared=False)
    assert single is not None
    # Each job on its own machine (its own engine), writing its own copy of the run directory.
    for env in (A, B):
        _run(FakeEngine(), tmp_path / f"save-{env}", phases=("build", "save"), only=(env,))
    saves = [tmp_path / f"save-{env}" for env in (A, B)]
    for env in (A, B):
        _assemble(tmp_path / f"load-{env}", *saves)
        _run(FakeEngine(), tmp_path / f"load-{env}", phases=("load",), only=(env,))
    merged = _assemble(tmp_path / "merged", *saves, *(tmp_path / f"load-{env}" for env in (A, B)))
    report = _run(FakeEngine(), merged, phases=("report",))
    assert report is not None
    assert _comparable(report) == _comparable(single)
    assert report["summary"] == single["summary"] and report["verdict"] == single["verdict"]
    run = json.loads((merged / "run.json").read_text())
    assert run["status"] == "complete" and run["containers_started"] == 4
    assert [e["id"] for e in run["environments"]] == [A, B]
    assert set(run["environments"][1]["phases"]) == {"build", "save", "load"}


def test_report_command_merges_an_assembled_directory(tmp_path: Path) -> None:
    _run(FakeEngine(), tmp_path / "a", phases=("build", "save", "load"), only=(A,))
    _run(FakeEngine(), tmp_path / "b", phases=("build", "save"), only=(B,))
    merged = _assemble(tmp_path / "merged", tmp_path / "b", tmp_path / "a")  # a's run.json names only A
    assert main(["report", str(merged)]) == 1  # B never loaded: cells not reached
    report = json.loads((merged / "report.json").read_text())
    assert [e["id"] for e in report["environments"]] == [A, B]
    statuses = {(c["source"], c["target"]): c["status"] for c in report["cells"]}
    # A loaded before B's artifacts existed; B loaded nothing.
    assert statuses == {(A, A): "pass", (B, A): "skipped", (A, B): "skipped", (B, B): "skipped"}


def test_rerunning_a_phase_replaces_only_that_environments_records(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(FakeEngine(), out, shared=False)
    other = (out / "records" / f"load-{B}.jsonl").read_text()
    other_state = (out / "envs" / B / "load.json").read_text()
    engine = FakeEngine(drift=0.01)
    report = _run(engine, out, phases=("load", "report"), only=(A,))
    assert _steps(engine) == [("load", A)]
    assert (out / "records" / f"load-{B}.jsonl").read_text() == other
    assert (out / "envs" / B / "load.json").read_text() == other_state
    assert report is not None
    loaded_in = {c["target"]: c["status"] for c in report["cells"]}
    assert loaded_in == {A: "drift", B: "pass"}
    assert [e["id"] for e in report["environments"]] == [A, B]  # --only A still reports every environment there
    lines = (out / "records" / f"load-{A}.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 2 + 1  # replaced, not appended to


def test_an_unfinished_phase_marks_the_merged_run_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(FakeEngine(), out, phases=("build", "save", "load"))
    record = json.loads((out / "envs" / B / "load.json").read_text())
    (out / "envs" / B / "load.json").write_text(json.dumps({**record, "finished": None}))
    report = _run(FakeEngine(), out, phases=("report",))
    assert report is not None and report["verdict"]["exit_code"] == 1
    assert any("interrupted" in u for u in report["verdict"]["unexpected"])


def test_a_later_phase_that_built_the_image_supersedes_a_failed_build() -> None:
    failed = {"phase": "build", "started": "2026-01-01T00:00:00.000001+00:00", "status": "build_error",
              "error": "ERROR: timeout", "image": "harness-env:x", "image_id": None,
              "build": {"built": True, "seconds": 9.0}, "finished": "2026-01-01T00:00:09.000000+00:00"}
    saved = {"phase": "save", "started": "2026-01-01T01:00:00.000000+00:00", "status": "ok", "error": None,
             "image": "harness-env:x", "image_id": "sha256:1", "build": {"built": True, "seconds": 60.0},
             "container": {"exit_code": 0}, "containers_started": 1, "finished": "2026-01-01T01:02:00.000000+00:00"}
    entry = merge_environment({"id": "e", "spec": {}, "image": "harness-env:x"}, {"build": failed, "save": saved})
    assert (entry["status"], entry["error"], entry["image_id"]) == ("ok", None, "sha256:1")
    assert entry["build"] == failed["build"] and entry["save"] == {"exit_code": 0}
    assert entry["containers_started"] == 1
    assert merge_environment({"id": "e"}, {}) == {"id": "e"}


def test_containers_carry_the_owner_labels(tmp_path: Path) -> None:
    engine = FakeEngine()
    _run(engine, tmp_path / "run", phases=("build", "save"), only=(A,))
    assert engine.runs[0].labels["org.harness.pid"] == "1"


@pytest.mark.parametrize("argv", [["--phase", "save"], ["--phase", "report", "--phase", "load"]])
def test_phase_needs_out(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.yaml").write_text(json.dumps(MATRIX))
    assert main(["run", "m.yaml", *argv]) == 2
    assert "--phase needs --out" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]


def test_unknown_phase_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "m.yaml", "--phase", "compare"])
    assert info.value.code == 2
    assert "--phase" in capsys.readouterr().err


def test_resume_settles_a_record_whose_container_had_finished(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(FakeEngine(), out, shared=False)
    path = out / "envs" / A / "load.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "finished": None}))  # interrupted just after
    matrix = _matrix()
    engine = FakeEngine()
    report = execute(planned_runner(engine, matrix, RunDir.prepare(out, resume=True), run_id="resumed", resume=True))
    assert report is not None and report["verdict"]["exit_code"] == 0
    assert engine.runs == [] and json.loads(path.read_text())["finished"]


def test_a_phase_job_whose_image_fails_says_so_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_BASE_IMAGE", raising=False)  # the tag below assumes the matrix's base image
    failing = plan_environments(_matrix(), os.environ)[0].image.tag  # the CLI passes the host's PIP_* on
    engine = FakeDocker()
    engine.failing_tags = frozenset({failing})
    monkeypatch.setattr("harness.engine.DockerCLI", lambda: engine)
    (tmp_path / "m.yaml").write_text(json.dumps(MATRIX))
    out = tmp_path / "run"
    assert main(["run", str(tmp_path / "m.yaml"), "--out", str(out), "--phase", "save", "-q"]) == 1
    assert f"harness: {A}: image did not build" in capsys.readouterr().err
    assert _steps(engine) == [("save", B)]
    assert read_phase(RunDir(out), A, "save")["status"] == "build_error"  # type: ignore[index]


def test_rerendering_a_single_runs_directory_keeps_its_wall_times(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run(FakeEngine(), out, shared=False)
    before = json.loads((out / "run.json").read_text())
    assert main(["report", str(out)]) == 0
    after = json.loads((out / "run.json").read_text())
    assert after["timings"] == before["timings"] and after["status"] == "complete"
    assert after["environments"] == before["environments"]
