"""junit.xml parsed back: a testcase per cell that ran, skipped cells once per pair and reason, outcomes that match
the statuses, versions as properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fake_run import ENV_A, ENV_B, ENV_C, FakeRun, varied_run
from harness.cli import main
from harness.report.junit import classname, render_junit
from harness.report.summary import labels


@pytest.fixture
def report(tmp_path: Path) -> dict[str, Any]:
    result: dict[str, Any] = varied_run(tmp_path / "run").report()
    return result


def _pair(source: str, target: str) -> str:
    """The classname of a path: the environments' labels, as every view names them."""
    envs = [{"id": e} for e in (ENV_A.id, ENV_B.id, ENV_C.id)]
    names = labels({"environments": envs})
    return classname(names[source], names[target])


def _cases(root: ET.Element) -> list[ET.Element]:
    """The cells' testcases (the `harness` suite holds what fails the run without being a cell)."""
    return [c for s in root.findall("testsuite") if s.get("name") != "harness" for c in s.findall("testcase")]


def _outcome(case: ET.Element) -> str:
    children = [child.tag for child in case]
    assert len(children) <= 1
    return children[0] if children else "pass"


def test_a_testcase_per_cell_that_ran_and_one_per_pair_and_reason_for_skipped_cells(report: dict[str, Any]) -> None:
    root = ET.fromstring(render_junit(report))
    cases = _cases(root)
    by_id = {(c.get("classname"), c.get("name")): _outcome(c) for c in cases}
    assert len(by_id) == len(cases)
    # A cell counts against the run (a failure or an error) exactly when the gate names it: here the two routes
    # that break A -> B and A's keras at home, which never ran; every other cell that did not pass is skipped.
    failing = set(report["verdict"]["failing"])
    expected = Counter(
        ("failure" if c["status"] == "drift" else "error") if f"{c['source']} -> {c['target']} {c['model']}/"
        f"{c['format']}/{c['loader']}" in failing else "pass" if c["status"] == "pass" else "skipped"
        for c in report["cells"])
    assert expected == {"pass": 4, "failure": 1, "error": 2, "skipped": 11}
    ran = Counter(o for o in by_id.values() if o != "skipped")
    assert ran == {k: v for k, v in expected.items() if k != "skipped"}  # each cell that ran: a testcase
    # Skipped cells: one testcase per pair and reason, whose message counts its routes; they add up to every one.
    grouped = [c for c in cases if _outcome(c) == "skipped"]
    assert sum(int(str(c.find("skipped").get("message")).rsplit(": ", 1)[1].split()[0])  # type: ignore[union-attr]
               for c in grouped) == expected["skipped"]
    assert len(grouped) == len({(c.get("classname"), c.get("name")) for c in grouped}) < expected["skipped"]
    assert not any("." in str(c.get("classname")) for c in cases)  # Jenkins splits a classname at its last dot
    assert by_id[(_pair(ENV_A.id, ENV_B.id), "dense/h5/load_model")] == "failure"
    assert by_id[(_pair(ENV_A.id, ENV_B.id), "dense/keras/load_model")] == "error"
    assert by_id[(_pair(ENV_B.id, ENV_A.id), "expected crash: worker-native-crash")] == "skipped"


def test_counts_on_suites_and_root_add_up(report: dict[str, Any]) -> None:
    root = ET.fromstring(render_junit(report))
    suites = root.findall("testsuite")
    # One per target environment, then what fails the run without being a cell (here: an image that did not build).
    assert [s.get("name") for s in suites] == [ENV_A.id, ENV_B.id, ENV_C.id, "harness"]
    (reason,) = suites[-1].findall("testcase/error")
    assert reason.get("message") == f"{ENV_C.id}: build_error"
    for key, tag in (("tests", "testcase"), ("failures", "testcase/failure"), ("errors", "testcase/error"),
                     ("skipped", "testcase/skipped")):
        per_suite = [len(s.findall(tag)) for s in suites]
        assert [int(s.get(key, -1)) for s in suites] == per_suite
        assert int(root.get(key, -1)) == sum(per_suite)
    assert root.get("name") == "harness: fake"


