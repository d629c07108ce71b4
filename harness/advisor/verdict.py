"""The verdict of an upgrade for one model: does its route survive the move, and if not, which route works.

A pure function of a report's cells (see cli/check.py for the command that runs the environments).
Every route named here was run and compared: the model's own file in the target as it is, the same
file with tf-keras in the target's TensorFlow (the environment check adds beside a Keras 3 target),
and the files of its migration (loaded where it works and saved there again in every format) in
both. None is recommended from a rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.agent.protocol import FORMATS, LOADERS

SAFE, SAFE_ELSEWHERE, UNSAFE, UNTESTED = "safe", "safe via another route", "unsafe", "untested"
SHORT = {SAFE: "SAFE", SAFE_ELSEWHERE: "NOT SAFE, another route works", UNSAFE: "UNSAFE", UNTESTED: "UNTESTED"}
# Routes that change least for the user come first among equally good ones.
LOADER_ORDER = ("load_model", "load_model_nocompile", "load_model_unsafe", "rebuild", "model_from_json", "tfsm_layer",
                "saved_model")
MIGRATED_FORMATS = ("keras", "h5", "export", "savedmodel", "json", "weights_h5", "tf_checkpoint")  # Keras's own first
MAX_LINES = 6  # routes listed per section: the whole verdict fits one screen
PER_KIND = 2  # working routes listed per kind of route
# Kinds of route, by how much they change for the user: the file as it is in the target; a migrated file (saved
# again once where it works); the file with tf-keras in the target's TensorFlow; a migrated file with tf-keras.
KINDS = ("as_is", "migrated", "tf_keras", "migrated_tf_keras")
KIND_WORDS = {"as_is": "as-it-is", "migrated": "migrated", "tf_keras": "tf-keras", "migrated_tf_keras": "migrated "
              "+ tf-keras"}


@dataclass(frozen=True)
class Route:
    """One way from the saved model to predictions in a target, and how it went."""

    format: str
    loader: str
    status: str
    max_abs_diff: float | None = None
    bit_exact: bool | None = None
    detail: str | None = None  # the error or the reason for drift
    hint: str | None = None
    env: str | None = None  # where it loads: the target, or the tf-keras environment beside it
    tf_keras: bool = False  # loaded with tf-keras in the target's TensorFlow
    made_with: str | None = None  # a migrated file: the loader that loaded the original where it works
    made_in: str | None = None  # ... the environment that saved it again
    route_status: str | None = None  # the report's: portable, breaks, never_works, ...

    @property
    def kind(self) -> str:
        """One of KINDS."""
        return KINDS[(self.made_with is not None) + 2 * self.tf_keras]

    def words(self) -> str:
        """'.keras / keras.models.load_model', or the steps of a migration."""
        fmt, loader = FORMATS.get(self.format), LOADERS.get(self.loader)
        fmt_words, loader_words = fmt.words if fmt else self.format, loader.words if loader else self.loader
        legacy = " with tf-keras" if self.tf_keras else ""
        if self.made_with is None:
            return f"{fmt_words} / {loader_words}{legacy}"
        made = LOADERS.get(self.made_with)
        return (f"load with {made.words if made else self.made_with} in {self.made_in}, save as {fmt_words}, "
                f"load with {loader_words}{legacy}" + (f" in {self.env}" if self.env else ""))

    def step(self) -> str:
        """What is done in the target, under a heading that says where: '.keras / keras.models.load_model', or
        for a migrated file 'saved as .keras (loaded with load_model(compile=False)), then keras.models.load_model'."""
        fmt, loader = FORMATS.get(self.format), LOADERS.get(self.loader)
        fmt_words, loader_words = fmt.words if fmt else self.format, loader.words if loader else self.loader
        if self.made_with is None:
            return f"{fmt_words} / {loader_words}"
        made = LOADERS.get(self.made_with)
        return f"saved as {fmt_words} (loaded with {made.words if made else self.made_with}), then {loader_words}"

    def short(self) -> str:
        """A table's few words: '.keras / keras.models.load_model (migrated, tf-keras)'."""
        fmt, loader = FORMATS.get(self.format), LOADERS.get(self.loader)
        how = [w for w, on in (("migrated", self.made_with is not None), ("tf-keras", self.tf_keras)) if on]
        return (f"{fmt.words if fmt else self.format} / {loader.words if loader else self.loader}"
                + (f" ({', '.join(how)})" if how else ""))


