"""`harness diff OLD NEW`: what changed between two reports."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.errors import EXIT_FAILURES, EXIT_OK


def add_parser(sub: Any) -> None:
    """The `diff` subcommand's arguments."""
    diff = sub.add_parser("diff", help="what changed between two reports: new failures, fixed cells, figures")
    diff.add_argument("old", type=Path, help="the earlier report.json (or its run directory)")
    diff.add_argument("new", type=Path, help="the later report.json (or its run directory)")


def main(args: argparse.Namespace, engine: object) -> int:
    """Print what changed between two reports; exit 1 when a cell got worse."""
    from harness.report.diff import diff_reports, render_diff
    from harness.report.schema import load_report

    diff = diff_reports(load_report(args.old, "old report"), load_report(args.new, "new report"))
    print(render_diff(diff), end="")
    return EXIT_FAILURES if diff["regressions"] else EXIT_OK
