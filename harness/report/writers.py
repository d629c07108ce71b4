"""Write every report format of a run directory from its records."""

from __future__ import annotations

from typing import Any

from harness.report.build import build_report
from harness.report.markdown import render_markdown
from harness.rundir import RunDir, write_json_atomic


def write_reports(run_dir: RunDir) -> dict[str, Any]:
    """Build report.json from the records and render report.md from it."""
    report = build_report(run_dir)
    write_json_atomic(run_dir.path / "report.json", report)
    md = run_dir.path / "report.md"
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(report), encoding="utf-8")
    tmp.replace(md)
    return report