@dataclass(frozen=True)
class Verdict:
    """The path verdict of one model's pair, seen from the user's route: what breaks, what works."""

    status: str  # SAFE, SAFE_ELSEWHERE, UNSAFE or UNTESTED
    path: str  # the report's verdict for the pair: safe, partial, broken, untested
    route: Route | None  # the user's route in the target
    asked: tuple[str, str]  # the route the user named (or the default for the file)
    current: tuple[str, str]  # the route that works at home: the one asked for when it does
    works: list[Route] = field(default_factory=list)  # every route that works at home and in the target, best first
    breaks: list[Route] = field(default_factory=list)  # the file's own routes: work at home, fail in the target
    never: list[Route] = field(default_factory=list)  # fail at home too: not the upgrade's doing
    at_home: Route | None = None  # the asked route where the model comes from
    target: str = ""
    tf_keras: str | None = None  # the tf-keras environment beside the target, when the check added one
    tried: int = 0  # routes run in the target and beside it (every kind)

    @property
    def exit_code(self) -> int:
        """0 when the model survives by its current route."""
        return 0 if self.status == SAFE else 1

    @property
    def best(self) -> Route | None:
        """The best route that works, if any."""
        return self.works[0] if self.works else None

    @property
    def use(self) -> Route | None:
        """The route to take to the target: yours when it survives, else the best that works."""
        return self.route if self.status == SAFE else self.best


def _route(cell: dict[str, Any], **where: Any) -> Route:
    error = cell.get("error") or {}
    detail = f"{error.get('type')}: {error.get('message')}" if error else cell.get("reason")
    return Route(format=cell["format"], loader=cell["loader"], status=cell["status"],
                 max_abs_diff=cell.get("max_abs_diff"), bit_exact=cell.get("bit_exact"), detail=detail,
                 hint=error.get("hint") or cell.get("hint"), env=cell["target"],
                 route_status=cell.get("route_status"), **where)


def _rank(order: tuple[str, ...], name: str) -> int:
    return order.index(name) if name in order else len(order)


def _preference(route: Route, current: tuple[str, str]) -> tuple[Any, ...]:
    """Bit-exact first, then the smallest difference, then the least change: the file as it is before a migrated one
    before tf-keras; for the file as it is its own format first, for a migrated file Keras's own format first."""
    diff = route.max_abs_diff if route.max_abs_diff is not None and math.isfinite(route.max_abs_diff) else math.inf
    fmt = _rank(MIGRATED_FORMATS, route.format) if route.made_with else int(route.format != current[0])
    return (not route.bit_exact, diff, KINDS.index(route.kind), _rank(LOADER_ORDER, route.loader), fmt, route.format)


def _made_with(report: dict[str, Any], migrated: str | None) -> tuple[str | None, str | None]:
    """(the loader that made the migrated model, the environment that saved it), from the report's migrations."""
    entry = next((m for m in report.get("migrations") or [] if m.get("model") == migrated), None)
    return (None, None) if entry is None else (entry.get("loader"), entry.get("env"))


