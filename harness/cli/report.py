"""`harness report RUN_DIR`: rebuild every report of a run directory from its records; no engine needed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.options import add_fail_on
from harness.rundir import RunDir


def add_parser(sub: Any) -> None:
    """The `report` subcommand's arguments."""
    report = sub.add_parser("report", help="re-render the reports of a run directory from its records, print the "
                                           "summary and exit with the run's code")
    report.add_argument("run_dir", type=Path, help="a run directory (holding run.json)")
    report.add_argument("--format", choices=("json", "md", "html", "junit", "sarif"),
                        help="print this format to stdout instead of the summary")
    report.add_argument("--baseline", type=Path, metavar="REPORT",
                        help="an earlier report.json (or its run directory), for this report only; default: the "
                             "one the run recorded in run.json")
    add_fail_on(report)
    report.add_argument("--suggest-expect", action="store_true",
                        help="print one `expect:` entry per cause that fails the run, to paste into the matrix")


def main(args: argparse.Namespace, engine: object) -> int:
    """Rebuild every report format from the stored records; print the summary (or a format, or expectations)."""
    from harness.console import Console
    from harness.report.expect import render_suggestions
    from harness.report.writers import FILES, write_reports

    run_dir = RunDir.open_existing(args.run_dir)
    _merge_phase_records(run_dir)
    report = write_reports(run_dir, baseline=args.baseline, fail_on=args.fail_on)
    if args.suggest_expect:
        print(render_suggestions(report), end="")
    elif args.format:
        print((run_dir.path / FILES[args.format]).read_text(encoding="utf-8"), end="")
    elif report.get("check") is not None:  # a check's run directory: its own answer, as check printed it
        from harness.advisor.screens import check_screen

        print(check_screen(report, run_dir.path), end="")
    else:
        Console().summary(report)
    return int(report["verdict"]["exit_code"])


def _merge_phase_records(run_dir: RunDir) -> None:
    """Rebuild run.json from the phase records (envs/<env>/<phase>.json) of every job that wrote into run_dir."""
    from harness.runstate import has_phase_records, merged_run

    if not has_phase_records(run_dir):
        return  # a run directory from before phase records: run.json is the record
    run = run_dir.read_run()
    matrix = run_dir.matrix()
    selected = {e["id"]: e.get("image") for e in run.get("environments", []) if isinstance(e, dict) and "id" in e}
    run_dir.write_run(merged_run(run_dir, matrix, selected, run_id=str(run.get("run_id") or "report")))
