"""write_reports: every format from the records alone, re-rendered identically; the GitHub job summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fake_run import FakeRun, varied_run
from harness.cli import main
from harness.report.markdown import render_markdown
from harness.report.schema import load_report
from harness.report.writers import FILES, write_reports
from harness.rundir import RunDir


def test_every_format_is_written(tmp_path: Path) -> None:
    run = varied_run(tmp_path / "run")
    report = write_reports(RunDir(run.root))
    assert sorted(p.name for p in run.root.iterdir() if p.is_file()) == sorted([*FILES.values(), "run.json"])
    assert load_report(run.root / "report.json")["cells"] == report["cells"]
    suites = ET.parse(run.root / "junit.xml").getroot().findall("./testsuite")
    cases = [c for s in suites if s.get("name") != "harness" for c in s.findall("testcase")]
    ran = [c for c in cases if c.find("skipped") is None]
    skipped = sum(int(str(c.find("skipped").get("message")).rsplit(": ", 1)[1].split()[0])  # type: ignore[union-attr]
                  for c in cases if c.find("skipped") is not None)
    assert len(ran) + skipped == len(report["cells"])  # every cell: its own testcase, or counted in its reason's
    assert (run.root / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert not list(run.root.glob(".*.tmp"))


def test_report_command_rebuilds_every_format_from_the_records_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = varied_run(tmp_path / "run")
    own = write_reports(RunDir(run.root))  # what the run itself wrote at its end
    written = {name: (run.root / name).read_bytes() for name in FILES.values()}
    for name in FILES.values():
        (run.root / name).unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no docker to reach
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    assert main(["report", str(run.root)]) == own["verdict"]["exit_code"] == 1
    assert load_report(run.root / "report.json")["cells"] == own["cells"]
    assert {name: (run.root / name).read_bytes() for name in FILES.values()} == written
    assert capsys.readouterr().out.startswith("fake: ")  # the same summary as `run` prints


def test_job_summary_gets_report_md_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("## an earlier step's own summary\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run = varied_run(tmp_path / "run")
    report = write_reports(RunDir(run.root))
    write_reports(RunDir(run.root))  # written again in the same step: replaced, not repeated
    text = summary.read_text()
    assert text.startswith("## an earlier step's own summary\n<!-- harness report abc123 -->\n")
    assert text.count("# Compatibility report: fake") == 1
    assert render_markdown(report).rstrip("\n") in text
    assert text.endswith("<!-- /harness report abc123 -->\n")


def test_no_job_summary_without_the_variable(tmp_path: Path) -> None:
    run = varied_run(tmp_path / "run")
    write_reports(RunDir(run.root))
    assert not list(tmp_path.glob("*.md"))


def test_an_unwritable_job_summary_is_only_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing-dir" / "summary.md"))
    run = varied_run(tmp_path / "run")
    assert write_reports(RunDir(run.root))["verdict"]["exit_code"] == 1
    assert "cannot write the job summary" in caplog.text


@pytest.mark.parametrize("fail_on", ["breaks", "unexpected", "regressions"])
def test_every_surface_of_a_run_gives_one_answer(tmp_path: Path, fail_on: str) -> None:
    from surfaces import assert_one_answer

    for run in (FakeRun(tmp_path / "clean"), varied_run(tmp_path / "varied")):
        assert main(["report", str(run.root), "--fail-on", fail_on]) in (0, 1)
        assert_one_answer(run.root)