def _others(report: dict[str, Any], *, model: str, source: str, home: str, target: str, tf_keras: str | None,
            migrated: str | None) -> list[Route]:
    """Every route beside the file's own in the target: with tf-keras, and the migrated files in both."""
    made_with, made_in = _made_with(report, migrated)
    found = []
    for c in report["cells"]:
        legacy = tf_keras is not None and c["target"] == tf_keras
        if c["model"] == model and c["source"] == source and legacy:
            found.append(_route(c, tf_keras=True))
        elif migrated is not None and c["model"] == migrated and c["source"] == home and (
                legacy or c["target"] == target):
            found.append(_route(c, tf_keras=legacy, made_with=made_with or "?", made_in=made_in or home))
    return found


def decide(report: dict[str, Any], *, model: str, source: str, target: str, home: str,
           route: tuple[str, str], tf_keras: str | None = None, migrated: str | None = None) -> Verdict:
    """The verdict for `model` moved from `source` (an environment, or an artifact's pseudo-source) to `target`.

    The same computation as the report's path verdict, for one model: a route counts only where it
    works at `home`, the environment the model comes from. The user's route is the one asked for when
    it works at home, else the best route that does. Beside the file's own routes in the target, the
    routes through `tf_keras` (the target's TensorFlow with tf-keras) and through the `migrated` model's
    files (saved again at home) count as working routes too, each verified like any other.
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
    others = _others(report, model=model, source=source, home=home, target=target, tf_keras=tf_keras,
                     migrated=migrated)
    works = by_status.get("portable", []) + [r for r in others if r.route_status == "portable"]
    works.sort(key=lambda r: _preference(r, current))
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
                   at_home=None if route not in at_home else _route(at_home[route]), target=target,
                   tf_keras=tf_keras, tried=len(there) + len(others))


def route_dict(route: Route) -> dict[str, Any]:
    """A route as check.json lists it: the cell's figures, where it loads, how its file was made."""
    return {"format": route.format, "loader": route.loader, "status": route.status, "kind": route.kind,
            "env": route.env, "tf_keras": route.tf_keras, "made_with": route.made_with, "made_in": route.made_in,
            "max_abs_diff": route.max_abs_diff, "bit_exact": route.bit_exact, "detail": route.detail,
            "hint": route.hint, "words": route.words()}


# ---------------------------------------------------------------------------- the screen


def _figures(route: Route, tolerance: dict[str, float]) -> str:
    if route.bit_exact:
        return "matches bit-exactly"
    if route.max_abs_diff is None:
        return "matches"
    return f"matches within {route.max_abs_diff:.2g} (atol {tolerance['atol']:g} + rtol {tolerance['rtol']:g})"


def difference(route: Route | None) -> str:
    """A route's difference in a table cell."""
    if route is None:
        return "-"
    if route.bit_exact:
        return "bit-exact"
    return "-" if route.max_abs_diff is None else f"{route.max_abs_diff:.2g}"


def _env_words(env: dict[str, Any]) -> str:
    if env.get("image") is None and env.get("spec", {}).get("artifact"):
        keras = f"Keras {env['keras']}" if env.get("keras") else "Keras version unknown"
        return f"{Path(env['spec']['artifact']).name} (saved elsewhere; {keras})"
    return (f"Python {env.get('python')}, TensorFlow {env.get('tensorflow')}, Keras {env.get('keras')}"
            + (f" ({env['keras_package']})" if env.get("keras_package") == "tf-keras" else ""))


def render(verdict: Verdict, report: dict[str, Any], *, source: str, home: str, target: str,
           route: tuple[str, str], run_dir: Path, model: str | None = None) -> str:
    """One screen: verdict, what breaks, which routes work, where the report is."""
    envs = {e["id"]: e for e in report["environments"]}
    entry = next((m for m in report["models"] if m["name"] == model), report["models"][0])
    current = Route(verdict.current[0], verdict.current[1], "?")
    lines = [f"model  {entry['name']}: {entry['description']}"]
    if source != home:
        lines.append(f"saved  {source}: {_env_words(envs[source])}")
    lines += [f"from   {home}: {_env_words(envs[home])}", f"to     {target}: {_env_words(envs[target])}"]
    if verdict.tf_keras and verdict.tf_keras in envs:
        lines.append(f"beside {verdict.tf_keras}: {_env_words(envs[verdict.tf_keras])}")
    lines += [f"route  {current.words()}", ""]
    lines += _headline(verdict, home, report)
    lines += _breaks(verdict, target) + _works(verdict, report["tolerance"], home=home)
    lines += ["", f"report: {run_dir / 'report.html'}  (run directory {run_dir})"]
    return "\n".join(lines) + "\n"


