"""The answers in a few lines: upgrade paths, what works per format, causes. Shared by every view.

Pure text and tables from report.json; the terminal colours it, report.md and report.html lay it out.
Nothing here decides a verdict or re-ranks a route: the report holds them (report/routes.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

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
P = TypeVar("P", bound=Mapping[str, Any])


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


def by_interest(report: Report, paths: Sequence[P]) -> list[P]:
    """Upgrade paths in the order people ask about them: those that cross from Keras 2 to Keras 3 first, from
    TensorFlow's own Keras before tf-keras, the newest source and the nearest target first; then the rest."""
    envs = {e["id"]: e for e in report["environments"]}

    def key(path: P) -> tuple[Any, ...]:
        source, target = envs.get(path["source"], {}), envs.get(path["target"], {})
        crosses = source.get("keras_major") == 2 and target.get("keras_major") == 3
        legacy = source.get("keras_package") == "tf-keras"
        return (not crosses, legacy, tuple(-x for x in _flat(_age(source))), _flat(_age(target)))

    return sorted(paths, key=key)


def _flat(age: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(x for part in age for x in (part if isinstance(part, tuple) else (part,)))


def labels(report: Report) -> dict[str, str]:
    """A short readable label per environment, in the SPEC syntax `check` takes: '2.16.2+keras3.3.3', '2.12.1 py3.9'
    (the Python shown where it is not the one most environments have); an id of another shape is kept as it is."""
    parsed = {e["id"]: _spec_parts(e["id"]) for e in report["environments"]}
    pythons = [p[0] for p in parsed.values() if p is not None]
    common = max(set(pythons), key=pythons.count) if pythons else None
    out = {}
    for env_id, parts in parsed.items():
        if parts is None:
            out[env_id] = env_id
            continue
        python, spec = parts
        out[env_id] = spec + (f" py{python}" if python != common else "")
    if len(set(out.values())) < len(out):  # two environments told apart only by what the labels leave out
        return {i: i for i in out}
    return out


def _spec_parts(env_id: str) -> tuple[str, str] | None:
    """(python, '2.16.2+keras3.3.3') of an id the matrix derived (py3.11-tf2.16.2-keras3.3.3), else None."""
    parts = env_id.split("-")
    if len(parts) < 2 or not parts[0].startswith("py") or not parts[1].startswith("tf"):
        return None
    extra = ["tf-keras" + p[len("tfkeras"):] if p.startswith("tfkeras") else p for p in parts[2:]]
    return parts[0][2:], "+".join([parts[1][2:], *extra])


def broken_of(path: Path_) -> str:
    """'27/82': routes that break of those that work at home."""
    return f"{path['routes_breaks']}/{path['routes_breaks'] + path['routes_portable']}"


# Short names for a terminal line.
SHORT_FORMATS = {"h5": ".h5", "keras": ".keras", "savedmodel": "SavedModel", "weights_h5": "weights.h5",
                 "tf_checkpoint": "checkpoint", "json": "JSON", "export": "export()", "seed": "seed"}


def _usual(fmt: str, loader: str | None) -> bool:
    return loader is None or loader not in LOADERS or (fmt in FORMATS and FORMATS[fmt].loader == loader)


def loader_short(loader: str) -> str:
    """'compile=False', 'custom_objects', 'tf.saved_model.load', 'TFSMLayer', 'rebuild in code'."""
    text = words.loader_words(loader)
    inner = re.search(r"\(([^)=]+)(=[^)]*)?\)", text)
    if inner and inner.group(1) != "x":
        return inner.group(0)[1:-1].replace("=...", "")
    return text.split(",")[0].split(" + ")[0].removeprefix("keras.layers.")


def _loader_phrase(entry: Mapping[str, Any]) -> str:
    """'.h5', '.h5 with load_model(compile=False)', 'SavedModel via tf.saved_model.load' (and how many it carries
    when other models of the format take other routes)."""
    fmt, loader = entry["format"], entry["loader"]
    if _usual(fmt, loader):
        text = words.format_words(fmt)
    else:
        text = f"{words.format_words(fmt)} {_VIA.get(LOADERS[loader].change, 'with')} {words.loader_words(loader)}"
        text = text.split(",")[0]
    if entry.get("loader_models", entry["survive"]) < entry["survive"]:
        text += f" ({entry['loader_models']} of {entry['models']}, the rest by other routes)"
    return text


def formats_sentence(path: Path_) -> str:
    """The path's answer per format: 'safe for .h5 with load_model(compile=False) and SavedModel via
    tf.saved_model.load; partly for weights .h5 (3/7); not for .keras'."""
    entries = path.get("formats") or []
    if not entries:
        return "nothing works at home to move"
    safe = [e for e in entries if e["survive"] == e["models"]]
    partly = [e for e in entries if 0 < e["survive"] < e["models"]]
    not_for = [e for e in entries if e["survive"] == 0]
    if not partly and not not_for and all(_usual(e["format"], e["loader"]) for e in safe):
        breaks = path.get("routes_breaks", 0)
        return "every format as it is" + (f"; {breaks} other route(s) break ({', '.join(path['causes'][:3])})"
                                          if breaks else "")
    parts = []
    if safe:
        parts.append("safe for " + _join([_loader_phrase(e) for e in safe]))
    if partly:
        parts.append("partly for " + _join([f"{_loader_phrase(e)} ({e['survive']}/{e['models']})" for e in partly]))
    if not_for:
        parts.append("not for " + _join([words.format_words(e["format"]) for e in not_for]))
    return "; ".join(parts)


def formats_line(path: Path_) -> str:
    """The same answer in a terminal's few words: 'not .keras, JSON · .h5: compile=False · SavedModel:
    tf.saved_model.load · weights.h5 4/9 · rest as is'."""
    return " · ".join(formats_items(path))


def formats_items(path: Path_) -> list[str]:
    """formats_line()'s parts, most pressing first: what does not survive, what needs another loader, what partly
    survives, and whether the rest works as it is."""
    entries = path.get("formats") or []
    if not entries:
        return ["nothing works at home to move"]
    not_for = [SHORT_FORMATS.get(e["format"], e["format"]) for e in entries if e["survive"] == 0]
    partly = [f"{SHORT_FORMATS.get(e['format'], e['format'])} {e['survive']}/{e['models']}" for e in entries
              if 0 < e["survive"] < e["models"]]
    changed = [f"{SHORT_FORMATS.get(e['format'], e['format'])}: {loader_short(e['loader'])}" for e in entries
               if e["survive"] == e["models"] and not _usual(e["format"], e["loader"])]
    as_is = [e for e in entries if e["survive"] == e["models"] and _usual(e["format"], e["loader"])]
    if not (not_for or partly or changed):
        breaks = path.get("routes_breaks", 0)
        return ["every format as it is" + (f", but {breaks} other route(s) break: {', '.join(path['causes'][:2])}"
                                           if breaks else "")]
    parts = ([f"not {', '.join(not_for)}"] if not_for else []) + changed + partly
    return parts + (["rest as is"] if as_is else [])


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
            + (f" (and {len(downs)} downgrade(s))" if downs else "")
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


def release_lines(report: Report) -> list[str]:
    """What is new since the baseline, one line per environment a release moved: 'keras 3.15.1 → 3.16.0 in
    py3.13-...: 2 routes newly broken, 1 fixed, 0 spurious'; environments added and gone; none without a baseline."""
    found = report.get("releases")
    if not found:
        return []
    lines = [f"{c['words']} in {c['env']}: {len(c['regressed'])} route(s) newly broken, {len(c['fixed'])} fixed, "
             f"{len(c['spurious'])} spurious" for c in found["changes"]]
    lines += [f"new environment {env}" for env in found["added"]]
    lines += [f"environment {env} is gone" for env in found["removed"]]
    return lines or ["no release since the baseline: the same versions as the night before"]


def release_route(entry: Mapping[str, Any]) -> str:
    """One route a release changed: 'py3.11-tf2.15.1 → py3.13-... dense/keras/load_model (pass → error)'."""
    return (f"{entry['source']} → {entry['target']} {entry['model']}/{entry['format']}/{entry['loader']} "
            f"({entry['old']} → {entry['status']})")
