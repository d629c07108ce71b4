"""The cell statuses: their order of severity, which of them fail, and what each means."""

from __future__ import annotations

from collections.abc import Iterable

# Worst last: the grid shows the worst status of a (source, target) pair.
STATUS_ORDER = ("pass", "unsupported", "skipped", "drift", "error", "timeout", "crash")
FAILING = frozenset({"drift", "error", "timeout", "crash"})
# What an `expect:` entry may allow: the failing statuses, and cells that never ran.
EXPECTABLE = ("drift", "error", "timeout", "crash", "skipped")
# The README's status table says the same, word for word (a unit test compares them).
MEANINGS = {
    "pass": "loaded; predictions (and evaluate() results) within tolerance of the source's",
    "drift": "loaded, but predictions or evaluate() differ beyond tolerance; the cell carries max abs/rel diff, "
             "max ULP distance, argmax agreement and the reason",
    "error": "loading, predicting or evaluating raised; the cell carries the error type, message, a short traceback "
             "and, for known causes, a hint with the fix",
    "crash": "the loading process died (signal or exit code), e.g. a segfault in native code or an out-of-memory "
             "kill",
    "timeout": "no result within --cell-timeout seconds",
    "unsupported": "the target has no such loader for this format",
    "skipped": "the source never produced this artifact, or an image failed to build",
}


def worst(statuses: Iterable[str]) -> str | None:
    """The most severe status of a collection, or None when empty."""
    ranked = [STATUS_ORDER.index(s) for s in statuses]
    return STATUS_ORDER[max(ranked)] if ranked else None