def _headline(verdict: Verdict, home: str, report: dict[str, Any]) -> list[str]:
    headline = {SAFE: "SAFE: your route works in the target",
                SAFE_ELSEWHERE: "NOT SAFE by your route, but another route works",
                UNSAFE: "UNSAFE: no route that works at home survives",
                UNTESTED: f"UNTESTED: no route loads it with the same predictions in {home} itself"}[verdict.status]
    lines = [f"verdict: {headline} (path {verdict.path}; {verdict.tried} routes tried)"]
    if verdict.current != verdict.asked:
        asked = Route(verdict.asked[0], verdict.asked[1], "?")
        current = Route(verdict.current[0], verdict.current[1], "?")
        lines.append(f"  note: {asked.words()} does not work in {home} either"
                     + (f" ({verdict.at_home.status})" if verdict.at_home else "")
                     + f"; {current.words()} does, so it is taken as your route")
    if verdict.never:
        lines.append(f"  note: {len(verdict.never)} route(s) fail in {home} too; they are not the upgrade's doing")
    lines += [f"  note: {e['id']} has no image ({e.get('status')}): {e.get('error')}" for e in report["environments"]
              if e.get("status", "ok") != "ok"]
    return lines


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


def _kind_heading(kind: str, verdict: Verdict, home: str) -> str:
    return {
        "as_is": f"as it is, in {verdict.target}:",
        "migrated": f"migrated: loaded in {home} and saved there again, then loaded in {verdict.target}:",
        "tf_keras": f"with tf-keras in the same TensorFlow ({verdict.tf_keras}: pip install tf-keras, "
                    "TF_USE_LEGACY_KERAS=1):",
        "migrated_tf_keras": f"migrated, then loaded with tf-keras ({verdict.tf_keras}):",
    }[kind]


def _works(verdict: Verdict, tolerance: dict[str, float], *, home: str) -> list[str]:
    if not verdict.works:
        return ["", "no route works: rebuild the model in the new version and retrain, or stay on the old one"]
    lines = ["", "routes that work (each run and compared with the reference):"]
    # When the file loads as it is, the other kinds are only counted: nothing needs to change.
    shown = KINDS[:1] if verdict.status == SAFE else KINDS
    for kind in KINDS:
        routes = [r for r in verdict.works if r.kind == kind]
        if not routes:
            continue
        if kind not in shown:
            lines.append(f"  and {len(routes)} {KIND_WORDS[kind]} route(s): see check.json")
            continue
        lines.append(f"  {_kind_heading(kind, verdict, home)}")
        for r in routes[:PER_KIND]:
            lines.append(f"    ok {r.step()}: {_figures(r, tolerance)}")
        if len(routes) > PER_KIND:
            lines.append(f"    ... and {len(routes) - PER_KIND} more in check.json")
    best = verdict.works[0]
    lines += ["", f"best route: {best.words()} ({_figures(best, tolerance)})"]
    return lines


def table(verdicts: Sequence[Verdict]) -> list[str]:
    """One row per target: its verdict, the route to take (yours when it survives, else the best that works), and
    that route's difference."""
    rows = [("target", "verdict", "route to take", "difference")]
    rows += [(v.target, SHORT[v.status], (v.use.short() + (" (yours)" if v.status == SAFE else "")) if v.use else
              "none", difference(v.use)) for v in verdicts]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
