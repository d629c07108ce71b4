"""How the harness says things: formats, loaders, routes, figures, a bisect's boundary. One phrasing for every view.

The terminal, `check`'s and `bisect`'s screens, report.md, report.html and the hand-over's
manifest all call these; none of them words a route or a figure on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.advisor.ranking import Route
from harness.agent.protocol import FORMATS, LOADERS

MAX_VERIFIED = 4  # verified routes shown per migrated model; report.json holds them all
MARKS = {"good": "ok", "bad": "x", "unknown": "?", "unbuilt": "no image"}


def format_words(name: str) -> str:
    """'.keras', 'SavedModel', ..."""
    return FORMATS[name].words if name in FORMATS else name


def loader_words(name: str | None) -> str:
    """'keras.models.load_model', 'load_model(compile=False)', ..."""
    return LOADERS[name].words if name in LOADERS else str(name)


def route_words(fmt: str, loader: str, *, tf_keras: bool = False) -> str:
    """'.keras / keras.models.load_model' (with ' with tf-keras' when loaded by tf-keras)."""
    return f"{format_words(fmt)} / {loader_words(loader)}" + (" with tf-keras" if tf_keras else "")


def steps(route: Route) -> str:
    """The whole route: '.keras / keras.models.load_model', or a migration's steps, where each happens."""
    if route.made_with is None:
        return route_words(route.format, route.loader, tf_keras=route.tf_keras)
    legacy = " with tf-keras" if route.tf_keras else ""
    return (f"load with {loader_words(route.made_with)} in {route.made_in}, save as {format_words(route.format)}, "
            f"load with {loader_words(route.loader)}{legacy}" + (f" in {route.env}" if route.env else ""))


def step(route: Route) -> str:
    """What is done in the target, under a heading that says where (a migrated file: how it was made first)."""
    if route.made_with is None:
        return route_words(route.format, route.loader)
    return (f"saved as {format_words(route.format)} (loaded with {loader_words(route.made_with)}), then "
            f"{loader_words(route.loader)}")


def short(route: Route) -> str:
    """A table's few words: '.keras / keras.models.load_model (migrated, tf-keras)'."""
    how = [w for w, on in (("migrated", route.made_with is not None), ("tf-keras", route.tf_keras)) if on]
    return route_words(route.format, route.loader) + (f" ({', '.join(how)})" if how else "")


def difference(bit_exact: bool | None, max_abs_diff: float | None, *, none: str = "-") -> str:
    """A difference in a table cell: 'bit-exact', '1.2e-07', or `none` when unknown."""
    if bit_exact:
        return "bit-exact"
    return none if max_abs_diff is None else f"{max_abs_diff:.2g}"


def within(bit_exact: bool | None, max_abs_diff: float | None) -> str:
    """'bit-exact' or 'within 1.2e-07' (of the reference)."""
    text = difference(bit_exact, max_abs_diff, none="")
    return text if bit_exact or not text else f"within {text}"


def figures(route: Route, tolerance: Mapping[str, float]) -> str:
    """'matches bit-exactly', or 'matches within 3e-07 (atol 1e-05 + rtol 1e-05)'."""
    if route.bit_exact:
        return "matches bit-exactly"
    if route.max_abs_diff is None:
        return "matches"
    return f"matches within {route.max_abs_diff:.2g} (atol {tolerance['atol']:g} + rtol {tolerance['rtol']:g})"


def boundary(entry: Mapping[str, Any], start: str, end: str) -> str:
    """A bisected route's answer in one sentence: where it was last good and first bad, or that it always works."""
    if entry["first_bad"] is None:
        last = entry["last_good"] or start
        return f"works at every probed release, {start} to {last}" + ("" if last == end else
                                                                        f" ({end} could not try it)")
    return (f"last good {entry['last_good']}, first bad {entry['first_bad']}"
            + ("" if entry["adjacent"] else " (releases between were not probed)"))


