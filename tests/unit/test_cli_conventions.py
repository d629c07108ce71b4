"""Conventions people expect of a command line: help for every argument, examples and exit codes at the top,
and a README whose command table names every flag."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from harness.cli import COMMANDS, build_parser

README = Path(__file__).resolve().parents[2] / "docs" / "commands.md"  # the command table


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_argument_of_every_subcommand_has_help(command: str) -> None:
    parser = _subparsers()[command]
    missing = [a.option_strings[0] if a.option_strings else a.dest for a in _arguments(parser) if not a.help]
    assert not missing, f"{command}: no help for {missing}"
    assert parser.description or _subparsers()[command].format_usage()


def test_every_top_level_option_has_help() -> None:
    assert all(a.help for a in build_parser()._actions)


def test_top_level_help_shows_examples_and_every_exit_code() -> None:
    text = build_parser().format_help()
    examples = text[text.index("examples:"):text.index("exit codes:")]
    assert {line.split()[1] for line in examples.splitlines()[1:] if line.strip()} >= set(COMMANDS) - {"plan"}
    codes = text[text.index("exit codes:"):]
    assert [int(m) for m in re.findall(r"^\s+(\d+)\s", codes, re.MULTILINE)] == [0, 1, 2, 3, 130]


def _readme_rows() -> dict[str, str]:
    """The README's command table: subcommand -> its row."""
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\| `python -m harness (?:\[--engine \S+\] )?([a-z-]+)", line)
        if found:
            rows[found.group(1)] = line
    return rows


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_readme_command_table_lists_every_flag(command: str) -> None:
    rows = _readme_rows()
    assert command in rows, f"README's command table has no row for {command}"
    flags = [a.option_strings[-1] for a in _arguments(_subparsers()[command]) if a.option_strings]
    missing = [f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", rows[command])]
    assert not missing, f"README's row for {command} does not list {missing}"
