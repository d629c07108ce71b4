"""Routes, their homes, and a verdict per upgrade path: the answers the report opens with.

A route is (model, format, loader). Its home is where the model comes from: the cell source ->
source, or, for an existing artifact, the environment its reference predictions come from. For a
path source -> target every route is:

- portable: it works at home and in the target;
- breaks: it works at home and fails in the target (the compatibility findings);
- never_works: it fails at home too, or cannot even be saved there (a property of the model or the
  loader, never the upgrade's);
- target_only: the loader does not exist at home but works in the target (TFSMLayer reading an older
  SavedModel): a migration that works, listed with what works, never counted against the upgrade;
- unsupported: the target has no such loader, or the source cannot write the format;
- hazard: a probe whose job is to show a hazard (label order, TF1 re-initialisation, seeding);
- skipped: never ran (an image did not build, or the run did not reach it).

A path is safe when no route breaks, partial when some do and others survive, broken when routes
work at home and none survives, untested when nothing works at home or an environment failed. Each
path also says, per format and loader, how many models survive (its `table`) and, in words, for
which formats it is safe. Working routes are ranked by harness/advisor/ranking.py, the one ranking.
Pure functions over report cells.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.advisor import ranking
from harness.agent.protocol import FORMATS
from harness.report.schema import Cell
from harness.report.statuses import FAILING, WORKING

ROUTE_STATUSES = ("portable", "breaks", "never_works", "target_only", "unsupported", "hazard", "skipped")
VERDICTS = ("safe", "partial", "broken", "untested")
MAX_WORKS = 5  # portable routes listed per path



def route_status(cell: Mapping[str, Any], home: Mapping[str, Any] | None, hazard: bool) -> str:
    """What one cell says of its route on its path, given the same route's cell at home."""
    if hazard:
        return "hazard"
    unsaved = cell["status"] == "skipped" and cell.get("stage") == "save"  # the source could not even save it
    home_status = "unsaved" if unsaved else home["status"] if home is not None else "skipped"
    if home_status == "unsupported" and cell["status"] == "pass":
        return "target_only"
    if "unsupported" in (cell["status"], home_status):
        return "unsupported"
    if home_status != "unsaved" and "skipped" in (cell["status"], home_status):
        return "skipped"
    if home_status != "pass":
        return "never_works"
    return "portable" if cell["status"] == "pass" else "breaks"


def annotate(cells: Sequence[Cell], homes: Mapping[str, Mapping[str, str]], hazards: set[str]) -> None:
    """Set every cell's route_status; `homes` maps model -> source -> the environment that is its home."""
    by_key = {(c["source"], c["target"], c["model"], c["format"], c["loader"]): c for c in cells}
    for c in cells:
        home_env = homes.get(c["model"], {}).get(c["source"], c["source"])
        home = by_key.get((c["source"], home_env, c["model"], c["format"], c["loader"]))
        c["route_status"] = route_status(c, home, c["model"] in hazards)


