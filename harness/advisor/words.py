"""The advisor's answers in words, for every view: migrated models (how made, where verified) and a bisect's boundaries.

report.json holds them as data (`migrations`, `bisect`); the Markdown and HTML views render these rows.
"""

from __future__ import annotations

from typing import Any

from harness.agent.protocol import FORMATS, LOADERS

MAX_VERIFIED = 4  # verified routes shown per migrated model; report.json holds them all
MARKS = {"good": "ok", "bad": "x", "unknown": "?", "unbuilt": "no image"}


def _loader(name: str | None) -> str:
    return LOADERS[name].words if name in LOADERS else str(name)


def _format(name: str) -> str:
    return FORMATS[name].words if name in FORMATS else name


def _difference(entry: dict[str, Any]) -> str:
    if entry.get("bit_exact"):
        return "bit-exact"
    diff = entry.get("max_abs_diff")
    return "–" if diff is None else f"Δ {diff:.2g}"


def migrations(report: dict[str, Any]) -> list[dict[str, str]]:
    """One row per migrated model: what it is, how it was made, and its best verified routes per target."""
    rows = []
    for m in report.get("migrations") or []:
        origin = m["from"]
        made = (f"loaded {origin['model']}'s {_format(origin['format'])} with {_loader(m['loader'])} in {m['env']}, "
                f"saved as {', '.join(_format(f) for f in m['formats'])}" if m["status"] == "made" else
                f"not made: {m['error'] or 'its save never ran'}")
        failed = [t for t in m.get("tried") or [] if t.get("status") != "ok"]
        if failed:
            made += " (first tried: " + "; ".join(f"{_loader(t['loader'])}: {t['error']}" for t in failed) + ")"
        best: dict[str, dict[str, Any]] = {}
        for v in m["verified"]:
            best.setdefault(v["target"], v)
        verified = "; ".join(f"{target}: {_format(v['format'])} / {_loader(v['loader'])} ({_difference(v)})"
                             for target, v in list(best.items())[:MAX_VERIFIED])
        rows.append({"model": m["model"], "made": made, "verified": verified or "nowhere: no migrated file predicts "
                                                                                "like the original in a target",
                     "breaks": str(m["breaks"])})
    return rows


def bisect(report: dict[str, Any]) -> dict[str, Any] | None:
    """The bisect's walk in one line and a row per route: its boundary, the cause there, the probed history."""
    found = report.get("bisect")
    if not found:
        return None
    walk = (f"{found['package']} {found['from']} → {found['to']}: {len(found['releases'])} releases listed by "
            f"{found['index']}; {len(found['probed'])} probed ({', '.join(found['probed'])})"
            + (f", at most {found['budget']} per route" if found.get("budget") else ", every one"))
    rows = []
    for r in found["routes"]:
        if r["first_bad"] is None:
            boundary = f"works at every probed release (to {r['last_good'] or found['from']})"
        else:
            boundary = f"last good {r['last_good']}, first bad {r['first_bad']}" + (
                "" if r["adjacent"] else " (releases between not probed)")
        note = "NOT MONOTONE: it breaks, then works again" if not r["monotone"] else r.get("note") or ""
        rows.append({"route": f"{_format(r['format'])} / {_loader(r['loader'])}" + (" (yours)" if r["yours"] else ""),
                     "boundary": boundary, "cause": r.get("cause") or "",
                     "error": (r.get("error") or "") + (f" (at the root: {r['root']})" if r.get("root") else ""),
                     "hint": r.get("hint") or "", "note": note,
                     "history": " · ".join(f"{rel} {MARKS.get(o, o)}" for rel, o in r["history"])})
    return {"walk": walk, "rows": rows}


def markdown(report: dict[str, Any], escape: Any) -> list[str]:
    """The Markdown sections (none when the run had neither migrations nor a bisect)."""
    lines: list[str] = []
    rows = migrations(report)
    if rows:
        lines += ["## Migrations", "", "| migrated model | how it was made | verified in (best route) |",
                  "|---|---|---|"]
        lines += [f"| `{r['model']}` | {escape(r['made'])} | {escape(r['verified'])} |" for r in rows]
        lines.append("")
    found = bisect(report)
    if found:
        lines += ["## Bisect", "", escape(found["walk"]), "", "| route | boundary | cause | probed |",
                  "|---|---|---|---|"]
        lines += [f"| {escape(r['route'])} | {escape(r['boundary'])} | {escape(r['cause'] or r['error'])} "
                  f"{escape(r['note'])} | {escape(r['history'])} |" for r in found["rows"]]
        lines.append("")
    return lines
