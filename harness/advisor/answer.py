"""`check`'s answer for one model and target: does its route survive the move, and if not, which route works.

A pure function of a report's cells, computed once while the report is built (report.json's
`check`); the screen, check.json, report.md, report.html, JUnit and the exit code all read it.
Every route named here was run and compared: the model's own file in the target as it is, the same
file with tf-keras in the target's TensorFlow (the environment check adds beside a Keras 3 target),
the files of its migration (loaded where it works and saved there again) in both, and routes that
exist only in the target (TFSMLayer). None is recommended from a rule; they are ranked by
harness/advisor/ranking.py, the ranking the report's paths use too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.advisor import adaptation, ranking, words
from harness.advisor.ranking import Route
from harness.report.statuses import WORKING

SAFE, SAFE_ELSEWHERE, UNSAFE, UNTESTED = "safe", "safe via another route", "unsafe", "untested"
ANSWERS = (SAFE, SAFE_ELSEWHERE, UNTESTED, UNSAFE)  # best first: the worst of several targets is the check's


@dataclass(frozen=True)
class TargetAnswer:
    """One model's move to one target, seen from the user's route: what breaks, what works, what to take."""

    status: str  # one of ANSWERS
    path: str  # the report's path verdict for the pair: safe, partial, broken, untested
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
    home_cause: dict[str, Any] | None = None  # why the asked route fails at home: the cause's name, fix and flag
    adapted: list[Route] = field(default_factory=list)  # the file adapted for the target: each copy, and why one fails

    @property
    def exit_code(self) -> int:
        """0 when the model survives by its current route."""
        return 0 if self.status == SAFE else 1

    @property
    def use(self) -> Route | None:
        """The route to take to the target: yours when it survives, else the best that works."""
        return self.route if self.status == SAFE else (self.works[0] if self.works else None)


def _route(cell: Mapping[str, Any], **where: Any) -> Route:
    error = cell.get("error") or {}
    detail = f"{error.get('type')}: {error.get('message')}" if error else cell.get("reason")
    found = adaptation.of(cell)
    if found is not None and cell.get("route_status") not in WORKING:
        detail = adaptation.why_not(cell)  # an adapted copy that fails: which adapter, and why
    return Route(format=cell["format"], loader=cell["loader"], status=cell["status"],
                 max_abs_diff=cell.get("max_abs_diff"), bit_exact=cell.get("bit_exact"), detail=detail,
                 hint=error.get("hint") or cell.get("hint"), cause=cell.get("cause"), env=cell["target"],
                 route_status=cell.get("route_status"), adapters=tuple(adaptation.adapters_run(found)),
                 edits=tuple(adaptation.edits(found)), **where)


def _made_with(report: Mapping[str, Any], migrated: str | None) -> tuple[str | None, str | None]:
    """(the loader that made the migrated model, the environment that saved it), from the report's migrations."""
    entry = next((m for m in report.get("migrations") or [] if m.get("model") == migrated), None)
    return (None, None) if entry is None else (entry.get("loader"), entry.get("env"))


