"""The cell statuses: their order of severity, which of them fail, and what each means."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Worst last: the grid shows the worst status of a (source, target) pair.
STATUS_ORDER = ("pass", "unsupported", "skipped", "drift", "error", "timeout", "crash")
FAILING = frozenset({"drift", "error", "timeout", "crash"})
RAISED = frozenset({"error", "crash", "timeout"})  # loading, predicting or evaluating raised, died or hung
NOT_RUN = frozenset({"skipped", "unsupported"})  # nothing was loaded
# How each status looks: rich styles on the terminal, symbols in Markdown.
STYLES = {"pass": "green", "unsupported": "dim", "skipped": "dim", "drift": "yellow", "error": "red",
          "timeout": "magenta", "crash": "bold red"}
SYMBOLS = {"pass": "✅", "unsupported": "➖", "skipped": "⏭️", "drift": "⚠️", "error": "❌", "timeout": "⏱️",
           "crash": "💥"}
# What an `expect:` entry may allow: the failing statuses, and cells that never ran.
EXPECTABLE = ("drift", "error", "timeout", "crash", "skipped")
# docs/report.md's status table says the same, word for word (a unit test compares them).
MEANINGS = {
    "pass": "loaded; predictions (and evaluate() results) within tolerance of the source's",
    "drift": "loaded, but predictions differ beyond tolerance (stage predict), or predictions match and evaluate() "
             "results differ (stage evaluate); the cell carries max abs/rel diff, max ULP distance, argmax agreement "
             "and the reason",
    "error": "loading, predicting or evaluating raised (the cell's stage says which; predictions that match but an "
             "evaluate() that raises is an error at stage evaluate); the cell carries the error type, message, a "
             "short traceback and, for known causes, a hint with the fix",
    "crash": "the loading process died (signal or exit code), e.g. a segfault in native code or an out-of-memory "
             "kill",
    "timeout": "no result within --cell-timeout seconds",
    "unsupported": "the target has no such loader for this format, or the source cannot write it",
    "skipped": "the source never produced this artifact, or an image failed to build",
}


def all_expected(cells: Iterable[Mapping[str, Any]]) -> bool:
    """Whether some cells count against the verdict and every one of them is expected (a hatched square)."""
    counted = [c["expected"] for c in cells if c.get("expected") is not None]
    return bool(counted) and all(counted)


def worst(statuses: Iterable[str]) -> str | None:
    """The most severe status of a collection, or None when empty."""
    ranked = [STATUS_ORDER.index(s) for s in statuses]
    return STATUS_ORDER[max(ranked)] if ranked else None