def best_cells_first(cells: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Working routes, best first (harness/advisor/ranking.py: the least change, then the closest predictions)."""
    return sorted(cells, key=ranking.cell_key)


def route_entry(cell: Mapping[str, Any]) -> dict[str, Any]:
    """A route as a path or a cause lists it."""
    return {"model": cell["model"], "format": cell["format"], "loader": cell["loader"],
            "bit_exact": cell.get("bit_exact"), "max_abs_diff": cell.get("max_abs_diff")}


def verdict(counts: Mapping[str, int], environments_ok: bool) -> str:
    """safe, partial, broken or untested, from a path's route counts."""
    if not environments_ok or counts.get("portable", 0) + counts.get("breaks", 0) == 0:
        return "untested"
    if counts.get("breaks", 0) == 0:
        return "safe"
    return "partial" if counts.get("portable", 0) else "broken"


def paths(cells: Sequence[Cell], env_ids: Sequence[str], targets: Sequence[str],
          env_status: Mapping[str, str]) -> list[dict[str, Any]]:
    """One entry per ordered pair of environments (sources include existing artifacts), in grid order."""
    by_pair: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for c in cells:
        by_pair[(c["source"], c["target"])].append(c)
    out = []
    for source in env_ids:
        for target in targets:
            pair = by_pair.get((source, target), [])
            if pair:
                ok = env_status.get(source, "ok") == "ok" and env_status.get(target, "ok") == "ok"
                out.append(_path(source, target, pair, ok))
    return out


def _path(source: str, target: str, pair: Sequence[Cell], environments_ok: bool) -> dict[str, Any]:
    counts = Counter(c["route_status"] for c in pair)
    breaking = [c for c in pair if c["route_status"] == "breaks"]
    working = [c for c in pair if c["route_status"] in WORKING]
    table = _table(pair)
    return {
        "source": source, "target": target, "verdict": verdict(counts, environments_ok),
        "routes_portable": counts.get("portable", 0), "routes_breaks": counts.get("breaks", 0),
        "routes_never_works": counts.get("never_works", 0), "routes_unsupported": counts.get("unsupported", 0),
        "routes_target_only": counts.get("target_only", 0),
        "routes_hazard": counts.get("hazard", 0), "routes_skipped": counts.get("skipped", 0),
        "breaks_unexpected": sum(1 for c in breaking if not c.get("expected")),
        "causes": _ranked(c.get("cause") for c in breaking),
        "home_causes": _ranked(c.get("cause") for c in pair if c["route_status"] == "never_works"
                               and (c["status"] in FAILING or c.get("stage") == "save")),
        "works": [route_entry(c) for c in best_cells_first(working)][:MAX_WORKS],
        "works_by_route": [e for e in table if e["works"]][:MAX_WORKS],
        "table": table,
        "formats": _formats(pair, table),
        "models": len({c["model"] for c in pair if c["route_status"] in ("portable", "breaks")}),
        "models_portable": sorted({c["model"] for c in pair if c["route_status"] == "portable"}),
        "models_broken": sorted(_models_without_route(pair)),
    }


def _table(pair: Sequence[Cell]) -> list[dict[str, Any]]:
    """Per (format, loader): of the models it works for at home, how many it carries to the target, and why the
    others break; a route the home lacks counts the models that work at home in its format. Best first."""
    at_home: dict[str, set[str]] = defaultdict(set)  # format -> models with a route that works at home
    groups: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for c in pair:
        if c["route_status"] in ("portable", "breaks"):
            at_home[c["format"]].add(c["model"])
        if c["route_status"] in ("portable", "breaks", "target_only"):
            groups[(c["format"], c["loader"])].append(c)
    entries = []
    for (fmt, loader), members in groups.items():
        works = [c for c in members if c["route_status"] in WORKING]
        only_there = all(c["route_status"] == "target_only" for c in members)
        of = len(at_home[fmt]) if only_there else len({c["model"] for c in members})
        diffs = [c["max_abs_diff"] for c in works if isinstance(c.get("max_abs_diff"), (int, float))]
        entries.append({"format": fmt, "loader": loader, "works": len({c["model"] for c in works}), "of": of,
                        "target_only": only_there, "change": ranking.change_name(fmt, loader),
                        "bit_exact": bool(works) and all(c.get("bit_exact") for c in works),
                        "max_abs_diff": max(diffs, default=None),
                        "causes": _ranked(c.get("cause") for c in members if c["route_status"] == "breaks")})
    return sorted(entries, key=lambda e: (not e["works"], ranking.group_key(
        e["format"], e["loader"], models=e["works"], bit_exact=e["bit_exact"], max_abs_diff=e["max_abs_diff"])))


def _formats(pair: Sequence[Cell], table: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per format that works at home: how many of its models survive by some route, and the loader to take: the one
    most of them take as their least-change working route (`loader_models` of them), in the table's order."""
    at_home: dict[str, set[str]] = defaultdict(set)
    working: dict[tuple[str, str], list[Cell]] = defaultdict(list)  # (format, model) -> its working cells
    for c in pair:
        if c["route_status"] in ("portable", "breaks"):
            at_home[c["format"]].add(c["model"])
        if c["route_status"] in WORKING:
            working[(c["format"], c["model"])].append(c)
    out = []
    for fmt in dict.fromkeys(e["format"] for e in table):
        if not at_home[fmt]:
            continue
        usual = FORMATS[fmt].loader if fmt in FORMATS else None
        chosen = [min(working[(fmt, m)], key=ranking.cell_key)["loader"] for m in sorted(at_home[fmt])
                  if working[(fmt, m)]]
        # A loader that asks nothing of the user (load_model, or with the model's own custom objects) is the
        # format's usual one; of the others, the one most models take (of equally many, the least change).
        best = [usual if ranking.change_name(fmt, x) == "as_is" else x for x in chosen]
        counts = Counter(best)
        loader = min(counts, key=lambda x: (-counts[x], ranking.change(fmt, str(x)))) if counts else None
        count = counts[loader] if loader else 0
        out.append({"format": fmt, "models": len(at_home[fmt]), "survive": len(best), "loader": loader,
                    "loader_models": count,
                    "causes": _ranked(cause for e in table if e["format"] == fmt for cause in e["causes"])})
    return out


def _ranked(names: Iterable[str | None]) -> list[str]:
    counts = Counter(n for n in names if n)
    return [name for name, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _models_without_route(pair: Sequence[Cell]) -> set[str]:
    """Models with a route that works at home but none that survives in the target."""
    by_model: dict[str, Counter[str]] = defaultdict(Counter)
    for c in pair:
        by_model[c["model"]][c["route_status"]] += 1
    return {m for m, n in by_model.items() if n.get("breaks") and not n.get("portable")}


def hazards(cells: Sequence[Cell], hazard_models: Mapping[str, Mapping[str, Any]],
            env_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Per hazard probe: in which environments the hazard shows at home, and across which pairs its numbers differ."""
    out = []
    for name, model in hazard_models.items():
        mine = [c for c in cells if c["model"] == name]
        if not mine:
            continue
        at_home: dict[str, dict[str, Any]] = {}
        for env in env_ids:
            home = [c for c in mine if c["source"] == env and c["target"] == env]
            if home:
                shown = [c for c in home if c["status"] in FAILING]
                at_home[env] = {"shows": bool(shown), "statuses": dict(Counter(c["status"] for c in home)),
                                "detail": _detail(shown[0]) if shown else None}
        differs = sorted({(c["source"], c["target"]) for c in mine
                          if c["source"] != c["target"] and c["status"] in FAILING})
        out.append({"model": name, "hazards": list(model.get("hazards", [])),
                    "description": model.get("description", ""), "environments": at_home,
                    "pairs_failing": [list(p) for p in differs], "hint": _first_hint(mine)})
    return out


def _detail(cell: Mapping[str, Any]) -> str:
    error = cell.get("error") or {}
    if error:
        return f"{cell['status']}: {error.get('type')}: {error.get('message')}"
    return f"{cell['status']}: {cell.get('reason') or ''}"


def _first_hint(cells: Iterable[Mapping[str, Any]]) -> str | None:
    for c in cells:
        hint = c.get("hint") or (c.get("error") or {}).get("hint")
        if hint:
            return str(hint)
    return None
