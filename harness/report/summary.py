"""The answers in a few lines: upgrade paths, what works per format, causes. Shared by every view.

Pure text and tables from report.json; the terminal colours it, report.md and report.html lay it out.
Nothing here decides a verdict or re-ranks a route: the report holds them (report/routes.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.advisor import words
from harness.agent.protocol import FORMATS, LOADERS

VERDICT_WORDS = {"safe": "safe", "partial": "partial", "broken": "broken", "untested": "untested"}
VERDICT_STYLES = {"safe": "green", "partial": "yellow", "broken": "bold red", "untested": "dim"}
VERDICT_SYMBOLS = {"safe": "✅", "partial": "⚠️", "broken": "❌", "untested": "➖"}
VERDICT_RANK = {"broken": 0, "partial": 1, "untested": 2, "safe": 3}  # what a reader must see first
# How a sentence names a route that asks this change of the user.
_VIA = {"option": "with", "serving": "via", "code": "via", "tf_keras": "with", "migrated": "via"}

Report = Mapping[str, Any]
Path_ = Mapping[str, Any]


def _version(text: object) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", str(text or ""))[:3])


def _age(env: Mapping[str, Any]) -> tuple[Any, ...]:
    """How new an environment is: TensorFlow, then Keras (Keras 3 after tf-keras), then Python; an existing file's
    pseudo-environment (no image) is older than any."""
    if env.get("image") is None and (env.get("spec") or {}).get("artifact"):
        return ((),)
    return (_version(env.get("tensorflow")), int(env.get("keras_major") or 0), _version(env.get("keras")),
            _version(env.get("python")))


def is_upgrade(report: Report, path: Path_) -> bool:
    """Whether a path moves to a newer environment: the move people make; a downgrade is a rollback. Environments
    of the same versions are ordered as the matrix lists them."""
    ages = {e["id"]: (_age(e), i) for i, e in enumerate(report["environments"])}
    return ages.get(path["source"], ((), -1)) < ages.get(path["target"], ((), -1))


def upgrade_paths(report: Report) -> list[dict[str, Any]]:
    """The paths between two environments (the diagonal is each environment's home), upgrades first."""
    paths = [p for p in report["paths"] if p["source"] != p["target"]]
    return sorted(paths, key=lambda p: not is_upgrade(report, p))


def split_paths(report: Report) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(upgrades, downgrades), each in grid order."""
    paths = upgrade_paths(report)
    ups = [p for p in paths if is_upgrade(report, p)]
    return ups, [p for p in paths if not is_upgrade(report, p)]


def labels(report: Report) -> dict[str, str]:
    """A short readable label per environment: its id without the parts every environment shares."""
    ids = [e["id"] for e in report["environments"]]
    parts = [i.split("-") for i in ids]
    common = set.intersection(*(set(p) for p in parts)) if len(parts) > 1 else set()
    return {i: "-".join(x for x in p if x not in common) or i for i, p in zip(ids, parts)}


def broken_of(path: Path_) -> str:
    """'27/82': routes that break of those that work at home."""
    return f"{path['routes_breaks']}/{path['routes_breaks'] + path['routes_portable']}"


def _loader_phrase(fmt: str, loader: str | None) -> str:
    """'.h5', '.h5 with load_model(compile=False)', 'SavedModel via tf.saved_model.load'."""
    if loader is None or (fmt in FORMATS and FORMATS[fmt].loader == loader) or loader not in LOADERS:
        return words.format_words(fmt)
    spec = LOADERS[loader]
    return f"{words.format_words(fmt)} {_VIA.get(spec.change, 'with')} {spec.words.split(',')[0]}"


def formats_sentence(path: Path_) -> str:
    """The path's answer per format: 'safe for .h5 with load_model(compile=False) and SavedModel via
    tf.saved_model.load; partly for weights .h5 (3/7); not for .keras'."""
    entries = path.get("formats") or []
    if not entries:
        return "nothing works at home to move"
    safe = [e for e in entries if e["survive"] == e["models"]]
    partly = [e for e in entries if 0 < e["survive"] < e["models"]]
    not_for = [e for e in entries if e["survive"] == 0]
    if not partly and not not_for and all(_loader_phrase(e["format"], e["loader"]) == words.format_words(e["format"])
                                          for e in safe):
        return "every format as it is"
    parts = []
    if safe:
        parts.append("safe for " + _join([_loader_phrase(e["format"], e["loader"]) for e in safe]))
    if partly:
        parts.append("partly for " + _join([f"{_loader_phrase(e['format'], e['loader'])} ({e['survive']}/"
                                             f"{e['models']})" for e in partly]))
    if not_for:
        parts.append("not for " + _join([words.format_words(e["format"]) for e in not_for]))
    return "; ".join(parts)


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caniuse(path: Path_, fixes: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """The path's format x loader table: 'works/of' per cell, shaded by share, causes as numbered notes."""
    table = path.get("table") or []
    formats = list(dict.fromkeys(e["format"] for e in table))
    loaders = [x for x in LOADERS if any(e["loader"] == x for e in table)]
    notes: dict[str, int] = {}
    rows = []
    for fmt in formats:
        cells: list[dict[str, Any] | None] = []
        for loader in loaders:
            entry = next((e for e in table if e["format"] == fmt and e["loader"] == loader), None)
            if entry is None:
                cells.append(None)
                continue
            marks = [notes.setdefault(c, len(notes) + 1) for c in entry["causes"]]
            share = entry["works"] / entry["of"] if entry["of"] else 0.0
            cells.append({"text": f"{entry['works']}/{entry['of']}", "share": share, "notes": marks,
                          "shade": "all" if share == 1 else "none" if share == 0 else "some",
                          "target_only": entry["target_only"]})
        rows.append({"format": fmt, "words": words.format_words(fmt), "cells": cells})
    return {"loaders": [{"name": x, "words": words.loader_words(x)} for x in loaders], "rows": rows,
            "notes": [{"n": n, "cause": c, "fix": (fixes or {}).get(c)} for c, n in notes.items()]}


def headline(report: Report) -> str:
    """'default: 10 upgrade paths: 6 safe, 4 partial (10 downgrades) · exit 0 (fail on breaks)'."""
    ups, downs = split_paths(report)
    counts = {v: sum(1 for p in ups if p["verdict"] == v) for v in VERDICT_WORDS}
    shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "none"
    verdict = report["verdict"]
    return (f"{report['matrix']['name']}: {len(ups)} upgrade path(s): {shown}"
            + (f" ({len(downs)} downgrade(s))" if downs else "")
            + f" · exit {verdict['exit_code']} ({gate_words(verdict)})")


def gate_words(verdict: Mapping[str, Any]) -> str:
    """What decided the exit code: 'fail on breaks', or 'the check's answer'."""
    fail_on = verdict.get("fail_on", "breaks")
    return "the check's answer" if fail_on == "check" else f"fail on {fail_on}"


def outcome(verdict: Mapping[str, Any]) -> str:
    """One phrase for the gate: 'nothing new breaks', or what broke it."""
    parts = []
    if verdict["unexpected"]:
        parts.append(f"{len(verdict['unexpected'])} unexpected")
    if verdict["regressions"]:
        parts.append(f"{len(verdict['regressions'])} regression(s)")
    return ", ".join(parts) or "nothing new breaks"


def cause_words(cause: Mapping[str, Any]) -> str:
    """'153 cells break, 57 never work; 8 pairs'."""
    parts = []
    if cause["breaks"]:
        unexpected = cause.get("breaks_unexpected", 0)
        parts.append(f"{cause['breaks']} break" + (f" ({unexpected} unexpected)" if unexpected else ""))
    if cause["never_works"]:
        parts.append(f"{cause['never_works']} never work")
    return ", ".join(parts) + f"; {len(cause['pairs'])} pair(s)"


def at_home(report: Report, names: Mapping[str, str]) -> list[str]:
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
    where = "shows at home in " + ", ".join(shows) if shows else "does not show at home"
    crossing = len(hazard.get("pairs_failing", []))
    return (f"{hazard['model']} ({', '.join(hazard['hazards'])}): {where}"
            + (f"; differs on {crossing} path(s)" if crossing else ""))


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """Lines of at most `width` characters, broken between words (a word longer than a line stands alone)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines
