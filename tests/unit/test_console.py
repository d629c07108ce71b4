"""The console: a live bar with counts on a terminal, plain lines and ::group:: folding in CI, NO_COLOR."""

from __future__ import annotations

import io
import re
import threading
from typing import Any

import pytest

from harness.console import Console

SGR_COLOR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7])[0-9;]*m")  # a foreground colour escape


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CI", "GITHUB_ACTIONS", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)


def _run_phase(console: Console, total: int = 2) -> None:
    with console.phase("build", total) as phase:
        for i in range(total):
            console.step(f"build env{i}: reused")
            phase.advance()


def test_plain_lines_with_elapsed_time_and_a_closing_count() -> None:
    stream = io.StringIO()
    _run_phase(Console(stream=stream))
    lines = stream.getvalue().splitlines()
    assert [re.sub(r"^\[ *\d+\.\ds\] ", "", line) for line in lines] == [
        "== build: 2 environment(s)", "build env0: reused", "build env1: reused", "build: 2/2 done"]
    assert all(re.match(r"^\[ *\d+\.\ds\] ", line) for line in lines)
    assert "\x1b" not in stream.getvalue()


def test_github_actions_folds_each_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("CI", "true")
    stream = Terminal()
    _run_phase(Console(stream=stream))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "::group::build: 2 environment(s)"
    assert lines[-1] == "::endgroup::"
    assert lines[-2].endswith("build: 2/2 done")


def test_terminal_gets_a_live_bar_with_counts() -> None:
    stream = Terminal()
    console = Console(stream=stream)
    assert console.live
    _run_phase(console, total=3)
    out = stream.getvalue()
    assert "build: 3 environment(s)" in out and "3/3" in out
    assert "build env2: reused" in out  # step lines print above the bar
    assert "━" in out
    assert SGR_COLOR.search(out)


def test_no_color_keeps_the_bar_without_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    stream = Terminal()
    _run_phase(Console(stream=stream), total=3)
    assert "3/3" in stream.getvalue()
    assert not SGR_COLOR.search(stream.getvalue())


@pytest.mark.parametrize(("stream", "ci", "live"), [(Terminal(), None, True), (Terminal(), "true", False),
                                                   (io.StringIO(), None, False)])
def test_live_only_on_a_terminal_outside_ci(
    stream: Any, ci: str | None, live: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ci:
        monkeypatch.setenv("CI", ci)
    assert Console(stream=stream).live is live


@pytest.mark.parametrize("stream", [Terminal(), io.StringIO()])
def test_quiet_prints_nothing(stream: Any) -> None:
    _run_phase(Console(stream=stream, quiet=True))
    assert stream.getvalue() == ""


@pytest.mark.parametrize("stream", [Terminal(), io.StringIO()])
def test_advance_is_thread_safe(stream: Any) -> None:
    with Console(stream=stream).phase("load", 64) as phase:
        threads = [threading.Thread(target=phase.advance) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert phase.done == 64
    assert "64/64" in stream.getvalue()


def _report(expected: bool | None, **verdict: Any) -> dict[str, Any]:
    cell = {"source": "a", "target": "a", "status": "error", "expected": expected}
    grid = {"a": {"a": {"worst": "error", "counts": {"error": 1}}}}
    return {"environments": [{"id": "a"}], "cells": [cell],
            "summary": {"total": 1, "counts": {"pass": 0, "error": 1}, "grid": grid},
            "verdict": {"exit_code": 1, "unexpected": [], "regressions": [], "unused_expectations": [], **verdict}}


def test_grid_verdict_line_counts_regressions(capsys: pytest.CaptureFixture[str]) -> None:
    Console(stream=io.StringIO()).grid(_report(False, regressions=[{"kind": "stopped_passing"}]))
    out = capsys.readouterr().out
    assert out.rstrip().endswith("1 cells: 1 error; exit 1 (1 regression(s))")
    assert "(expected)" not in out


def test_grid_marks_expected_failures_and_stale_expectations(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    report = _report(True, exit_code=0, unused_expectations=[{"index": 1, "reason": "old"}])
    Console(stream=io.StringIO()).grid(report)
    out = capsys.readouterr().out
    assert "error 1/1 (expected)" in out
    assert out.rstrip().endswith("1 cells: 1 error (1 expected); exit 0; 1 expectation(s) matched no cell")
