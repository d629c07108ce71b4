"""`harness site RUN_DIR... --out DIR`: the compatibility site of one matrix's runs (harness/site/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """The `site` subcommand's arguments."""
    site = sub.add_parser("site", help="a static compatibility site (a table per format, a page and a badge per "
                                       "path, history) from one matrix's runs")
    site.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                      help="run directories (or their report.json) of one matrix; the newest is the table, all of "
                           "them its history")
    site.add_argument("--out", type=Path, required=True, help="the folder to write the site into")


def main(args: argparse.Namespace, engine: object) -> int:
    """Build the site; no Docker needed."""
    from harness.site.build import load_runs
    from harness.site.render import write_site

    data = write_site(load_runs(args.runs), args.out)
    print(f"harness: site of {data['matrix']['name']} ({data['runs']} run(s), {len(data['pages'])} path page(s)) in "
          f"{args.out}", file=sys.stderr)
    return 0
