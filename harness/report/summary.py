"""The answers in a few lines: upgrade paths, their verdicts and causes, what works. Shared by every view.

Pure text from report.json; the terminal colours it, report.md and report.html lay it out.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from harness.agent.protocol import FORMATS, LOADERS

VERDICT_WORDS = {"safe": "safe", "partial": "partial", "broken": "broken", "untested": "untested"}
VERDICT_STYLES = {"safe": "green", "partial": "yellow", "broken": "bold red", "untested": "dim"}
VERDICT_SYMBOLS = {"safe": "✅", "partial": "⚠️", "broken": "❌", "untested": "➖"}


def labels(report: Mapping[str, Any]) -> dict[str, str]:
    """A short label per environment: A, B, C ... in report order (AA, AB ... beyond 26)."""
    letters = string.ascii_uppercase
    ids = [e["id"] for e in report["environments"]]
    return {env: letters[i] if i < 26 else letters[i // 26 - 1] + letters[i % 26] for i, env in enumerate(ids)}


def legend(report: Mapping[str, Any], width: int) -> list[str]:
    """'A=py3.9-tf2.12.1 B=...' wrapped to width."""
    lines: list[str] = []
    line = ""
    for env, label in labels(report).items():
        item = f"{label}={env}"
        if line and len(line) + 1 + len(item) > width:
            lines.append(line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    return [*lines, line] if line else lines


def upgrade_paths(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The paths between two environments (the diagonal is each environment's home)."""
    return [p for p in report["paths"] if p["source"] != p["target"]]


def broken_of(path: Mapping[str, Any]) -> str:
    """'27/82': routes that break of those that work at home."""
    return f"{path['routes_breaks']}/{path['routes_breaks'] + path['routes_portable']}"


def path_words(path: Mapping[str, Any], names: Mapping[str, str], *, causes: int = 1) -> str:
    """'A→B partial 27/82 weights-layout-changed +2'."""
    head = f"{names.get(path['source'], path['source'])}→{names.get(path['target'], path['target'])} {path['verdict']}"
    if path["verdict"] in ("partial", "broken"):
        head += f" {broken_of(path)}"
        shown = path["causes"][:causes]
        more = len(path["causes"]) - len(shown)
        head += "".join(f" {c}" for c in shown) + (f" +{more}" if more > 0 else "")
    return head


def route_words(fmt: str, loader: str) -> str:
    """'.keras / load_model'."""
    fmt_spec, loader_spec = FORMATS.get(fmt), LOADERS.get(loader)
    return f"{fmt_spec.words if fmt_spec else fmt} / {loader_spec.words if loader_spec else loader}"


def works_words(path: Mapping[str, Any], limit: int = 2) -> str:
    """What survives the path: '.keras / load_model for 8 of 10 models (bit-exact); ...', or 'nothing'."""
    entries = path.get("works_by_route") or []
    if not entries:
        return "nothing that works at home survives"
    parts = []
    for e in entries[:limit]:
        exact = "bit-exact" if e["bit_exact"] else f"within {e['max_abs_diff']:.2g}"
        parts.append(f"{route_words(e['format'], e['loader'])} for {e['models']} of {path['models']} model(s) "
                     f"({exact})")
    return "; ".join(parts)


def headline(report: Mapping[str, Any]) -> str:
    """'default: 20 upgrade paths: 6 safe, 14 partial · exit 0 (fail on breaks)'."""
    paths = upgrade_paths(report)
    counts = {v: sum(1 for p in paths if p["verdict"] == v) for v in VERDICT_WORDS}
    shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "none"
    verdict = report["verdict"]
    return (f"{report['matrix']['name']}: {len(paths)} upgrade path(s): {shown} · exit {verdict['exit_code']} "
            f"(fail on {verdict.get('fail_on', 'breaks')})")


def cause_words(cause: Mapping[str, Any]) -> str:
    """'153 cells break, 57 never work; 8 pairs'."""
    parts = []
    if cause["breaks"]:
        unexpected = cause.get("breaks_unexpected", 0)
        parts.append(f"{cause['breaks']} break" + (f" ({unexpected} unexpected)" if unexpected else ""))
    if cause["never_works"]:
        parts.append(f"{cause['never_works']} never work")
    return ", ".join(parts) + f"; {len(cause['pairs'])} pair(s)"


def at_home(report: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    """Per environment: what never works at home, and why (by design, the model's own, never the upgrade's)."""
    lines = []
    for path in report["paths"]:
        if path["source"] != path["target"]:
            continue
        never = path["routes_never_works"]
        why = ", ".join(path.get("home_causes", [])[:3])
        lines.append(f"{names.get(path['source'], path['source'])} {path['verdict']}: "
                     f"{path['routes_portable']} route(s) work at home"
                     + (f", {never} never work" + (f" ({why})" if why else "") if never else ""))
    return lines


def hazard_words(hazard: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """'label_order (label-order): shows at home in A B C D E'."""
    shows = [names.get(env, env) for env, h in hazard["environments"].items() if h["shows"]]
    where = "shows at home in " + " ".join(shows) if shows else "does not show at home"
    crossing = len(hazard.get("pairs_failing", []))
    return (f"{hazard['model']} ({', '.join(hazard['hazards'])}): {where}"
            + (f"; differs on {crossing} path(s)" if crossing else ""))


def cut(text: str, width: int) -> str:
    """One line of at most `width` characters (its indent kept)."""
    indent = text[: len(text) - len(text.lstrip(" "))]
    text = indent + " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def grid_rows(items: Sequence[str], width: int, gap: int = 3) -> list[str]:
    """Items laid out in as many columns as fit the width."""
    if not items:
        return []
    column = max(len(i) for i in items)
    per_row = max(1, (width + gap) // (column + gap))
    rows = []
    for start in range(0, len(items), per_row):
        rows.append((" " * gap).join(i.ljust(column) for i in items[start:start + per_row]).rstrip())
    return rows
