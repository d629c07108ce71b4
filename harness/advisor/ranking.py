"""The one ranking of routes: what asks least of the user comes first, then the closest predictions.

Every list of working routes is sorted here: a path's "what works" in the report, `check`'s routes
and the route it says to take, the migrated file `--migrate` hands over. The order:

1. the change it asks for, on the ladder CHANGES (the file with its format's usual loader; another load
   option such as compile=False; tf-keras beside the target; a serving route such as TFSMLayer; a file
   made again; the model's code), then how many such steps it takes;
2. for one model: its own format before another (for a file made again, migrated or adapted, the format of the
   file it hands over: Keras's own first);
   for a path: the route that carries more models;
3. bit-exact before merely within tolerance, then the smaller difference;
4. the catalog's order of loaders and formats, so that ties always fall the same way.

A route that does not work is never ranked: the figures only order routes within tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.agent.protocol import CHANGES, FORMATS, LOADERS

# A file made again (migrated, or adapted) is best handed over in Keras's own format, then the one the user had
# (see handover.py).
MIGRATED_FORMATS = ("keras", "h5", "export", "savedmodel", "json", "weights_h5", "tf_checkpoint")
_FORMATS, _LOADERS = tuple(FORMATS), tuple(LOADERS)
# Where a route's file comes from and what loads it (Route.kind): the user's file in the target, a migrated file,
# the user's file with tf-keras beside the target, a migrated file with tf-keras, the user's file adapted for the
# target's Keras (harness/advisor/adaptation.py).
KINDS = ("as_is", "migrated", "tf_keras", "migrated_tf_keras", "adapted")


def _index(order: tuple[str, ...], name: str) -> int:
    return order.index(name) if name in order else len(order)


def change(fmt: str, loader: str, *, tf_keras: bool = False, migrated: bool = False) -> tuple[int, int]:
    """What taking a route asks of the user: (its largest step on the CHANGES ladder, how many steps).

    A format's usual loader asks nothing of someone who has that format; any other loader asks its own step. An
    adapted file is loaded by its format's usual loader, and asks what that loader asks too (its code, for weights).
    """
    spec, usual = LOADERS.get(loader), FORMATS[fmt].loader if fmt in FORMATS else None
    steps: list[str] = ["as_is" if spec is None or loader == usual else spec.change]
    if spec is not None and spec.adapts and usual in LOADERS:
        steps.append(LOADERS[usual].change)
    steps += ["tf_keras"] * tf_keras + ["migrated"] * migrated
    ranks = [CHANGES.index(s) for s in steps if s != "as_is"]
    return (max(ranks, default=0), len(ranks))


def change_name(fmt: str, loader: str, *, tf_keras: bool = False, migrated: bool = False) -> str:
    """The largest step a route asks, by name: 'as_is', 'option', 'tf_keras', 'serving', 'migrated' or 'code'."""
    return CHANGES[change(fmt, loader, tf_keras=tf_keras, migrated=migrated)[0]]


def closeness(bit_exact: bool | None, max_abs_diff: float | None) -> tuple[bool, float]:
    """Bit-exact first, then the smaller difference (an unknown one last)."""
    diff = max_abs_diff if isinstance(max_abs_diff, (int, float)) and math.isfinite(max_abs_diff) else math.inf
    return (not bit_exact, float(diff))


@dataclass(frozen=True)
class Route:
    """One way from a saved model to predictions in a target, and how it went (a report cell, seen as a route)."""

    format: str
    loader: str
    status: str
    max_abs_diff: float | None = None
    bit_exact: bool | None = None
    detail: str | None = None  # the error or the reason for drift
    hint: str | None = None
    cause: str | None = None
    env: str | None = None  # where it loads: the target, or the tf-keras environment beside it
    tf_keras: bool = False  # loaded with tf-keras in the target's TensorFlow
    made_with: str | None = None  # a migrated file: the loader that loaded the original where it works
    made_in: str | None = None  # ... the environment that saved it again
    route_status: str | None = None  # the report's: portable, breaks, never_works, target_only, ...
    adapters: tuple[str, ...] = ()  # an adapted file: the adapters that changed it
    edits: tuple[str, ...] = ()  # ... and what each changed

    @property
    def change(self) -> tuple[int, int]:
        """What taking it asks of the user (see change())."""
        return change(self.format, self.loader, tf_keras=self.tf_keras, migrated=self.made_with is not None)

    @property
    def kind(self) -> str:
        """Where its file comes from and what loads it: as_is, migrated, tf_keras, migrated_tf_keras or adapted."""
        if self.loader in LOADERS and LOADERS[self.loader].adapts:
            return "adapted"
        return KINDS[(self.made_with is not None) + 2 * self.tf_keras]

    @property
    def made_format(self) -> str | None:
        """The format of the file a route hands over when it is made again (migrated or adapted), else None."""
        spec = LOADERS.get(self.loader)
        if spec is not None and spec.adapts:
            return spec.makes or self.format
        return self.format if self.made_with is not None else None

    @property
    def pair(self) -> tuple[str, str]:
        """(format, loader)."""
        return (self.format, self.loader)


def route_key(route: Route, own_format: str | None = None) -> tuple[Any, ...]:
    """The sort key of one model's route; `own_format` is the format the user has."""
    made = route.made_format
    if made is not None:
        fmt = _index(MIGRATED_FORMATS, made)
    else:
        fmt = int(own_format is not None and route.format != own_format)
    return (route.change, fmt, closeness(route.bit_exact, route.max_abs_diff), _index(_LOADERS, route.loader),
            _index(_FORMATS, route.format))


def best_first(routes: Iterable[Route], own_format: str | None = None) -> list[Route]:
    """Working routes of one model, best first."""
    return sorted(routes, key=lambda r: route_key(r, own_format))


def cell_key(cell: Mapping[str, Any]) -> tuple[Any, ...]:
    """The sort key of a report cell that works (one model's route on a path)."""
    return (change(cell["format"], cell["loader"]), closeness(cell.get("bit_exact"), cell.get("max_abs_diff")),
            _index(_LOADERS, cell["loader"]), _index(_FORMATS, cell["format"]), cell["model"])


def group_key(fmt: str, loader: str, *, models: int, bit_exact: bool, max_abs_diff: float | None) -> tuple[Any, ...]:
    """The sort key of a route that carries `models` models across a path."""
    return (change(fmt, loader), -models, closeness(bit_exact, max_abs_diff), _index(_LOADERS, loader),
            _index(_FORMATS, fmt))
