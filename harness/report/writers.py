"""Write every report format of a run directory from its records."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from harness.agent.protocol import PACKAGES, write_json_atomic, write_text_atomic
from harness.report.build import build_report
from harness.report.gate import DEFAULT_FAIL_ON, FAIL_ON
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.report.sarif import render_sarif
from harness.report.schema import dump, load_report
from harness.rundir import REPORT_FILES, RunDir

log = logging.getLogger(__name__)
FILES = REPORT_FILES  # --format name -> file in the run directory
CHECK_JSON = "check.json"  # a check run's answer


def _baseline(run: dict[str, Any], path: Path | None) -> dict[str, Any] | None:
    """The baseline report: `path` (for this report only), else the one the run recorded in run.json, else None."""
    if path is not None:
        return load_report(path, "baseline")
    recorded = run.get("baseline")
    return None if not recorded else load_report(Path(recorded), "baseline (recorded in run.json)")


def _fail_on(run: dict[str, Any], fail_on: str | None) -> str:
    """What the exit code fails on: `fail_on` (for this report only), else what the run recorded in run.json."""
    if fail_on is not None:
        return fail_on
    recorded = run.get("fail_on")
    return str(recorded) if recorded in FAIL_ON else DEFAULT_FAIL_ON


def _packages(run_dir: RunDir, report: dict[str, Any]) -> dict[str, str]:
    """envs/<env>/packages.txt (pip freeze) of every environment that has one."""
    found = {}
    for env in report["environments"]:
        text = run_dir.read_text(run_dir.env_dir(env["id"]) / PACKAGES)  # never through a link
        if text is not None:
            found[env["id"]] = text
    return found


def add_step_summary(report: dict[str, Any], markdown: str) -> None:
    """Add report.md to the GitHub Actions job summary ($GITHUB_STEP_SUMMARY), once per run.

    A report written again in the same step (a re-render, or a run with --baseline) replaces its
    earlier copy instead of adding a second one.
    """
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    key = report.get("run_id") or report["matrix"]["name"]
    begin, end = f"<!-- harness report {key} -->\n", f"<!-- /harness report {key} -->\n"
    try:
        summary = Path(path)
        before = summary.read_text(encoding="utf-8") if summary.is_file() else ""
        before = re.sub(re.escape(begin) + ".*?" + re.escape(end), "", before, flags=re.S)
        summary.write_text(before + begin + markdown.rstrip("\n") + "\n" + end, encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the job summary %s: %s", path, exc.strerror or exc)


def write_reports(run_dir: RunDir, baseline: Path | None = None, fail_on: str | None = None) -> dict[str, Any]:
    """Build report.json from the records (regressions against a baseline; the exit code by `fail_on`), render
    every other format from it, and add report.md to the GitHub Actions job summary when $GITHUB_STEP_SUMMARY
    names one. A baseline or fail_on given here applies to this report only: run.json keeps what the run was
    asked (`run --baseline/--fail-on`), which every report uses unless told otherwise."""
    run = run_dir.read_run()
    report = build_report(run_dir, _baseline(run, baseline), _fail_on(run, fail_on))
    write_text_atomic(run_dir.path / FILES["json"], dump(report))
    markdown = render_markdown(report)
    write_text_atomic(run_dir.path / FILES["md"], markdown)
    write_text_atomic(run_dir.path / FILES["html"], render_html(report, _packages(run_dir, report)))
    write_text_atomic(run_dir.path / FILES["junit"], render_junit(report))
    write_text_atomic(run_dir.path / FILES["sarif"], render_sarif(report))
    if report.get("check") is not None:
        write_check_json(run_dir, report)
    add_step_summary(report, markdown)
    return report


def write_check_json(run_dir: RunDir, report: dict[str, Any]) -> None:
    """check.json beside the reports: the check's answer from report.json, and what --migrate handed over."""
    from harness.advisor.answer import check_json

    handed = run_dir.read_run().get("handed")
    write_json_atomic(run_dir.path / CHECK_JSON, check_json(report, handed if isinstance(handed, list) else []),
                      strict=True)
