"""Regressions against a baseline, `harness diff`, and reading a report back."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fake_run import ENV_A, ENV_B, KERAS2_IN_KERAS3, FakeRun, cell
from harness.cli import main
from harness.errors import UsageError
from harness.matrix import Expectation
from harness.report.diff import categories, category, diff_reports, regressions, render_diff
from harness.report.schema import load_report
from harness.report.writers import write_reports
from harness.rundir import RunDir

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
ERROR = {"status": "error", "stage": "load", "error": {"type": "TypeError", "message": KERAS2_IN_KERAS3}}


def _cell(status: str, **fields: Any) -> dict[str, Any]:
    return {"source": "a", "target": "b", "model": "dense", "format": "h5", "loader": "load_model",
            "status": status, "max_abs_diff": None, "error": None, "expected": None, **fields}


def _report(*cells: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": 1, "tolerance": TOLERANCE, "cells": list(cells)}


def _kinds(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(r["kind"], r["old"], r["new"]) for r in regressions(_report(old), _report(new))]


# ---------------------------------------------------------------------------- regressions, pure


def test_a_cell_that_stops_passing_regresses() -> None:
    assert _kinds(_cell("pass"), _cell("error")) == [("stopped_passing", "pass", "error")]
    assert _kinds(_cell("pass"), _cell("skipped")) == [("stopped_passing", "pass", "skipped")]
    assert _kinds(_cell("pass"), _cell("pass")) == []
    assert _kinds(_cell("error"), _cell("pass")) == []  # fixed


def test_drift_regresses_only_when_it_grows_beyond_the_tolerance() -> None:
    old = _cell("drift", max_abs_diff=0.1)
    assert _kinds(old, _cell("drift", max_abs_diff=0.1 + 1e-6)) == []  # within atol + rtol * 0.1
    assert _kinds(old, _cell("drift", max_abs_diff=0.1 + 1e-4)) == [("drift_grown", 0.1, 0.1 + 1e-4)]
    assert _kinds(old, _cell("drift", max_abs_diff=0.05)) == []  # shrank
    assert _kinds(old, _cell("drift", max_abs_diff=None)) == [("drift_grown", 0.1, None)]  # NaN now
    assert _kinds(_cell("drift", max_abs_diff=None), _cell("drift", max_abs_diff=9.0)) == []  # nothing to compare


def test_a_new_error_type_regresses() -> None:
    old = _cell("error", error={"type": "TypeError"})
    assert _kinds(old, _cell("error", error={"type": "TypeError"})) == []
    assert _kinds(old, _cell("error", error={"type": "ValueError"})) == [("new_error_type", "TypeError", "ValueError")]
    crashed = _cell("crash", error={"type": "WorkerCrash"})
    assert _kinds(old, crashed) == [("new_error_type", "TypeError", "WorkerCrash")]
    assert _kinds(_cell("drift"), _cell("error", error={"type": "OSError"})) == [("new_error_type", "drift", "OSError")]
    assert _kinds(_cell("skipped"), _cell("error", error={"type": "OSError"})) == []  # never ran before


def test_expected_and_new_cells_never_regress() -> None:
    assert _kinds(_cell("pass"), _cell("error", expected=True)) == []
    assert regressions(_report(), _report(_cell("error"))) == []


def test_hazard_probes_never_regress_they_are_spurious() -> None:
    # A TF1 re-initialisation drifts by other numbers in every run: its point, never a regression.
    old = _cell("drift", max_abs_diff=0.53, route_status="hazard")
    for new in (_cell("drift", max_abs_diff=0.63, route_status="hazard"), _cell("error", route_status="hazard")):
        assert _kinds(old, new) == []
        assert category(old, new, TOLERANCE) == "spurious"
    assert category(old, dict(old), TOLERANCE) == "unchanged"


def test_a_change_within_the_measured_noise_is_spurious_and_beyond_it_regresses() -> None:
    old = _cell("drift", max_abs_diff=0.10, noise=0.05)
    assert category(old, _cell("drift", max_abs_diff=0.14, noise=0.04), TOLERANCE) == "spurious"
    assert category(old, _cell("drift", max_abs_diff=0.30, noise=0.04), TOLERANCE) == "regressed"
    assert category(old, _cell("drift", max_abs_diff=0.14), TOLERANCE) == "spurious"  # either run's noise counts
    assert category(_cell("drift", max_abs_diff=0.10), _cell("drift", max_abs_diff=0.14), TOLERANCE) == "regressed"
    # A cell whose repeated loads straddle the tolerance: passing in one run and drifting within the noise in the
    # next is noise too, either way.
    assert category(_cell("pass"), _cell("drift", max_abs_diff=2e-5, noise=3e-5), TOLERANCE) == "spurious"
    assert category(_cell("drift", max_abs_diff=2e-5, noise=3e-5), _cell("pass"), TOLERANCE) == "spurious"
    assert category(_cell("pass"), _cell("drift", max_abs_diff=0.2, noise=3e-5), TOLERANCE) == "regressed"


def test_every_cell_in_both_reports_falls_in_one_category() -> None:
    old = _report(_cell("pass"), _cell("error", loader="a"), _cell("error", loader="b"),
                  _cell("drift", loader="c", max_abs_diff=0.5, route_status="hazard"), _cell("pass", loader="d"))
    new = _report(_cell("error"), _cell("pass", loader="a"), _cell("error", loader="b"),
                  _cell("drift", loader="c", max_abs_diff=0.6, route_status="hazard"), _cell("pass", loader="d"))
    assert categories(old, new) == {"regressed": 1, "fixed": 1, "spurious": 1, "broken": 1, "unchanged": 1}
    diff = diff_reports(old, new)
    assert [s["loader"] for s in diff["spurious"]] == ["c"] and [f["loader"] for f in diff["fixed"]] == ["a"]
    assert "cells in both: 1 regressed, 1 fixed, 1 spurious, 1 broken, 1 unchanged" in render_diff(diff)


def test_regression_entries_carry_the_cell_identity() -> None:
    [entry] = regressions(_report(_cell("pass")), _report(_cell("crash")))
    assert entry == {"source": "a", "target": "b", "model": "dense", "format": "h5", "loader": "load_model",
                     "kind": "stopped_passing", "old": "pass", "new": "crash"}


# ---------------------------------------------------------------------------- diff, pure


def test_diff_lists_new_failures_fixed_cells_and_figures() -> None:
    old = _report(_cell("pass", max_abs_diff=0.0), _cell("error", format="keras", error={"type": "TypeError"}),
                  _cell("pass", loader="gone"))
    new = _report(_cell("drift", max_abs_diff=0.5), _cell("pass", format="keras"),
                  _cell("error", target="c", error={"type": "OSError"}))
    diff = diff_reports(old, new)
    assert [(f["format"], f["old"], f["new"]) for f in diff["new_failures"]] == [("h5", "pass", "drift"),
                                                                                 ("h5", None, "error")]
    assert [(f["format"], f["old"], f["new"]) for f in diff["fixed"]] == [("keras", "error", "pass")]
    assert diff["figures"] == [{"source": "a", "target": "b", "model": "dense", "format": "h5",
                                "loader": "load_model", "changes": {"max_abs_diff": [0.0, 0.5]}}]
    assert [r["kind"] for r in diff["regressions"]] == ["stopped_passing"]
    assert (diff["only_old"], diff["only_new"]) == (1, 1)
    text = render_diff(diff)
    assert "a -> b dense/h5/load_model: pass -> drift" in text
    assert "a -> c dense/h5/load_model: absent -> error (OSError)" in text
    assert "a -> b dense/keras/load_model: error -> pass" in text
    assert "max_abs_diff 0 -> 0.5" in text
    assert text.splitlines()[-1].startswith("1 cell(s) got worse; 1 cell(s) only in the old report, 1 only in the new")


def test_diff_of_a_report_with_itself_is_empty() -> None:
    report = _report(_cell("pass", max_abs_diff=0.0), _cell("drift", format="keras", max_abs_diff=0.2))
    diff = diff_reports(report, copy.deepcopy(report))
    assert (diff["new_failures"], diff["fixed"], diff["figures"], diff["regressions"]) == ([], [], [], [])
    assert render_diff(diff).splitlines()[-1].startswith("nothing got worse")


# ---------------------------------------------------------------------------- reading a report back


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "file not found"),
        ("{not json", "not JSON"),
        ('{"schema_version": 3, "cells": []}', "schema_version 1 or 2 (found 3)"),
        ("[1, 2]", "schema_version 1 or 2 (found None)"),
        ('{"schema_version": 1, "cells": [{"source": "a"}]}', "'cells' is not a list of cells"),
        ('{"schema_version": 1, "cells": []}', "'tolerance' is not a mapping"),
    ],
)
def test_unusable_reports_are_usage_errors(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as info:
        load_report(path, "baseline")
    assert str(info.value).startswith(f"baseline {path}: ")
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_a_run_directory_stands_for_its_report(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(_report(_cell("pass"))))
    assert load_report(tmp_path)["cells"][0]["status"] == "pass"


# ---------------------------------------------------------------------------- baselines on a run directory


@pytest.fixture
def old_report(tmp_path: Path) -> Path:
    """report.json of a run where every cell passed."""
    old = FakeRun(tmp_path / "old")
    write_reports(RunDir(old.root))
    return old.root / "report.json"


def _regressed_run(root: Path, *expect: Expectation) -> FakeRun:
    run = FakeRun(root, expect=expect)
    run.load_failed(ENV_A.id, ENV_B.id, "keras", **ERROR)
    return run


def _record_baseline(run: FakeRun, baseline: Path) -> None:
    """What `run --baseline` does when the run starts: the baseline goes into run.json."""
    run_dir = RunDir(run.root)
    run_dir.write_run({**run_dir.read_run(), "baseline": str(baseline.resolve())})


def test_baseline_regressions_fail_the_verdict_of_that_report_only(tmp_path: Path, old_report: Path) -> None:
    run = _regressed_run(tmp_path / "new")
    recorded = (run.root / "run.json").read_text()
    report = write_reports(RunDir(run.root), baseline=old_report)
    assert report["verdict"]["regressions"] == [
        {"source": ENV_A.id, "target": ENV_B.id, "model": "dense", "format": "keras", "loader": "load_model",
         "kind": "stopped_passing", "old": "pass", "new": "error"}]
    assert report["verdict"]["exit_code"] == 1
    assert "## Regressions against the baseline" in (run.root / "report.md").read_text()
    assert (run.root / "run.json").read_text() == recorded  # a report's own flags are never recorded
    assert write_reports(RunDir(run.root))["verdict"]["regressions"] == []  # the run recorded no baseline


def test_the_baseline_a_run_recorded_is_every_later_reports(tmp_path: Path, old_report: Path) -> None:
    run = _regressed_run(tmp_path / "new")
    _record_baseline(run, old_report)
    report = write_reports(RunDir(run.root))
    assert [r["kind"] for r in report["verdict"]["regressions"]] == ["stopped_passing"]
    assert write_reports(RunDir(run.root), baseline=tmp_path / "old")["verdict"]["regressions"] == report[
        "verdict"]["regressions"]  # the same report, named by its run directory, for this report only


def test_regressions_alone_make_exit_1(tmp_path: Path, old_report: Path) -> None:
    run = FakeRun(tmp_path / "new")
    run.load_failed(ENV_A.id, ENV_B.id, "keras", **ERROR)
    output = run.references[ENV_A.id].copy()
    run.load_ok(ENV_A.id, ENV_B.id, "keras", output)  # passes again: no regression
    assert write_reports(RunDir(run.root), baseline=old_report)["verdict"]["exit_code"] == 0
    baseline = json.loads(old_report.read_text())
    cell(baseline, ENV_A.id, ENV_B.id, "keras").update(status="drift", max_abs_diff=0.0)
    old_report.write_text(json.dumps(baseline))
    output[0, 0] += np.float32(0.5)
    run.load_ok(ENV_A.id, ENV_B.id, "keras", output)
    report = write_reports(RunDir(run.root), baseline=old_report)
    assert [r["kind"] for r in report["verdict"]["regressions"]] == ["drift_grown"]


def test_an_expected_failure_is_no_regression(tmp_path: Path, old_report: Path) -> None:
    run = _regressed_run(tmp_path / "new", Expectation(reason="known", format="keras"))
    report = write_reports(RunDir(run.root), baseline=old_report)
    assert report["verdict"]["regressions"] == []
    assert report["verdict"]["exit_code"] == 0


def test_a_recorded_baseline_that_vanished_is_a_usage_error(tmp_path: Path, old_report: Path) -> None:
    run = _regressed_run(tmp_path / "new")
    _record_baseline(run, old_report)
    old_report.unlink()
    with pytest.raises(UsageError, match=r"baseline \(recorded in run.json\) .*: file not found"):
        write_reports(RunDir(run.root))


# ---------------------------------------------------------------------------- the command line


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), err
    return lines[0]


def test_diff_command_exit_codes(tmp_path: Path, old_report: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(old_report), str(old_report)]) == 0
    assert "nothing got worse" in capsys.readouterr().out
    run = _regressed_run(tmp_path / "new")
    write_reports(RunDir(run.root))
    assert main(["diff", str(old_report), str(run.root)]) == 1
    out = capsys.readouterr().out
    assert f"{ENV_A.id} -> {ENV_B.id} dense/keras/load_model: stopped passing: pass -> error" in out
    assert main(["diff", str(old_report), str(tmp_path / "missing.json")]) == 2
    assert "new report" in _one_error_line(capsys.readouterr().err)


def test_report_with_a_bad_baseline_is_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = FakeRun(tmp_path / "run")
    assert main(["report", str(run.root), "--baseline", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: file not found" in _one_error_line(capsys.readouterr().err)
    assert not (run.root / "report.json").exists()
    assert "baseline" not in json.loads((run.root / "run.json").read_text())


def test_report_with_a_baseline_exits_1_on_a_regression(tmp_path: Path, old_report: Path) -> None:
    run = _regressed_run(tmp_path / "new", Expectation(reason="known", format="keras", status=("drift",)))
    assert main(["report", str(run.root), "--baseline", str(old_report)]) == 1


def test_run_with_a_bad_baseline_is_exit_2_before_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker: reaching the engine would be exit 3
    monkeypatch.chdir(tmp_path)
    matrix = Path(__file__).resolve().parents[2] / "matrices" / "smoke.yaml"
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 0}')
    assert main(["run", str(matrix), "--baseline", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "schema_version 1 or 2 (found 0)" in _one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]
