"""Per-environment phase records and run.json, the merged view of them.

Every phase of every environment writes only its own file, envs/<env>/<phase>.json, so run
directories written by separate jobs (separate CI jobs, separate machines) combine by copying them
into one folder: no two jobs write the same file. run.json is rebuilt from these records by whoever
writes it (the single-process run as it goes, each phase job, the report), so whichever job's copy
of run.json survives a copy does not matter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from harness import __version__
from harness.agent.protocol import write_json_atomic
from harness.errors import RunDirError
from harness.matrix import Matrix, matrix_to_dict
from harness.rundir import ENVS, RunDir
from harness.untrusted import phase_record_problem

ENV_PHASES = ("build", "save", "load")  # phases that work on one environment and leave a record
PHASES = (*ENV_PHASES, "report")
PHASE_RECORD_SCHEMA = 1


def now() -> str:
    """UTC time with microseconds: records of one environment sort by it."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def host_name() -> str:
    """This machine's name, as recorded in phase records and container labels."""
    return socket.gethostname()


# What a run's saves and loads were made for: a run directory continues only the same. An environment's
# base image may differ (each host resolves its own, see base_images.py); tolerance and expect: only decide
# the report, which is rebuilt from the records.
RESUMED_KEYS = ("environments", "models", "formats", "loaders")


def matrix_changes(recorded: Matrix, current: Matrix) -> list[str]:
    """What differs between the matrix a run directory holds and the one asked for, in what it saves and loads."""
    old: dict[str, Any] = matrix_to_dict(recorded)
    new: dict[str, Any] = matrix_to_dict(current)
    changes = []
    for key in RESUMED_KEYS:
        if key not in ("environments", "models"):
            if old[key] != new[key]:
                changes.append(f"{key} {', '.join(old[key])} became {', '.join(new[key])}")
            continue
        name = "id" if key == "environments" else "name"
        before, after = ({e[name]: _compared(e) for e in side[key]} for side in (old, new))
        words = (("added", sorted(after.keys() - before.keys())), ("removed", sorted(before.keys() - after.keys())),
                 ("changed", sorted(k for k in before.keys() & after.keys() if before[k] != after[k])))
        changes += [f"{key} {verb}: {', '.join(names)}" for verb, names in words if names]
    return changes


def _compared(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "base_image"}


def refuse_changed_matrix(run_dir: RunDir, matrix: Matrix, flag: str) -> None:
    """RunDirError when the run directory holds a run of another matrix (in what it saves and loads)."""
    if not run_dir.run_json.is_file():
        return
    changes = matrix_changes(run_dir.matrix(), matrix)
    if changes:
        raise RunDirError(f"{flag} {run_dir.path}: the matrix changed since this run began ({'; '.join(changes)}); "
                          "its saves and loads were made for the other one: start a new run with another --out")


def read_phase(run_dir: RunDir, env_id: str, phase: str) -> dict[str, Any] | None:
    """envs/<env>/<phase>.json, or None when absent or unreadable."""
    data = run_dir.read_object(run_dir.phase_record(env_id, phase), phase_record_problem)
    return data if data is not None and data.get("phase") == phase else None


def read_phases(run_dir: RunDir, env_id: str) -> dict[str, dict[str, Any]]:
    """Every phase record of one environment, by phase."""
    return {p: r for p in ENV_PHASES if (r := read_phase(run_dir, env_id, p)) is not None}


def has_phase_records(run_dir: RunDir) -> bool:
    """Whether any environment of the run directory has a phase record (else run.json is all there is)."""
    envs = run_dir.path / ENVS
    return envs.is_dir() and any((envs / e.name / f"{p}.json").is_file() for e in envs.iterdir() for p in ENV_PHASES)


