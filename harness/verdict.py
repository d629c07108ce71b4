"""The verdict of an upgrade for one model: does its route survive the move, and if not, which route works.

A pure function of a report's cells (see cli/check.py for the command that runs the two environments).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.agent.protocol import FORMATS, LOADERS

SAFE, SAFE_ELSEWHERE, UNSAFE, UNTESTED = "safe", "safe via another route", "unsafe", "untested"
# Routes that change least for the user come first among equally good ones.
LOADER_ORDER = ("load_model", "load_model_nocompile", "load_model_unsafe", "rebuild", "model_from_json", "tfsm_layer",
                "saved_model")
MAX_LINES = 6  # routes listed per section: the whole verdict fits one screen


@dataclass(frozen=True)
class Route:
    """One (format, loader) way from the saved model to predictions in the target, and how it went."""

    format: str
    loader: str
    status: str
    max_abs_diff: float | None = None
    bit_exact: bool | None = None
    detail: str | None = None  # the error or the reason for drift
    hint: str | None = None

    def words(self) -> str:
        """'.keras / keras.models.load_model'."""
        fmt, loader = FORMATS.get(self.format), LOADERS.get(self.loader)
        return f"{fmt.words if fmt else self.format} / {loader.words if loader else self.loader}"


@dataclass(frozen=True)
class Verdict:
    """The path verdict of one model's pair, seen from the user's route: what breaks, what works."""

    status: str  # SAFE, SAFE_ELSEWHERE, UNSAFE or UNTESTED
    path: str  # the report's verdict for the pair: safe, partial, broken, untested
    route: Route | None  # the user's route in the target
    asked: tuple[str, str]  # the route the user named (or the default for the file)
    current: tuple[str, str]  # the route that works at home: the one asked for when it does
    works: list[Route] = field(default_factory=list)  # portable routes, best first
    breaks: list[Route] = field(default_factory=list)  # work at home, fail in the target
    never: list[Route] = field(default_factory=list)  # fail at home too: not the upgrade's doing
    at_home: Route | None = None  # the asked route where the model comes from

    @property
    def exit_code(self) -> int:
        """0 when the model survives by its current route."""
        return 0 if self.status == SAFE else 1


def _route(cell: dict[str, Any]) -> Route:
    error = cell.get("error") or {}
    detail = f"{error.get('type')}: {error.get('message')}" if error else cell.get("reason")
    return Route(format=cell["format"], loader=cell["loader"], status=cell["status"],
                 max_abs_diff=cell.get("max_abs_diff"), bit_exact=cell.get("bit_exact"), detail=detail,
                 hint=error.get("hint") or cell.get("hint"))


def _preference(route: Route, current: tuple[str, str]) -> tuple[Any, ...]:
    diff = route.max_abs_diff if route.max_abs_diff is not None and math.isfinite(route.max_abs_diff) else math.inf
    loader = LOADER_ORDER.index(route.loader) if route.loader in LOADER_ORDER else len(LOADER_ORDER)
    return (not route.bit_exact, diff, route.format != current[0], loader, route.format)


def decide(report: dict[str, Any], *, model: str, source: str, target: str, home: str,
           route: tuple[str, str]) -> Verdict:
    """The verdict for `model` moved from `source` (an environment, or an artifact's pseudo-source) to `target`.

    The same computation as the report's path verdict, for one model: a route counts only where it
    works at `home`, the environment the model comes from. The user's route is the one asked for when
    it works at home, else the best route that does.
    """
    mine = [c for c in report["cells"] if c["model"] == model and c["source"] == source]
    at_home = {(c["format"], c["loader"]): c for c in mine if c["target"] == home}
    there = {(c["format"], c["loader"]): c for c in mine if c["target"] == target}
    home_works = sorted((_route(c) for c in at_home.values() if c["status"] == "pass"),
                        key=lambda r: _preference(r, route))
    current = route if route in {(r.format, r.loader) for r in home_works} or not home_works else \
        (home_works[0].format, home_works[0].loader)
    by_status: dict[str, list[Route]] = {}
    for c in there.values():
        by_status.setdefault(c.get("route_status") or "", []).append(_route(c))
    works = sorted(by_status.get("portable", []), key=lambda r: _preference(r, current))
    path = next((p["verdict"] for p in report.get("paths", []) if (p["source"], p["target"]) == (source, target)),
                "untested")
    mine_there = there.get(current)
    if not home_works:
        status = UNTESTED
    elif mine_there is not None and mine_there.get("route_status") == "portable":
        status = SAFE
    else:
        status = SAFE_ELSEWHERE if works else UNSAFE
    return Verdict(status=status, path=path, route=None if mine_there is None else _route(mine_there), asked=route,
                   current=current, works=works, breaks=by_status.get("breaks", []),
                   never=by_status.get("never_works", []),
                   at_home=None if route not in at_home else _route(at_home[route]))


# ---------------------------------------------------------------------------- the screen


def _figures(route: Route, tolerance: dict[str, float]) -> str:
    if route.bit_exact:
        return "matches bit-exactly"
    if route.max_abs_diff is None:
        return "matches"
    return f"matches within {route.max_abs_diff:.2g} (atol {tolerance['atol']:g} + rtol {tolerance['rtol']:g})"


def _env_words(env: dict[str, Any]) -> str:
    if env.get("image") is None and env.get("spec", {}).get("artifact"):
        keras = f"Keras {env['keras']}" if env.get("keras") else "Keras version unknown"
        return f"{Path(env['spec']['artifact']).name} (saved elsewhere; {keras})"
    return (f"Python {env.get('python')}, TensorFlow {env.get('tensorflow')}, Keras {env.get('keras')}"
            + (f" ({env['keras_package']})" if env.get("keras_package") == "tf-keras" else ""))


def render(verdict: Verdict, report: dict[str, Any], *, source: str, home: str, target: str,
           route: tuple[str, str], run_dir: Path) -> str:
    """One screen: verdict, what breaks, which routes work, where the report is."""
    envs = {e["id"]: e for e in report["environments"]}
    current = Route(verdict.current[0], verdict.current[1], "?")
    lines = [f"model  {report['models'][-1]['name']}: {report['models'][-1]['description']}"]
    if source != home:
        lines.append(f"saved  {source}: {_env_words(envs[source])}")
    lines += [f"from   {home}: {_env_words(envs[home])}", f"to     {target}: {_env_words(envs[target])}",
              f"route  {current.words()}", ""]
    headline = {SAFE: "SAFE: your route works in the target",
                SAFE_ELSEWHERE: "NOT SAFE by your route, but another route works",
                UNSAFE: "UNSAFE: no route that works at home survives",
                UNTESTED: f"UNTESTED: no route loads it with the same predictions in {home} itself"}[verdict.status]
    lines.append(f"verdict: {headline} (path {verdict.path})")
    if verdict.current != verdict.asked:
        asked = Route(verdict.asked[0], verdict.asked[1], "?")
        lines.append(f"  note: {asked.words()} does not work in {home} either"
                     + (f" ({verdict.at_home.status})" if verdict.at_home else "")
                     + f"; {current.words()} does, so it is taken as your route")
    if verdict.never:
        lines.append(f"  note: {len(verdict.never)} route(s) fail in {home} too; they are not the upgrade's doing")
    lines += [f"  note: {e['id']} has no image ({e.get('status')}): {e.get('error')}" for e in report["environments"]
              if e.get("status", "ok") != "ok"]
    lines += _breaks(verdict, target) + _works(verdict, report["tolerance"])
    lines += ["", f"report: {run_dir / 'report.html'}  (run directory {run_dir})"]
    return "\n".join(lines) + "\n"


def _breaks(verdict: Verdict, target: str) -> list[str]:
    if not verdict.breaks:
        return []
    lines = ["", f"what breaks in {target}:"]
    ordered = sorted(verdict.breaks, key=lambda r: (verdict.route is None or r != verdict.route, r.format, r.loader))
    seen: set[str] = set()
    for route in ordered[:MAX_LINES]:
        detail = re.sub(r"\s+", " ", route.detail or "")
        lines.append(f"  x {route.words()}: {route.status}: {detail[:110]}{'...' if len(detail) > 110 else ''}")
        if route.hint and route.hint not in seen:
            lines.append(f"      hint: {route.hint}")
            seen.add(route.hint)
    if len(ordered) > MAX_LINES:
        lines.append(f"  ... and {len(ordered) - MAX_LINES} more in the report")
    return lines


def _works(verdict: Verdict, tolerance: dict[str, float]) -> list[str]:
    if not verdict.works:
        return ["", "no route works: rebuild the model in the new version and retrain, or stay on the old one"]
    lines = ["", "routes that work:"]
    lines += [f"  ok {r.words()}: {_figures(r, tolerance)}" for r in verdict.works[:MAX_LINES]]
    if len(verdict.works) > MAX_LINES:
        lines.append(f"  ... and {len(verdict.works) - MAX_LINES} more in the report")
    return lines