def history(entry: Mapping[str, Any]) -> str:
    """'3.3.3 ok · 3.8.0 x · ...': what each probed release said of a route."""
    return " · ".join(f"{release} {MARKS.get(outcome, outcome)}" for release, outcome in entry["history"])


def monotone_note(entry: Mapping[str, Any]) -> str:
    """Why a boundary may mislead, if it may: a history that breaks and works again, or a search cut short."""
    if not entry["monotone"]:
        return "NOT MONOTONE: the probed releases break and work again; the boundary shown is the first one " \
               "(--every probes them all)"
    return str(entry.get("note") or "")


# ---------------------------------------------------------------------------- the advisor's sections in reports


def migration_rows(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per migrated model: what it is, how it was made, and its best verified routes per target."""
    rows = []
    for m in report.get("migrations") or []:
        origin = m["from"]
        made = (f"loaded {origin['model']}'s {format_words(origin['format'])} with {loader_words(m['loader'])} in "
                f"{m['env']}, saved as {', '.join(format_words(f) for f in m['formats'])}" if m["status"] == "made"
                else f"not made: {m['error'] or 'its save never ran'}")
        failed = [t for t in m.get("tried") or [] if t.get("status") != "ok"]
        if failed:
            made += " (first tried: " + "; ".join(f"{loader_words(t['loader'])}: {t['error']}" for t in failed) + ")"
        best: dict[str, dict[str, Any]] = {}
        for v in m["verified"]:
            best.setdefault(v["target"], v)
        verified = "; ".join(f"{target}: {route_words(v['format'], v['loader'])} "
                             f"({difference(v.get('bit_exact'), v.get('max_abs_diff'), none='–')})"
                             for target, v in list(best.items())[:MAX_VERIFIED])
        rows.append({"model": m["model"], "made": made, "verified": verified or "nowhere: no migrated file predicts "
                                                                                "like the original in a target",
                     "breaks": str(m["breaks"])})
    return rows


def bisect_rows(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The bisect's walk in one line and a row per route: its boundary, the cause there, the probed history."""
    found = report.get("bisect")
    if not found:
        return None
    walk = (f"{found['package']} {found['from']} → {found['to']}: {len(found['releases'])} releases listed by "
            f"{found['index']}; {len(found['probed'])} probed ({', '.join(found['probed'])})"
            + (f", at most {found['budget']} per route" if found.get("budget") else ", every one"))
    rows = []
    for r in found["routes"]:
        rows.append({"route": route_words(r["format"], r["loader"]) + (" (yours)" if r["yours"] else ""),
                     "boundary": boundary(r, found["from"], found["to"]), "cause": r.get("cause") or "",
                     "error": (r.get("error") or "") + (f" (at the root: {r['root']})" if r.get("root") else ""),
                     "hint": r.get("hint") or "", "note": monotone_note(r), "history": history(r)})
    return {"walk": walk, "rows": rows}


def markdown(report: Mapping[str, Any], escape: Callable[[object], str]) -> list[str]:
    """The advisor's Markdown sections (none when the run had neither migrations nor a bisect)."""
    lines: list[str] = []
    rows = migration_rows(report)
    if rows:
        lines += ["## Migrations", "", "| migrated model | how it was made | verified in (best route) |",
                  "|---|---|---|"]
        lines += [f"| `{r['model']}` | {escape(r['made'])} | {escape(r['verified'])} |" for r in rows]
        lines.append("")
    found = bisect_rows(report)
    if found:
        lines += ["## Bisect", "", escape(found["walk"]), "", "| route | boundary | cause | probed |",
                  "|---|---|---|---|"]
        lines += [f"| {escape(r['route'])} | {escape(r['boundary'])} | {escape(r['cause'] or r['error'])} "
                  f"{escape(r['note'])} | {escape(r['history'])} |" for r in found["rows"]]
        lines.append("")
    return lines
