"""Write every report format of a run directory from its records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report.build import build_report
from harness.report.markdown import render_markdown
from harness.report.schema import load_report
from harness.rundir import RunDir, write_json_atomic


def _baseline(run_dir: RunDir, path: Path | None) -> dict[str, Any] | None:
    """The baseline report: `path` (then recorded in run.json), else the one run.json names, else None."""
    run = run_dir.read_run()
    if path is None:
        recorded = run.get("baseline")
        return None if not recorded else load_report(Path(recorded), "baseline (recorded in run.json)")
    baseline = load_report(path, "baseline")
    if run.get("baseline") != str(path.resolve()):
        run_dir.write_run({**run, "baseline": str(path.resolve())})
    return baseline


def write_reports(run_dir: RunDir, baseline: Path | None = None) -> dict[str, Any]:
    """Build report.json from the records (regressions against a baseline) and render report.md from it."""
    report = build_report(run_dir, _baseline(run_dir, baseline))
    write_json_atomic(run_dir.path / "report.json", report)
    md = run_dir.path / "report.md"
    tmp = md.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(report), encoding="utf-8")
    tmp.replace(md)
    return report
