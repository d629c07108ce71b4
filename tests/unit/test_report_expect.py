"""Expectations applied to a report: which cells they cover, the verdict, and stale entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fake_run import ENV_A, ENV_B, KERAS2_IN_KERAS3, FakeRun, cell
from harness.matrix import Expectation
from harness.report.expect import covers, env_matches
from harness.report.markdown import render_markdown

KERAS3 = (("keras_major", "3"),)
ERROR = {"status": "error", "stage": "load", "error": {"type": "TypeError", "message": KERAS2_IN_KERAS3}}


def _broken_run(root: Path, *expect: Expectation) -> FakeRun:
    """ENV_A's .keras file fails to load in ENV_B (Keras 3); everything else passes."""
    run = FakeRun(root, expect=expect)
    run.load_failed(ENV_A.id, ENV_B.id, "keras", **ERROR)
    return run


def test_covered_failure_is_expected_and_the_verdict_passes(tmp_path: Path) -> None:
    reason = "a Keras 2 .keras file does not load in Keras 3"
    run = _broken_run(tmp_path, Expectation(reason=reason, target=KERAS3, format="keras", status=("error",)))
    report = run.report()
    broken = cell(report, ENV_A.id, ENV_B.id, "keras")
    assert (broken["status"], broken["expected"], broken["expectation"]) == ("error", True, reason)
    assert cell(report, ENV_A.id, ENV_B.id, "h5")["expected"] is None  # pass
    assert report["verdict"]["unexpected"] == []
    assert report["verdict"]["unused_expectations"] == []
    assert report["verdict"]["exit_code"] == 0
    expected_line = next(line for line in render_markdown(report).splitlines() if "— expected:" in line)
    assert "**error** (breaks)" in expected_line and expected_line.endswith(f"— expected: {reason}")
    assert "**exit 0: nothing new breaks**" in render_markdown(report)


def test_an_expectation_for_another_status_does_not_cover(tmp_path: Path) -> None:
    run = _broken_run(tmp_path, Expectation(reason="only drift", target=KERAS3, status=("drift",)))
    report = run.report()
    assert cell(report, ENV_A.id, ENV_B.id, "keras")["expected"] is False
    assert report["verdict"]["unexpected"] == [f"{ENV_A.id} -> {ENV_B.id}: 1 route(s) break (keras2-module-move)"]
    assert report["verdict"]["unused_expectations"] == [{"index": 0, "reason": "only drift"}]
    assert report["verdict"]["exit_code"] == 1


def test_uncovered_failure_is_false_and_passes_are_null(tmp_path: Path) -> None:
    report = _broken_run(tmp_path).report()
    flags = {(c["source"], c["target"], c["format"]): c["expected"] for c in report["cells"]}
    assert flags.pop((ENV_A.id, ENV_B.id, "keras")) is False
    assert set(flags.values()) == {None}


def test_stale_expectation_is_listed_but_does_not_fail(tmp_path: Path) -> None:
    run = FakeRun(tmp_path, expect=(Expectation(reason="old bug", source=(("id", "py3.9-*"),)),))
    report = run.report()
    assert report["verdict"]["unused_expectations"] == [{"index": 0, "reason": "old bug"}]
    assert report["verdict"]["exit_code"] == 0
    assert "`expect[0]`: old bug" in render_markdown(report)


def test_the_first_covering_expectation_is_recorded(tmp_path: Path) -> None:
    run = _broken_run(tmp_path, Expectation(reason="first", format="k*"), Expectation(reason="second"))
    report = run.report()
    assert cell(report, ENV_A.id, ENV_B.id, "keras")["expectation"] == "first"
    assert report["verdict"]["unused_expectations"] == [{"index": 1, "reason": "second"}]


def test_cells_never_checked_can_be_expected(tmp_path: Path) -> None:
    run = FakeRun(tmp_path, expect=(Expectation(reason="flaky load container", target=(("id", ENV_B.id),),
                                                status=("skipped",)),))
    run.drop_records(ENV_B.id, ENV_A.id, "h5")
    report = run.report()
    skipped = cell(report, ENV_A.id, ENV_B.id, "h5")
    assert (skipped["status"], skipped["expected"]) == ("skipped", True)
    assert report["verdict"]["exit_code"] == 0


