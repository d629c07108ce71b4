"""Bisect: the release between two that broke a model's route, found by building only what a binary search needs.

The releases between --from and --to come from the package index (harness/releases.py). One run
directory holds the whole search: its matrix has an environment per release, and each probe runs
the workflow (`run_matrix`) for the environments it needs only (`--only`, resumed), so the --from
environment saves and loads once and every image is built or reused as in any run. After each
probe the report's cells say, for every route of the model, whether it works in that release:

- good: it loads there and predicts like at home; bad: it fails or drifts there;
- unknown: that release cannot try it (the loader is missing), or its image did not build.

The user's route is searched first, then each other route that works at home and breaks at --to,
reusing every probe already made. A route's search never asks for more than its budget of new
environments (about log2(n) + 2) unless every release is asked for (--every), and the search says
when the probed points are not monotone (a route that breaks, then works again).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

GOOD, BAD, UNKNOWN = "good", "bad", "unknown"
FAILED = ("drift", "error", "crash", "timeout")
FormatLoader = tuple[str, str]  # (format, loader)


def budget(releases: int) -> int:
    """Environments one route's search may take: the two ends and a binary search between them."""
    return math.ceil(math.log2(max(releases, 2))) + 2


ENDS = 2  # --from and --to: probed first, for every route at once


def bisect_outcome(cell: dict[str, Any] | None) -> str:
    """What a report cell says of its route in its target."""
    if cell is None:
        return UNKNOWN
    if cell["status"] == "pass":
        return GOOD
    return BAD if cell["status"] in FAILED else UNKNOWN


@dataclass
class Search:
    """One route's binary search over the walk (index 0: --from, where it works; the last: --to)."""

    route: FormatLoader
    yours: bool
    limit: int | None  # environments it may ask for between the ends; None: no limit
    asked: int = 0
    stopped: str | None = None  # why it ended without pinning the boundary

    def next_probe(self, known: dict[int, str], size: int, skip: set[int]) -> int | None:
        """The next release (by index) to probe, or None when the search is over; `skip`: releases that cannot
        say anything of this route (their image did not build, or they cannot try it)."""
        last = size - 1
        if last not in known and last not in skip:
            return self._ask(last)
        bounds = self.bounds(known)
        if bounds is None:
            return None
        low, high = bounds
        open_ = [i for i in range(low + 1, high) if i not in known and i not in skip]
        if not open_:
            return None
        middle = (low + high) / 2
        return self._ask(min(open_, key=lambda i: (abs(i - middle), i)))

    def _ask(self, index: int) -> int | None:
        if self.limit is not None and self.asked >= self.limit:
            self.stopped = f"the search stopped after {self.asked + ENDS} environments (its budget); --every " \
                           "probes every release"
            return None
        self.asked += 1
        return index

    @staticmethod
    def bounds(known: dict[int, str]) -> tuple[int, int] | None:
        """(the last good index before the first bad one, that first bad one), or None when nothing is bad."""
        bad = sorted(i for i, o in known.items() if o == BAD)
        if not bad:
            return None
        good = [i for i, o in known.items() if o == GOOD and i < bad[0]]
        return (max(good) if good else 0), bad[0]


@dataclass
class Bisection:
    """Every route's outcome at every probed release, and the searches that asked for them."""

    walk: Sequence[str]  # releases, from --from to --to
    known: dict[FormatLoader, dict[int, str]] = field(default_factory=dict)
    probed: list[int] = field(default_factory=list)  # indices, in the order they were probed
    unbuilt: set[int] = field(default_factory=set)
    cells: dict[tuple[FormatLoader, int], dict[str, Any]] = field(default_factory=dict)

    def record(self, index: int, cells: dict[FormatLoader, dict[str, Any]], built: bool) -> None:
        """What one probed release said of each route (its report cells), or that its image did not build."""
        self.probed.append(index)
        if not built:
            self.unbuilt.add(index)
            return
        for route, cell in cells.items():
            found = bisect_outcome(cell)
            if found != UNKNOWN:
                self.known.setdefault(route, {})[index] = found
            self.cells[(route, index)] = cell

    def history(self, route: FormatLoader) -> list[tuple[str, str]]:
        """(release, outcome) at every probed release, in walk order."""
        known = self.known.get(route, {})
        return [(self.walk[i], "unbuilt" if i in self.unbuilt else known.get(i, UNKNOWN))
                for i in sorted(set(self.probed))]

    def monotone(self, route: FormatLoader) -> bool:
        """Whether the probed outcomes switch from good to bad at most once along the walk."""
        seen = [o for _, o in self.history(route) if o in (GOOD, BAD)]
        return sum(1 for a, b in zip(seen, seen[1:]) if a != b) <= 1 and (not seen or seen[0] == GOOD)


def search(bisection: Bisection, routes: Sequence[tuple[FormatLoader, bool]], probe: Callable[[int], None],
           limit: int | None) -> list[Search]:
    """Run each route's search in turn (the user's first); `probe(index)` runs a release and records it."""
    searches = []
    for route, yours in routes:
        one = Search(route, yours, limit)
        while True:
            known = bisection.known.setdefault(route, {0: GOOD})
            skip = bisection.unbuilt | {i for i in bisection.probed if i not in known}
            index = one.next_probe(known, len(bisection.walk), skip)
            if index is None:
                break
            probe(index)
        searches.append(one)
    return searches


NESTED = "Exception encountered: "  # how Keras 3 nests the error that made a config fail to deserialize


def root_error(traceback: str | None) -> str | None:
    """The innermost error a nested Keras message names (its long outer message is cut before it), or None."""
    if not traceback or NESTED not in traceback:
        return None
    return traceback[traceback.rindex(NESTED) + len(NESTED):].strip().splitlines()[0][:300] or None


def route_findings(bisection: Bisection, one: Search) -> dict[str, Any]:
    """One route's findings: the last good and first bad release, the cause at the boundary, the history."""
    known = bisection.known.get(one.route, {})
    bounds = Search.bounds(known)
    entry: dict[str, Any] = {"format": one.route[0], "loader": one.route[1], "yours": one.yours,
                             "asked": one.asked, "history": [list(h) for h in bisection.history(one.route)],
                             "monotone": bisection.monotone(one.route), "last_good": None, "first_bad": None,
                             "adjacent": False, "cause": None, "error": None, "root": None, "hint": None,
                             "note": one.stopped}
    if bounds is None:
        entry["last_good"] = bisection.walk[max(known)] if known else None
        return entry
    low, high = bounds
    cell = bisection.cells.get((one.route, high)) or {}
    error = cell.get("error") or {}
    entry.update(last_good=bisection.walk[low], first_bad=bisection.walk[high],
                 adjacent=all(i in bisection.unbuilt for i in range(low + 1, high)), cause=cell.get("cause"),
                 error=f"{error.get('type')}: {error.get('message')}" if error else cell.get("reason"),
                 root=cell.get("root"), hint=error.get("hint") or cell.get("hint"))
    between = [bisection.walk[i] for i in range(low + 1, high) if i in bisection.unbuilt]
    if between and entry["adjacent"]:
        entry["note"] = f"the release(s) between did not build: {', '.join(between)}"
    return entry
