"""The console: a live bar with counts on a terminal, plain lines and ::group:: folding in CI, NO_COLOR."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from fake_run import FakeRun
from harness.console import Console, summary_lines
from harness.matrix import Environment, Expectation
from harness.report.summary import labels, split_paths

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


FIVE = tuple(Environment(id=f"py3.11-tf2.{minor}.1-keras3.{minor}.0", python="3.11", tensorflow=f"==2.{minor}.1",
                         keras=f"==3.{minor}.0", base_image="python:3.11-slim") for minor in range(16, 21))


def _five(tmp_path: Path) -> dict[str, Any]:
    """A five-environment run where the newest environment's files break in the oldest, one path expected."""
    run = FakeRun(tmp_path / "run", envs=FIVE, expect=(Expectation(reason="known", source=(("id", FIVE[3].id),),
                                                                   target=(("id", FIVE[0].id),)),))
    for source in (FIVE[4], FIVE[3]):
        run.load_failed(source.id, FIVE[0].id, "keras", status="error", stage="load",
                        error={"type": "TypeError", "message": "Unrecognized keyword arguments passed to Dense: "
                                                               "{'quantization_config': None}"})
    report: dict[str, Any] = run.report()
    return report


def test_the_summary_answers_each_upgrade_path_on_one_line_in_readable_labels(tmp_path: Path) -> None:
    report = _five(tmp_path)
    lines = summary_lines(report)
    assert len(lines) <= 25 and all(len(line) <= 100 for line in lines), max(lines, key=len)
    names = labels(report)
    assert names[FIVE[0].id] == "2.16.1+keras3.16.0"  # as check takes it; the Python every one shares left out
    ups, downs = split_paths(report)
    assert len(ups) == len(downs) == 10
    for path in ups:
        assert any(line.startswith(f"  {names[path['source']]} → {names[path['target']]}") and path["verdict"] in line
                   for line in lines)
    assert lines[1] == "upgrade paths (10; downgrades: 8 safe, 2 partial, in report.md):"
    assert "causes of what breaks: newer-keras-config (2) (their fixes: report.md)" in lines


def test_the_summary_stays_short_whatever_the_number_of_environments(tmp_path: Path) -> None:
    many = tuple(Environment(id=f"py3.11-tf2.{m}.1", python="3.11", tensorflow=f"==2.{m}.1",
                             base_image="python:3.11-slim") for m in range(12, 24))
    report = FakeRun(tmp_path / "run", envs=many).report()
    lines = summary_lines(report, 80)
    assert len(lines) <= 25 and all(len(line) <= 80 for line in lines)
    assert lines[-3].startswith("  ... and ") and lines[-3].endswith("safe) in report.md")
    assert lines[-1].startswith("exit 0: nothing new breaks")
    for line in lines:  # words are never cut: every word is one of the sentence's or a label
        assert "…" not in line


def test_the_summary_ends_with_the_verdict_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    Console(stream=io.StringIO()).summary(_five(tmp_path))
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "fake: 5 environment(s), 50 cell(s)"
    assert out.rstrip().splitlines()[-2:] == ["50 cells: 48 pass, 2 error (1 expected)",
                                              "exit 1: 1 unexpected (fail on breaks)"]
