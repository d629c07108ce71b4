"""What people see while a run goes on: one place for progress and the final grid.

On a terminal (stderr is a TTY and CI is not set) each phase shows a live progress bar with
counts, and step lines scroll above it. Elsewhere progress is one plain line per step with the
elapsed time, which reads well in a CI log, folded into groups under GitHub Actions. rich renders
the bar and the grid; NO_COLOR is respected.
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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from harness.report import summary

WIDTH = 100  # the summary fits 100 columns for five environments
PATH_ITEM = 47  # two upgrade paths per line


def _no_color() -> bool:
    return "NO_COLOR" in os.environ


class Phase:
    """Counts the finished units of one phase (build, save, load); shown as a bar on a terminal."""

    def __init__(self, lock: threading.Lock, progress: Progress | None = None, task: TaskID | None = None) -> None:
        self.done = 0
        self._lock = lock
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        """`n` more units finished (thread-safe)."""
        with self._lock:
            self.done += n
            if self._progress is not None and self._task is not None:
                self._progress.advance(self._task, n)


class Console:
    """Progress on stderr; the final grid on stdout."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.start = time.monotonic()
        self.github = os.environ.get("GITHUB_ACTIONS") == "true"
        # A live bar only where a person watches a terminal; CI logs get plain lines.
        self.live = (self.stream.isatty() and not os.environ.get("CI")) if live is None else live
        self._lock = threading.Lock()
        self._progress: Progress | None = None

    def _line(self, text: str) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                print(text, file=self.stream, flush=True)

    def step(self, message: str) -> None:
        """One progress line, prefixed by the time since the run began."""
        if not self.quiet:
            self._line(f"[{time.monotonic() - self.start:7.1f}s] {message}")

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        """A phase: folded under GitHub Actions, a heading line elsewhere."""
        if self.github and not self.quiet:
            self._line(f"::group::{title}")
        else:
            self.step(f"== {title}")
        try:
            yield
        finally:
            if self.github and not self.quiet:
                self._line("::endgroup::")

    @contextmanager
    def phase(self, name: str, total: int, unit: str = "environment") -> Iterator[Phase]:
        """A phase of `total` units: a live bar on a terminal, else a group and a closing count line.

        Call `advance()` on what it yields as each unit finishes.
        """
        title = f"{name}: {total} {unit}(s)"
        if self.quiet or not self.live:
            with self.group(title):
                phase = Phase(self._lock)
                yield phase
                self.step(f"{name}: {phase.done}/{total} done")
            return
        out = RichConsole(file=self.stream, force_terminal=True, no_color=_no_color(), highlight=False)
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=out)
        with progress:
            task = progress.add_task(title, total=total)
            self._progress = progress
            try:
                yield Phase(self._lock, progress, task)
            finally:
                with self._lock:
                    self._progress = None

    def summary(self, report: dict[str, Any], width: int = WIDTH) -> None:
        """The answers on stdout: each upgrade path's verdict and top cause, the causes, what works."""
        out = RichConsole(file=sys.stdout, no_color=_no_color(), highlight=False, soft_wrap=False, width=width)
        for line in summary_lines(report, width):
            out.print(line, markup=False)


def summary_lines(report: dict[str, Any], width: int = WIDTH) -> list[str]:
    """The terminal summary: paths first (two per line), then causes, what works, home and hazards."""
    names = summary.labels(report)
    items = [summary.cut(summary.path_words(p, names), PATH_ITEM) for p in summary.upgrade_paths(report)]
    lines = [summary.cut(summary.headline(report), width), *summary.legend(report, width),
             *summary.grid_rows(items, width)]
    causes = [c for c in report["causes"] if c["breaks"]]
    if causes:
        lines.append("causes of routes that break (worst first):")
        lines += [summary.cut(f" {c['name']}: {summary.cause_words(c)}: {c.get('fix') or c.get('message')}", width)
                  for c in causes]
    partial = [p for p in summary.upgrade_paths(report) if p["verdict"] in ("partial", "broken")]
    if partial:
        lines.append("what still works:")
        lines += [summary.cut(f" {names[p['source']]}→{names[p['target']]}: {summary.works_words(p)}", width)
                  for p in partial]
    home = summary.at_home(report, names)
    if home:
        lines.append("at home (never counted against an upgrade):")
        lines += [summary.cut(" " + line, width) for line in home]
    for hazard in report.get("hazards", []):
        lines.append(summary.cut("hazard: " + summary.hazard_words(hazard, names), width))
    lines.append(_verdict_line(report))
    return lines


def _verdict_line(report: dict[str, Any]) -> str:
    """'8 cells: 5 pass, 3 error (3 expected); exit 0; 1 expectation matched no cell'."""
    verdict = report["verdict"]
    counts = ", ".join(f"{n} {s}" for s, n in report["summary"]["counts"].items() if n)
    expected = sum(1 for c in report["cells"] if c["expected"])
    broken = [f"{len(verdict[key])} {label}" for key, label in (("unexpected", "unexpected"),
                                                                ("regressions", "regression(s)")) if verdict[key]]
    unused = len(verdict.get("unused_expectations", []))
    return (f"{report['summary']['total']} cells: {counts}" + (f" ({expected} expected)" if expected else "")
            + f"; exit {verdict['exit_code']}" + (f" ({', '.join(broken)})" if broken else "")
            + (f"; {unused} expectation(s) matched no cell" if unused else ""))
