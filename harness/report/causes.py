"""Failing cells grouped by cause, and the clean-up every message gets before it is shown or stored.

A cause is the hint rule that matched a cell's error (its name and fix), else the error type and a
normalised message; a drift is named by the hazard of the model that drifted. About 1,000 failing
cells of a five-environment matrix come down to a few dozen causes.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from harness.agent.protocol import ARTIFACTS_MOUNT, OUT_MOUNT, OUTPUTS_MOUNT, USER_MOUNT, USERDATA_MOUNT
from harness.hints import flag_for
from harness.report.statuses import FAILING

MAX_MESSAGE = 240  # characters of a message shown per cell; the whole one stays in the records
MAX_TRACEBACK = 2000  # a traceback without frames (a worker's own report) is cut to this
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
_NUMBER = re.compile(r"\b\d+(\.\d+)?\b")
_CARETS = re.compile(r"^\s*[\^~]+\s*$")  # Python 3.11's markers under a frame's code
_QUOTED = re.compile(r"'[^']{0,80}'|\"[^\"]{0,80}\"")
CODE_PREFIX = "/opt/harness-src/"  # where the harness code is mounted (plan.SOURCE_MOUNT), as tracebacks show it


def clean(text: str, *, source: str = "", target: str = "") -> str:
    """A message without terminal escapes, with container paths shown relative to the run directory."""
    text = _ANSI.sub("", text)
    for mount, shown in ((ARTIFACTS_MOUNT + "/", "artifacts/"), (OUTPUTS_MOUNT + "/", f"outputs/{target}/"),
                         (OUT_MOUNT + "/", f"artifacts/{source}/"), (USERDATA_MOUNT + "/", "userdata/"),
                         (USER_MOUNT + "/", "<your code>/"), (CODE_PREFIX, "")):
        text = text.replace(mount, shown)
    return text


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """At most `limit` characters, cut at a word, with an ellipsis when anything was cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def normalised(error_type: str, message: str) -> str:
    """An unknown error's cause: its type and the message with addresses, numbers and quoted names blanked."""
    text = _ADDRESS.sub("0x…", " ".join(message.split()))
    text = _QUOTED.sub("'…'", _NUMBER.sub("N", text))
    short = error_type.rsplit(".", 1)[-1]
    return shorten(f"{short}: {text}", 90)


class Tracebacks:
    """Tracebacks stored once each, by a short id derived from their text.

    What is kept is the last frames (the code nearest the error), without the exception text: the
    cell holds the message, and many cells that fail alike share their frames. The whole traceback
    stays in the run directory's records.
    """

    FRAMES = 8

    def __init__(self) -> None:
        self.table: dict[str, str] = {}

    def add(self, text: str | None) -> str | None:
        """The id of a traceback's last frames, stored once."""
        if not text:
            return None
        frames = _last_frames(text, self.FRAMES)
        key = "tb-" + hashlib.sha256(frames.encode()).hexdigest()[:10]
        self.table[key] = frames
        return key


def _last_frames(text: str, keep: int) -> str:
    lines = [ln for ln in text.splitlines() if not _CARETS.match(ln)]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("  File ")]
    if not starts:
        return shorten(text, MAX_TRACEBACK)
    end = starts[-1] + 1
    while end < len(lines) and lines[end].startswith("    "):
        end += 1
    first = starts[-keep] if len(starts) > keep else starts[0]
    return ("…\n" if first != starts[0] else "") + "\n".join(lines[first:end])


def cell_label(cell: Mapping[str, Any]) -> str:
    """'source -> target model/format/loader'."""
    return f"{cell['source']} -> {cell['target']} {cell['model']}/{cell['format']}/{cell['loader']}"


def causes(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The causes of the failing cells (hazard probes' cells aside), most pressing first."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for c in cells:
        if c["status"] in FAILING and c.get("route_status") != "hazard" and c.get("cause"):
            groups[str(c["cause"])].append(c)
    out: list[dict[str, Any]] = []
    for name, members in groups.items():
        breaking = [c for c in members if c.get("route_status") == "breaks"]
        unexpected = [c for c in breaking if not c.get("expected")]
        example = (unexpected or breaking or members)[0]
        pairs = sorted({(c["source"], c["target"]) for c in members})
        out.append({
            "name": name, "fix": _fix(members), "cells": len(members), "breaks": len(breaking),
            "breaks_unexpected": len(unexpected), "never_works": sum(1 for c in members
                                                                     if c.get("route_status") == "never_works"),
            "expected": sum(1 for c in members if c.get("expected")),
            "statuses": dict(sorted(Counter(c["status"] for c in members).items())),
            "pairs": [list(p) for p in pairs],
            "models": sorted({c["model"] for c in members}),
            "example": cell_label(example), "message": _message(example), "flag": flag_for(name),
        })
    out.sort(key=lambda c: (-int(c["breaks_unexpected"]), -int(c["breaks"]), -int(c["cells"]), str(c["name"])))
    return out


def _fix(members: Sequence[Mapping[str, Any]]) -> str | None:
    for c in members:
        hint = (c.get("error") or {}).get("hint") or c.get("hint")
        if hint:
            return str(hint)
    return None


def _message(cell: Mapping[str, Any]) -> str:
    error = cell.get("error") or {}
    if error:
        return f"{error.get('type')}: {error.get('message')}"
    return str(cell.get("reason") or cell["status"])