def test_messages_say_what_happened(report: dict[str, Any]) -> None:
    root = ET.fromstring(render_junit(report))
    case = {(c.get("classname"), c.get("name")): c for c in _cases(root)}
    error = case[(_pair(ENV_A.id, ENV_B.id), "dense/keras/load_model")].find("error")
    assert error is not None and error.get("type") == "TypeError"
    assert error.get("message", "").startswith("TypeError: Could not deserialize class 'Functional'")
    assert "hint: " in (error.text or "") and "Traceback (most recent call last)" in (error.text or "")
    assert "\x00" not in (error.text or "") and "\ufffd" in (error.text or "")  # control characters replaced
    crash = case[(_pair(ENV_B.id, ENV_A.id), "expected crash: worker-native-crash")].find("skipped")
    assert crash is not None and crash.get("message") == "expected crash: worker-native-crash: 1 route(s)"
    drift = case[(_pair(ENV_A.id, ENV_B.id), "dense/h5/load_model")].find("failure")
    assert drift is not None and drift.get("type") == "drift" and "max abs diff" in drift.get("message", "")
    reason = f"skipped: target environment {ENV_C.id}: build_error"
    unbuilt = case[(_pair(ENV_A.id, ENV_C.id), reason)].find("skipped")
    assert unbuilt is not None and (unbuilt.get("message") or "").startswith(f"{reason}: ")


def test_versions_are_suite_properties(report: dict[str, Any]) -> None:
    root = ET.fromstring(render_junit(report))
    props = {s.get("name"): {p.get("name"): p.get("value") for p in s.findall("properties/property")}
             for s in root.findall("testsuite")}
    assert props[ENV_B.id]["tensorflow"] == "2.16.2"
    assert props[ENV_B.id]["keras"] == "3.3.3" and props[ENV_B.id]["keras_major"] == "3"
    assert props[ENV_B.id]["image_id"] == "sha256:" + "0" * 64
    assert props[ENV_C.id]["status"] == "build_error"
    assert props[ENV_C.id]["error"].startswith("ERROR: No matching distribution")


def test_output_is_deterministic(report: dict[str, Any]) -> None:
    assert render_junit(report) == render_junit(report)
    assert render_junit(report).startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')


def test_write_reports_writes_junit_xml_and_report_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = FakeRun(tmp_path / "run")
    assert main(["report", str(run.root), "--format", "junit"]) == 0
    on_disk = (run.root / "junit.xml").read_text(encoding="utf-8")
    assert capsys.readouterr().out == on_disk
    assert len(_cases(ET.fromstring(on_disk))) == len(run.report()["cells"])


def test_failures_and_errors_are_zero_exactly_when_the_exit_code_is(tmp_path: Path) -> None:
    run = FakeRun(tmp_path / "run")
    for fail_on in ("breaks", "unexpected", "regressions"):
        report = run.report(fail_on=fail_on)
        root = ET.fromstring(render_junit(report))
        assert (int(root.get("failures", -1)) + int(root.get("errors", -1)) == 0) == (report["verdict"]["exit_code"]
                                                                                     == 0)
    run.load_failed(ENV_A.id, ENV_B.id, "keras", status="error", stage="load",
                    error={"type": "TypeError", "message": "Could not deserialize class 'Functional'"})
    for fail_on, failing in (("breaks", 1), ("unexpected", 1), ("regressions", 0)):
        report = run.report(fail_on=fail_on)
        root = ET.fromstring(render_junit(report))
        assert int(root.get("failures", -1)) + int(root.get("errors", -1)) == failing == report["verdict"]["exit_code"]


def test_skipped_cells_carry_one_line_and_no_traceback(report: dict[str, Any]) -> None:
    root = ET.fromstring(render_junit(report))
    for skipped in root.iter("skipped"):
        assert skipped.text is None and "\n" not in (skipped.get("message") or "")


def test_a_route_that_never_works_at_home_is_skipped_with_the_reason(tmp_path: Path) -> None:
    run = FakeRun(tmp_path / "run")
    for target in (ENV_A.id, ENV_B.id):  # fails at home and in the other environment: not the upgrade's doing
        run.load_failed(ENV_A.id, target, "keras", status="error", stage="load",
                        error={"type": "ValueError", "message": "safe_mode refused a Lambda layer"})
    root = ET.fromstring(render_junit(run.report()))
    case = next(c for c in _cases(root) if c.get("classname") == _pair(ENV_A.id, ENV_B.id)
                and str(c.get("name")).startswith("never works: "))
    (skipped,) = list(case)
    assert skipped.tag == "skipped" and (skipped.get("message") or "").endswith(": 1 route(s)")


def test_formats_a_source_cannot_write_are_one_skipped_testcase_per_pair(report: dict[str, Any]) -> None:
    for cell in report["cells"]:
        if cell["format"] == "keras" and cell["source"] == ENV_B.id:
            cell.update(status="unsupported", stage="save", reason=f"{ENV_B.id} cannot write keras", error=None)
    root = ET.fromstring(render_junit(report))
    unwritten = [c for c in root.iter("testcase") if c.get("name") == "formats the source cannot write"]
    assert [c.get("classname") for c in unwritten] == [_pair(ENV_B.id, t) for t in (ENV_A.id, ENV_B.id, ENV_C.id)]
    assert {c.find("skipped").get("message") for c in unwritten} == {"unsupported: 1 route(s) of keras"}  # type: ignore[union-attr]
