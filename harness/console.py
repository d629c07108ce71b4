"""What people see while a run goes on: one place for progress and the final grid.

On a terminal (stderr is a TTY and CI is not set) each phase shows a live progress bar with
counts, and step lines scroll above it. Elsewhere progress is one plain line per step with the
elapsed time, which reads well in a CI log, folded into groups under GitHub Actions. rich renders
the bar and the grid; NO_COLOR is respected.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console as RichConsole
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from harness.report import summary

WIDTH = 100  # the summary is at most this wide, or the terminal's width when narrower
MAX_LINES = 25  # the summary's lines, whatever the number of environments


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

    def summary(self, report: dict[str, Any], width: int | None = None) -> None:
        """The answers on stdout: each upgrade path's verdict and what works, the causes, the exit code last."""
        width = width or terminal_width()
        out = RichConsole(file=sys.stdout, no_color=_no_color(), highlight=False, soft_wrap=True, width=width)
        for line in summary_lines(report, width):
            text = Text(line)
            for verdict, style in summary.VERDICT_STYLES.items():
                text.highlight_regex(rf"(?<= ){verdict}(?= )", style)
            text.highlight_regex(r"^exit 0\b.*", "green")
            text.highlight_regex(r"^exit [1-9]\d*\b.*", "bold red")
            out.print(text)


MAX_RELEASE_LINES = 4  # what is new since the baseline, before the paths; report.md lists every route


def terminal_width() -> int:
    """The terminal's width ($COLUMNS where set), at most WIDTH and at least 60 columns."""
    return max(60, min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns))


def summary_lines(report: dict[str, Any], width: int = WIDTH) -> list[str]:
    """The terminal summary, at most MAX_LINES lines whatever the number of environments: one line per upgrade
    path (its verdict and, in words, what works), the causes by name and count, the hazards, the exit code last."""
    names = summary.labels(report)
    ups, downs = summary.split_paths(report)
    total = report["summary"]["total"]
    lines = [f"{report['matrix']['name']}: {len(report['environments'])} environment(s), {total} cell(s)",
             *(f"new since the baseline: {line}" for line in summary.release_lines(report)[:MAX_RELEASE_LINES]),
             f"upgrade paths ({len(ups)}" + (f"; downgrades: {_tally(downs)}, in report.md" if downs else "") + "):"]
    tail = _causes_lines(report, width) + _hazard_lines(report, width) + _verdict_lines(report, width)
    room = MAX_LINES - len(lines) - len(tail)
    column = max((len(f"{names[p['source']]} → {names[p['target']]}") for p in ups), default=0)
    ordered = sorted(ups, key=lambda p: summary.VERDICT_RANK.get(p["verdict"], 9))
    shown = 0
    for path in ordered:
        block = _path_lines(path, names, column, width)
        if len(block) > room - (1 if shown < len(ordered) - 1 else 0):
            break
        lines += block
        room -= len(block)
        shown += 1
    if shown < len(ordered):
        rest = ordered[shown:]
        lines.append(f"  ... and {len(rest)} more ({_tally(rest)}) in report.md")
    return lines + tail


def _tally(paths: list[dict[str, Any]]) -> str:
    """'8 safe, 2 partial'."""
    return ", ".join(f"{sum(1 for p in paths if p['verdict'] == v)} {v}" for v in summary.VERDICT_WORDS
                     if any(p["verdict"] == v for p in paths))


def _path_lines(path: dict[str, Any], names: dict[str, str], column: int, width: int) -> list[str]:
    route = f"{names[path['source']]} → {names[path['target']]}"
    head = f"  {route:<{column}}  {path['verdict']:<8} "
    items = summary.formats_items(path) if path["verdict"] != "untested" else ["not tested (see the report)"]
    room = max(30, width - len(head))
    body = summary.wrap(" · ".join(items), room)
    for kept in range(len(items) - 1, 0, -1):  # two lines at most: whole items, the most pressing first
        if len(body) <= 2:
            break
        body = summary.wrap(" · ".join(items[:kept]) + " · … (report.md)", room)
    return [head + body[0], *(" " * len(head) + line for line in body[1:])]


def _causes_lines(report: dict[str, Any], width: int) -> list[str]:
    """'causes: keras2-file-in-keras3 (312), safe-mode (6): fixes in report.md', at most two lines."""
    causes = [c for c in report["causes"] if c["breaks"]]
    if not causes:
        return []
    text = "causes of what breaks: " + ", ".join(f"{c['name']} ({c['breaks']})" for c in causes) + \
        " (their fixes: report.md)"
    lines = summary.wrap(text, width, indent="  ")
    return lines if len(lines) <= 2 else [lines[0], lines[1].rstrip(",") + " ..."]


def _hazard_lines(report: dict[str, Any], width: int) -> list[str]:
    hazards = [h["model"] for h in report.get("hazards", []) if any(e["shows"] for e in h["environments"].values())]
    if not hazards:
        return []
    return summary.wrap("hazards shown at home (never counted against an upgrade): " + ", ".join(hazards), width,
                        indent="  ")[:2]


def _verdict_lines(report: dict[str, Any], width: int) -> list[str]:
    """The cells in counts, then the exit code and what decided it, last."""
    verdict = report["verdict"]
    counts = ", ".join(f"{n} {s}" for s, n in report["summary"]["counts"].items() if n)
    expected = sum(1 for c in report["cells"] if c["expected"])
    unused = len(verdict.get("unused_expectations", []))
    spurious = len(verdict.get("spurious") or [])
    cells = (f"{report['summary']['total']} cells: {counts}" + (f" ({expected} expected)" if expected else "")
             + (f"; {unused} expectation(s) matched no cell" if unused else ""))
    last = (f"exit {verdict['exit_code']}: {summary.outcome(verdict)} ({summary.gate_words(verdict)})"
            + (f"; {spurious} cell(s) changed by themselves (spurious)" if spurious else ""))
    return [*summary.wrap(cells, width, indent="  "), *summary.wrap(last, width, indent="  ")]
