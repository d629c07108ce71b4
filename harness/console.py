"""What people see while a run goes on: one place for progress lines and the final grid.

rich renders the grid (colour on a terminal, plain text in CI, NO_COLOR respected);
progress is one line per step with the elapsed time, which reads well both on a
terminal and in a CI log, folded into groups under GitHub Actions.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console as RichConsole
from rich.table import Table

STYLES = {"pass": "green", "unsupported": "dim", "skipped": "dim", "drift": "yellow", "error": "red",
          "timeout": "magenta", "crash": "bold red"}


class Console:
    """Progress lines on stderr; the final grid on stdout."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.start = time.monotonic()
        self.github = os.environ.get("GITHUB_ACTIONS") == "true"
        self._lock = threading.Lock()

    def step(self, message: str) -> None:
        """One progress line, prefixed by the time since the run began."""
        if self.quiet:
            return
        with self._lock:
            print(f"[{time.monotonic() - self.start:7.1f}s] {message}", file=self.stream, flush=True)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        """A phase: folded under GitHub Actions, a heading line elsewhere."""
        if self.github:
            print(f"::group::{title}", file=self.stream, flush=True)
        else:
            self.step(f"== {title}")
        try:
            yield
        finally:
            if self.github:
                print("::endgroup::", file=self.stream, flush=True)

    def grid(self, report: dict[str, Any]) -> None:
        """The source x target grid of worst statuses, and the verdict line."""
        out = RichConsole(file=sys.stdout, no_color="NO_COLOR" in os.environ, highlight=False,
                          soft_wrap=False, width=max(100, 30 + 24 * len(report["environments"])))
        ids = [e["id"] for e in report["environments"]]
        table = Table(title="worst status per pair (rows saved in, columns loaded in)")
        table.add_column("saved in \\ loaded in")
        for i in ids:
            table.add_column(i, overflow="fold")
        for source in ids:
            row = []
            for target in ids:
                entry = report["summary"]["grid"][source][target]
                worst = entry["worst"] if entry else ""
                n = sum(entry["counts"].values()) if entry else 0
                row.append(f"[{STYLES.get(worst, '')}]{worst}[/] {entry['counts'].get(worst, 0)}/{n}" if entry else "")
            table.add_row(source, *row)
        out.print(table)
        counts = ", ".join(f"{n} {s}" for s, n in report["summary"]["counts"].items() if n)
        verdict = report["verdict"]
        out.print(f"{report['summary']['total']} cells: {counts}; exit {verdict['exit_code']}"
                  + (f" ({len(verdict['unexpected'])} unexpected)" if verdict["unexpected"] else ""))
