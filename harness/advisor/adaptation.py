"""Adapted files on the host: what an adapting loader changed, and what became of the copy it made.

An adapting loader (harness/agent/adapters.py, harness/agent/adapt.py) edits a copy of a saved file
for the target's Keras and loads the copy there; its account (adapted.json, beside the load's
predictions) says which adapters changed what. A report cell of such a loader carries the account
in its loader_options; this module reads it back, says in words what was changed, and decides the
outcome of one broken route: adapted and verified, adapter exists but verification failed, or no
adapter. Pure functions of report cells, except account(), which reads one file the container wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.agent.protocol import ADAPTED, ADAPTERS, LOADERS, CellKey
from harness.report.statuses import WORKING
from harness.rundir import RunDir

VERIFIED, FAILED, NO_ADAPTER = "adapted and verified", "adapter exists but verification failed", "no adapter"
OUTCOMES = (VERIFIED, FAILED, NO_ADAPTER)
_STRINGS = ("status", "layout", "source_keras", "target_keras", "file", "saved_as", "why")


def adapts(loader: str) -> bool:
    """Whether a loader edits a copy of the file for the target's Keras before it loads it."""
    return loader in LOADERS and LOADERS[loader].adapts


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _clean(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An account as report.json keeps it: strings and lists of strings only (a container wrote it)."""
    out: dict[str, Any] = {k: (str(raw[k]) if raw.get(k) is not None else None) for k in _STRINGS}
    out["hand"] = _strings(raw.get("hand"))
    out["files"] = {str(k): str(v) for k, v in raw["files"].items()} if isinstance(raw.get("files"), dict) else {}
    out["adapters"] = [{"adapter": str(a.get("adapter")), "cause": str(a.get("cause")),
                        "edits": _strings(a.get("edits")), "cannot": str(a["cannot"]) if a.get("cannot") else None}
                       for a in raw.get("adapters") or [] if isinstance(a, dict)]
    return out


def account(run_dir: RunDir, key: CellKey) -> dict[str, Any] | None:
    """What an adapting loader's cell changed (its adapted.json), or None: no such loader, or nothing written."""
    if not adapts(key.loader):
        return None
    found = run_dir.read_object(run_dir.adapted(key) / ADAPTED)
    return None if found is None else _clean(found)


def of(cell: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The account a report cell carries (loader_options.adapted), or None."""
    options = cell.get("loader_options") or {}
    found = options.get("adapted") if isinstance(options, Mapping) else None
    return found if isinstance(found, Mapping) else None


def edits(found: Mapping[str, Any] | None) -> list[str]:
    """Every change an account lists, 'adapter: edit' (and the .keras it was saved as)."""
    if not found:
        return []
    out = [f"{a['adapter']}: {e}" for a in found.get("adapters") or [] for e in a.get("edits") or []]
    return out + ([str(found["saved_as"])] if found.get("saved_as") else [])


def adapters_run(found: Mapping[str, Any] | None) -> list[str]:
    """The adapters that changed the file (in order)."""
    return [str(a["adapter"]) for a in (found or {}).get("adapters") or [] if a.get("edits")]


def why_not(cell: Mapping[str, Any]) -> str:
    """Why an adapted route does not work in its target: which adapter failed and why, or that none applies."""
    found = of(cell) or {}
    error = cell.get("error") or {}
    detail = f"{error.get('type', '')}: {error.get('message', '')}".strip(": ") if error else cell.get("reason") or ""
    cannot = next((a for a in found.get("adapters") or [] if a.get("cannot")), None)
    if cannot is not None:
        return f"adapter {cannot['adapter']} ({cannot['cause']}) cannot adapt it: {cannot['cannot']}"
    if cell["status"] == "unsupported" or found.get("status") == "nothing":
        return f"no adapter: {found.get('why') or detail or 'nothing to adapt'}"
    ran = adapters_run(found)
    if cell["status"] == "drift":
        return (f"adapted by {', '.join(ran) or '?'}, but its predictions differ from the original's "
                f"({cell.get('reason') or 'beyond the tolerance'})")
    return _remaining(found, cell, ran, detail)


def _remaining(found: Mapping[str, Any], cell: Mapping[str, Any], ran: list[str], detail: str) -> str:
    """Why a copy the adapters changed still fails: an adapter that ran and did not fix it, or what remains and the
    adapters (for other kinds of file, for other releases, or none) that answer it."""
    cause = cell.get("cause")
    answering = [a for a in ADAPTERS if a.cause == cause]
    fixed_by = [name for name in ran if name in {a.name for a in answering}]
    if fixed_by:
        return f"adapter {fixed_by[0]} ({cause}) ran, yet the target still refuses the file: {detail}"
    done = f"adapted by {', '.join(ran) or 'nothing'}; what remains "
    layout = str(found.get("layout") or cell["format"])
    reading = [a for a in answering if layout in a.layouts]
    here = [a.name for a in reading if a.fits(found.get("source_keras"), found.get("target_keras"), layout)]
    if not answering:
        why = f"has no adapter ({cause or 'unknown cause'})"
    elif not reading:
        reads = ", ".join(answering[0].layouts)
        why = f"({cause}) has no adapter for {layout} files ({answering[0].name} adapts {reads} files)"
    elif here:
        why = f"({cause}) is nothing its adapters here ({', '.join(here)}) know how to change"
    else:
        why = f"({cause}) has an adapter, {reading[0].name}, for other releases"
    return f"{done}{why}: {detail}"


def adaptation_outcome(adapted: Iterable[Mapping[str, Any]]) -> str:
    """What the adapting loaders made of one broken route (its cells with adapting loaders in the same target)."""
    cells = list(adapted)
    if any(c.get("route_status") in WORKING for c in cells):
        return VERIFIED
    if any(c["status"] not in ("unsupported", "skipped") for c in cells):
        return FAILED
    return NO_ADAPTER


def adaptation_table(cells: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per cause of a broken route (a plain loader's cell that works at home and breaks in its target): how many
    such routes (source, target, model, format) the adapting loaders verified, failed, or found no adapter for."""
    by_route: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = {}
    for c in cells:
        if adapts(c["loader"]):
            by_route.setdefault((c["source"], c["target"], c["model"], c["format"]), []).append(c)
    counts: dict[str, dict[str, int]] = {}
    seen: set[tuple[str, str, str, str, str]] = set()
    for c in cells:
        route = (c["source"], c["target"], c["model"], c["format"])
        if c.get("route_status") != "breaks" or adapts(c["loader"]):
            continue
        cause = str(c.get("cause") or "unknown")
        if (*route, cause) in seen:
            continue
        seen.add((*route, cause))
        row = counts.setdefault(cause, dict.fromkeys(OUTCOMES, 0))
        row[adaptation_outcome(by_route.get(route, []))] += 1
    return dict(sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])))


def hand_files(found: Mapping[str, Any]) -> dict[str, str]:
    """The files an adapted route hands over, with the sha256 the container recorded for each."""
    files = found.get("files") or {}
    return {name: files.get(name, "") for name in found.get("hand") or []}