def _others(report: Mapping[str, Any], *, model: str, source: str, home: str, target: str, tf_keras: str | None,
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


def _home_cause(report: Mapping[str, Any], cell: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The cause of a failure at home, with its fix and the check flag that applies it (None when it passed)."""
    if cell is None or cell["status"] == "pass":
        return None
    name = cell.get("cause")
    cause: Mapping[str, Any] = next((c for c in report.get("causes") or [] if c["name"] == name), {})
    error = cell.get("error") or {}
    return {"name": name, "fix": cause.get("fix") or error.get("hint") or cell.get("hint"),
            "flag": cause.get("flag"), "status": cell["status"],
            "detail": f"{error.get('type')}: {error.get('message')}" if error else cell.get("reason")}


def answer_target(report: Mapping[str, Any], *, model: str, source: str, target: str, home: str,
                  route: tuple[str, str], tf_keras: str | None = None, migrated: str | None = None) -> TargetAnswer:
    """The answer for `model` moved from `source` (an environment, or an artifact's pseudo-source) to `target`.

    A route counts only where it works at `home`, the environment the model comes from (the report's
    path verdict does the same). The user's route is the one asked for when it works at home, else the
    best route that does. Beside the file's own routes in the target, the routes through `tf_keras` and
    through the `migrated` model's files count as working routes too, each verified like any other.
    """
    mine = [c for c in report["cells"] if c["model"] == model and c["source"] == source]
    at_home = {(c["format"], c["loader"]): c for c in mine if c["target"] == home}
    there = {(c["format"], c["loader"]): c for c in mine if c["target"] == target}
    home_works = ranking.best_first((_route(c) for c in at_home.values() if c["status"] == "pass"), route[0])
    current = route if route in {r.pair for r in home_works} or not home_works else home_works[0].pair
    by_status: dict[str, list[Route]] = {}
    for c in there.values():
        by_status.setdefault(c.get("route_status") or "", []).append(_route(c))
    others = _others(report, model=model, source=source, home=home, target=target, tf_keras=tf_keras,
                     migrated=migrated)
    works = [r for r in [*there.values()] if r.get("route_status") in WORKING]
    working = [_route(c) for c in works] + [r for r in others if r.route_status in WORKING]
    path = next((p["verdict"] for p in report.get("paths", []) if (p["source"], p["target"]) == (source, target)),
                "untested")
    mine_there = there.get(current)
    if not home_works:
        status = UNTESTED
    elif mine_there is not None and mine_there.get("route_status") == "portable":
        status = SAFE
    else:
        status = SAFE_ELSEWHERE if working else UNSAFE
    yours = None if mine_there is None else _route(mine_there)
    ranked = ranking.best_first(working, current[0])
    adapted = [_route(c) for c in there.values() if adaptation.adapts(c["loader"])]
    if status == SAFE and yours is not None:  # the user's own route first, the alternatives below it
        ranked = [yours, *(r for r in ranked if r != yours)]
    return TargetAnswer(status=status, path=path, route=yours, asked=route, current=current, works=ranked,
                        breaks=by_status.get("breaks", []), never=by_status.get("never_works", []),
                        at_home=None if route not in at_home else _route(at_home[route]), target=target,
                        tf_keras=tf_keras, tried=len(there) + len(others), adapted=adapted,
                        home_cause=_home_cause(report, at_home.get(route)) if not home_works or route not in {
                            r.pair for r in home_works} else None)


# ---------------------------------------------------------------------------- report.json's `check`


def route_dict(route: Route) -> dict[str, Any]:
    """A route as report.json's `check` and check.json list it: the cell's figures, where it loads, how it was made."""
    return {"format": route.format, "loader": route.loader, "status": route.status, "kind": route.kind,
            "change": ranking.change_name(route.format, route.loader, tf_keras=route.tf_keras,
                                          migrated=route.made_with is not None),
            "env": route.env, "tf_keras": route.tf_keras, "made_with": route.made_with, "made_in": route.made_in,
            "max_abs_diff": route.max_abs_diff, "bit_exact": route.bit_exact, "detail": route.detail,
            "hint": route.hint, "cause": route.cause, "route_status": route.route_status,
            "adapters": list(route.adapters), "edits": list(route.edits),
            "words": words.steps(route), "short": words.short(route), "step": words.step(route)}


def route_from_dict(data: Mapping[str, Any]) -> Route:
    """A route back from route_dict()."""
    return Route(format=data["format"], loader=data["loader"], status=data["status"],
                 max_abs_diff=data.get("max_abs_diff"), bit_exact=data.get("bit_exact"), detail=data.get("detail"),
                 hint=data.get("hint"), cause=data.get("cause"), env=data.get("env"),
                 tf_keras=bool(data.get("tf_keras")), made_with=data.get("made_with"), made_in=data.get("made_in"),
                 route_status=data.get("route_status"), adapters=tuple(data.get("adapters") or ()),
                 edits=tuple(data.get("edits") or ()))


def _one(answer: TargetAnswer) -> dict[str, Any]:
    def opt(route: Route | None) -> dict[str, Any] | None:
        return None if route is None else route_dict(route)

    return {"target": answer.target, "tf_keras": answer.tf_keras, "verdict": answer.status,
            "path_verdict": answer.path, "exit_code": answer.exit_code, "route": list(answer.current),
            "asked": list(answer.asked), "current": opt(answer.route), "at_home": opt(answer.at_home),
            "use": opt(answer.use), "tried": answer.tried, "works": [route_dict(r) for r in answer.works],
            "breaks": [route_dict(r) for r in answer.breaks], "never_works": [route_dict(r) for r in answer.never],
            "home_cause": answer.home_cause, "adapted": [route_dict(r) for r in answer.adapted]}


def check_section(report: Mapping[str, Any], question: Mapping[str, Any]) -> dict[str, Any]:
    """report.json's `check`: the question as run.json records it, and the answer for every target.

    The check's exit code is its worst target's: 0 only when the user's route survives in every one.
    """
    route = (str(question["route"][0]), str(question["route"][1]))
    answers = [answer_target(report, model=question["model"], source=question["source"], target=t["env"],
                             home=question["home"], route=route, tf_keras=t.get("tf_keras"),
                             migrated=question.get("migrated")) for t in question["targets"]]
    worst = max((a.status for a in answers), key=ANSWERS.index)
    return {"model": question["model"], "source": question["source"], "home": question["home"],
            "asked": list(route), "migrated_model": question.get("migrated"), "verdict": worst,
            "exit_code": max(a.exit_code for a in answers),
            "dependencies": question.get("dependencies"),  # the project files the sides were read from, or null
            "targets": [{**_one(a), "spec": t.get("spec")} for a, t in zip(answers, question["targets"])]}


def failing_cells(section: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The cells that make a check fail: the user's route in each target it does not survive (for JUnit and gate)."""
    found = []
    for target in section["targets"]:
        if target["exit_code"] and target["verdict"] != UNTESTED:
            fmt, loader = target["route"]
            found.append((section["source"], target["target"], section["model"], fmt, loader))
    return found


def targets_of(section: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    """The check's targets, as report.json holds them."""
    return list(section["targets"])


def check_json(report: Mapping[str, Any], handed: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """check.json: report.json's `check` with what --migrate handed over per target, the migration, and the first
    target's fields at the top level (a single --to reads as one answer)."""
    check = report["check"]
    given = {h["target"]: dict(h) for h in handed}
    targets = [{**t, "migrated": given.get(t["target"])} for t in check["targets"]]
    migration = next((m for m in report.get("migrations") or [] if m["model"] == check.get("migrated_model")), None)
    return {**targets[0], **{k: v for k, v in check.items() if k != "targets"}, "migration": migration,
            "targets": targets}