def merge_environment(base: Mapping[str, Any], phases: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One run.json environment: `base` (id, spec, image) completed from its phase records.

    The image outcome (status, error, image id) is the one of the record that started last: a
    phase that built or reused the image after an earlier failure supersedes it.
    """
    entry = dict(base)
    if not phases:
        return entry
    order = sorted(phases.values(), key=lambda r: (str(r.get("started") or ""), ENV_PHASES.index(r["phase"])))
    with_image = [r for r in order if r.get("status")]
    if with_image:
        last = with_image[-1]
        entry.update(image=last.get("image") or entry.get("image"), image_id=last.get("image_id"),
                     status=last["status"], error=last.get("error"))
    built = [r["build"] for r in order if r.get("build")]
    if "build" in phases and phases["build"].get("build"):
        entry["build"] = phases["build"]["build"]
    elif built:
        entry["build"] = built[0]
    for phase in ("save", "load"):
        if phases.get(phase, {}).get("container"):
            entry[phase] = dict(phases[phase]["container"])
            if phases[phase].get("infrastructure_retries"):  # engine failures retried before this outcome
                entry[phase]["infrastructure_retries"] = phases[phase]["infrastructure_retries"]
    if isinstance(phases.get("load", {}).get("cells"), dict):  # the cell cache's: reused, and computed here
        entry["cells"] = dict(phases["load"]["cells"])
    if isinstance(phases.get("save", {}).get("cache"), dict):
        entry["save_reused"] = bool(phases["save"]["cache"].get("reused"))
    entry["containers_started"] = sum(int(r.get("containers_started") or 0) for r in order)
    entry["phases"] = {r["phase"]: {k: r.get(k) for k in ("run_id", "host", "started", "finished")} for r in order}
    return entry


def environment_entries(run_dir: RunDir, matrix: Matrix, selected: Mapping[str, str | None],
                        previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """run.json's environments, in matrix order: the selected ones (id -> image tag) and every other
    one that has phase records or an entry in the previous run.json."""
    before = {e["id"]: e for e in previous if isinstance(e, dict) and "id" in e}
    entries = []
    for env in matrix.environments:
        phases = read_phases(run_dir, env.id)
        if env.id not in selected and not phases and env.id not in before:
            continue
        if phases or env.id not in before:
            base = {"id": env.id, "spec": dataclasses.asdict(env),
                    "image": selected.get(env.id) or before.get(env.id, {}).get("image")}
        else:  # a run directory written before phase records existed: run.json is the record
            base = before[env.id]
        entries.append(merge_environment(base, phases))
    return entries


def _timings(run_dir: RunDir, entries: list[dict[str, Any]]) -> dict[str, float]:
    """Per phase, the longest environment's seconds: the phase's wall time when every environment runs at once."""
    longest: dict[str, float] = {}
    for entry in entries:
        for phase, record in read_phases(run_dir, entry["id"]).items():
            seconds = float(record.get("seconds") or 0.0)
            longest[phase] = round(max(longest.get(phase, 0.0), seconds), 2)
    return longest


def _wheels(entries: list[dict[str, Any]]) -> dict[str, int] | None:
    """The wheel cache's totals over the environments whose image was built through it, or None."""
    counted = [e["build"]["wheels"] for e in entries if isinstance((e.get("build") or {}).get("wheels"), dict)]
    if not counted:
        return None
    return {k: sum(int(w.get(k) or 0) for w in counted) for k in ("downloaded", "reused", "bytes_downloaded",
                                                                   "bytes_reused")}


def _cells(entries: list[dict[str, Any]]) -> dict[str, int] | None:
    """Load cells the cell cache gave and the containers computed, over the environments that used it, or None."""
    counted = [e["cells"] for e in entries if isinstance(e.get("cells"), dict)]
    if not counted:
        return None
    return {k: sum(int(c.get(k) or 0) for c in counted) for k in ("reused", "computed")}


def _longest(*timings: Mapping[str, float]) -> dict[str, float]:
    """Per phase, the largest of several timings: a single run's wall time covers every environment's."""
    merged: dict[str, float] = {}
    for each in timings:
        for phase, seconds in each.items():
            merged[phase] = max(merged.get(phase, 0.0), float(seconds))
    return merged


def merged_run(run_dir: RunDir, matrix: Matrix, selected: Mapping[str, str | None], *, run_id: str,
               status: str | None = None, timings: Mapping[str, float] | None = None,
               **fields: Any) -> dict[str, Any]:
    """run.json's content: the previous run.json's own keys, then environments merged from the phase records.

    `status` None derives it: 'interrupted' while any phase record is unfinished, else 'complete'.
    """
    previous = run_dir.read_run() if run_dir.run_json.is_file() else {}
    if status == "running":  # a new attempt: the last one's end is history
        previous = {k: v for k, v in previous.items() if k not in ("finished", "interrupted")}
    entries = environment_entries(run_dir, matrix, selected, previous.get("environments", []))
    records = [p for e in entries for p in e.get("phases", {}).values()]
    if status is None:
        status = "interrupted" if any(not r.get("finished") for r in records) else "complete"
    starts = [str(r["started"]) for r in records if r.get("started")]
    created = min([*starts, *([previous["created"]] if previous.get("created") else [])], default=now())
    return {
        **previous,
        "harness_version": __version__,
        "run_id": run_id,
        "created": created,
        "status": status,
        "matrix": matrix_to_dict(matrix),
        "environments": entries,
        "containers_started": sum(int(e.get("containers_started") or 0) for e in entries)
        if records else previous.get("containers_started", 0),
        "timings": {**_longest(previous.get("timings", {}), _timings(run_dir, entries)), **(timings or {})},
        **({"wheels": wheels} if (wheels := _wheels(entries)) else {}),
        **({"cells": cells} if (cells := _cells(entries)) else {}),
        **fields,
    }


class RunState:
    """The phase records one process writes, and run.json rewritten from them after every change."""

    def __init__(self, run_dir: RunDir, matrix: Matrix, selected: Mapping[str, str], run_id: str) -> None:
        self.run_dir = run_dir
        self.matrix = matrix
        self.selected = dict(selected)
        self.run_id = run_id
        self.status = "running"
        self.timings: dict[str, float] = {}
        self.extra: dict[str, Any] = {}
        self._lock = threading.RLock()

    def write_run(self, **fields: Any) -> dict[str, Any]:
        """Rewrite run.json from the phase records; `fields` (status, finished, ...) are kept for later writes."""
        with self._lock:
            self.extra.update(fields)
            self.status = self.extra.pop("status", self.status)
            run = merged_run(self.run_dir, self.matrix, self.selected, run_id=self.run_id, status=self.status,
                             timings=self.timings, **self.extra)
            self.run_dir.write_run(run)
            return run

    def write_record(self, record: dict[str, Any]) -> None:
        """Replace one phase record, then run.json."""
        with self._lock:
            write_json_atomic(self.run_dir.phase_record(record["env"], record["phase"]), record, strict=True)
            self.write_run()

    def settle(self, env_id: str, phase: str) -> None:
        """Mark finished a record whose work turned out complete (an interrupt came after the container ended)."""
        record = read_phase(self.run_dir, env_id, phase)
        if record is not None and not record.get("finished"):
            self.write_record({**record, "finished": now()})

    @contextmanager
    def phase(self, env_id: str, phase: str, *, resume: bool = False) -> Iterator[dict[str, Any]]:
        """A phase record, written when the phase starts and again when it ends.

        A phase that raises (an interrupt) leaves its record unfinished, which marks the run
        interrupted. On resume the containers an earlier attempt started are still counted.
        """
        before = read_phase(self.run_dir, env_id, phase) if resume else None
        record: dict[str, Any] = {
            "schema": PHASE_RECORD_SCHEMA, "env": env_id, "phase": phase, "run_id": self.run_id,
            "host": host_name(), "pid": os.getpid(), "harness_version": __version__,
            "matrix_sha256": self.matrix.sha256, "started": now(), "finished": None, "seconds": None,
            "containers_started": int((before or {}).get("containers_started") or 0),
        }
        self.write_record(record)
        yield record
        record["finished"] = now()
        started = dt.datetime.fromisoformat(record["started"])
        record["seconds"] = round((dt.datetime.fromisoformat(record["finished"]) - started).total_seconds(), 2)
        self.write_record(record)