def test_env_selector_fields() -> None:
    env: dict[str, Any] = {"id": "py3.9-tf2.12.1", "python": "3.9.2", "tensorflow": "2.12.1", "keras": "2.12.0",
                           "keras_major": 2, "keras_package": "keras"}
    assert env_matches((), env)
    assert env_matches((("python", "3.9"),), env)  # a version prefix
    assert not env_matches((("python", "3.1"),), env)  # ... on whole components only
    assert env_matches((("keras_major", "2"), ("tensorflow", "2.12.*")), env)
    assert not env_matches((("keras_major", "3"), ("tensorflow", "2.12.*")), env)  # every pair must match
    assert env_matches((("id", "py3.9-*"),), env)
    assert not env_matches((("keras_major", "2"),), {**env, "keras_major": None})  # e.g. a failed build


def test_covers_checks_every_selector() -> None:
    envs = {"a": {"id": "a"}, "b": {"id": "b"}}
    c = {"source": "a", "target": "b", "model": "dense", "format": "h5", "loader": "load_model", "status": "drift"}
    assert covers(Expectation(reason="r"), c, envs)  # any failing status by default
    assert not covers(Expectation(reason="r"), {**c, "status": "pass"}, envs)
    assert not covers(Expectation(reason="r"), {**c, "status": "skipped"}, envs)  # only when named
    assert covers(Expectation(reason="r", status=("skipped",)), {**c, "status": "skipped"}, envs)
    assert not covers(Expectation(reason="r", source=(("id", "b"),)), c, envs)
    assert not covers(Expectation(reason="r", loader="rebuild*"), c, envs)
    assert covers(Expectation(reason="r", model="d*", format="h5", loader="load_model"), c, envs)


def test_an_expectation_can_name_a_cause(tmp_path: Path) -> None:
    run = _broken_run(tmp_path, Expectation(reason="Keras 2 files in Keras 3", cause="keras2-*"),
                      Expectation(reason="another cause", cause="lambda-bytecode"))
    report = run.report()
    broken = cell(report, ENV_A.id, ENV_B.id, "keras")
    assert (broken["cause"], broken["expected"]) == ("keras2-module-move", True)
    assert report["verdict"]["unused_expectations"] == [{"index": 1, "reason": "another cause"}]


def test_suggested_expectations_cover_exactly_what_fails_and_use_environment_fields(tmp_path: Path) -> None:
    from harness.report.expect import suggest

    run = _broken_run(tmp_path)
    report = run.report()
    assert suggest(report) == [{"cause": "keras2-module-move", "source": {"keras_major": 2},
                                "target": {"keras_major": 3}, "reason": cell(report, ENV_A.id, ENV_B.id,
                                                                              "keras")["error"]["hint"]}]
    entry = suggest(report)[0]
    # Pasted into the matrix, it covers the cell and the run passes.
    covered = FakeRun(tmp_path / "again", expect=(Expectation(
        reason=entry["reason"], cause=entry["cause"], source=(("keras_major", "2"),), target=(("keras_major", "3"),)),))
    covered.load_failed(ENV_A.id, ENV_B.id, "keras", **ERROR)
    again = covered.report()
    assert again["verdict"]["exit_code"] == 0 and suggest(again) == []


def test_suggestions_fall_back_to_ids_when_no_field_selects_the_same_environments() -> None:
    from harness.report.expect import selector_for

    envs = [{"id": "a", "keras_major": 2, "python": "3.11.2"}, {"id": "b", "keras_major": 2, "python": "3.11.2"},
            {"id": "c", "keras_major": 3, "python": "3.13.1"}]
    assert selector_for({"c"}, envs) == [{"keras_major": "3"}]
    assert selector_for({"a", "b"}, envs) == [{"keras_major": "2"}]
    assert selector_for({"a"}, envs) == [{"id": "a"}]
    assert selector_for({"a", "b", "c"}, envs) == [{}]
