"""Load phase: every artifact of every source environment, each loader that applies.

This parent process never imports TensorFlow. It feeds tasks to a worker
process and turns a worker that dies or hangs into a `crash` or `timeout`
record, then starts a fresh worker for the next task.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Dict, Optional, Tuple

from harness.agent.catalog import LOADERS
from harness.agent.protocol import (
    LOAD_DONE,
    LoadRecord,
    LoadRequest,
    LoadTask,
    RecordWriter,
    Versions,
    done_cells,
    plan_tasks,
    sha256_file,
)

STARTUP_TIMEOUT = 600.0


class Worker:
    """A worker subprocess and the pipe its results come back on."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        env = dict(os.environ, HARNESS_RESULT_FD=str(write_fd))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.agent", "worker"],
            stdin=subprocess.PIPE, pass_fds=(write_fd,), env=env,
        )
        os.close(write_fd)
        self._fh = os.fdopen(read_fd, "r", encoding="utf-8")
        self.versions: Optional[Versions] = None

    def _line(self, timeout: float) -> Optional[str]:
        """The worker's next line, or None when it died or the time ran out."""
        ready, _, _ = select.select([self._fh], [], [], timeout)
        if not ready:
            return None
        line = self._fh.readline()
        if not line:
            # End of file: the worker is exiting. Reap it, so death() sees how it ended.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
            return None
        return line

    def receive(self, timeout: float) -> Optional[LoadRecord]:
        """The next result, or None when the worker died or the time ran out."""
        line = self._line(timeout)
        result: Optional[LoadRecord] = None if line is None else json.loads(line)
        return result

    def start(self) -> bool:
        """Wait for the worker's hello (TensorFlow imported): its first line, with its versions."""
        line = self._line(STARTUP_TIMEOUT)
        self.versions = None if line is None else json.loads(line).get("hello")
        return self.versions is not None

    def send(self, task: LoadTask) -> None:
        """Hand one task to the worker."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((task.to_json() + "\n").encode())
        self.proc.stdin.flush()

    def stop(self) -> None:
        """Kill the worker and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._fh.close()

    def death(self) -> LoadRecord:
        """A crash record body for a worker that is gone."""
        code = self.proc.wait()
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (likely out of memory)" if -code == signal.SIGKILL else ""
            return {"status": "crash", "signal": name, "exit_code": code,
                    "error": {"type": "WorkerCrash", "message": f"worker killed by {name}{hint}"}}
        return {"status": "crash", "exit_code": code,
                "error": {"type": "WorkerCrash", "message": f"worker exited with status {code}"}}


class Integrity:
    """Checks artifacts against the sha256 manifest written when they were saved, once per artifact."""

    def __init__(self) -> None:
        self._verdicts: Dict[str, Optional[str]] = {}

    def problem(self, task: LoadTask) -> Optional[str]:
        """None when every file is as saved, else what changed."""
        if task.artifact not in self._verdicts:
            self._verdicts[task.artifact] = _changed(task.files)
        return self._verdicts[task.artifact]


def _changed(files: Dict[str, str]) -> Optional[str]:
    for path, digest in sorted(files.items()):
        if not os.path.isfile(path):
            return f"{path} is missing"
        if sha256_file(path) != digest:
            return f"{path} does not match its sha256 in manifest.json"
    return None


def run_load(request: LoadRequest) -> int:
    """Run every task not already recorded; append a record for each as it ends."""
    target = request.env
    tasks = [t for t in plan_tasks(request.artifacts, request.outputs, request.models, request.tolerance)
             if request.only is None or request.only.covers(t)]
    done = set(done_cells(request.records, target))
    writer: RecordWriter[LoadRecord] = RecordWriter(request.records)
    worker: Optional[Worker] = None
    integrity = Integrity()
    graph_mode = False  # whether the current worker switched TensorFlow to graph mode
    # Graph-mode loads (TF1 sessions) go last and share one worker of their own, so the
    # eager worker is started once: a worker start costs a TensorFlow import. Loaders that may
    # abort their worker go after the others, so a crash restarts it for as few loads as can be.
    for task in sorted(tasks, key=run_order):
        if task.cell(target) in done:
            continue
        changed = integrity.problem(task)
        if changed:
            writer.write(_record(task, target, {"status": "error", "stage": "integrity", "error": {
                "type": "ArtifactChanged", "message": "artifact changed since it was saved: " + changed}}))
            continue
        wants_graph = needs_graph_worker(task, worker)
        if worker is not None and wants_graph != graph_mode:
            worker.stop()
            worker = None
        if worker is None:
            worker, graph_mode = Worker(), wants_graph
            if not worker.start():
                writer.write(_record(task, target, _startup_failure(worker)))
                worker = None
                continue
        result = _run_one(worker, task, min(request.timeout, task.timeout or request.timeout))
        writer.write({**_record(task, target, result), "versions": worker.versions, "worker": worker.proc.pid})
        # A worker that died or hung is never reused; with isolation "artifact" none is.
        if result["status"] in ("crash", "timeout") or request.isolation == "artifact":
            worker.stop()
            worker = None
    if worker is not None:
        worker.stop()
    writer.write({"kind": LOAD_DONE, "target": target})
    writer.close()
    return 0


def run_order(task: LoadTask) -> Tuple[bool, bool]:
    """Where a task goes in a target's load: graph-mode loads last, and before them the loads that may abort."""
    return task.graph_mode, LOADERS[task.loader].may_abort


def needs_graph_worker(task: LoadTask, worker: Optional[Worker]) -> bool:
    """Whether a task needs the graph-mode worker: a graph-mode loader the running worker's Keras runs. Where it
    does not (TF1 sessions in Keras 3), the loader says so before touching TensorFlow, in the worker that is up,
    and no worker is started for it."""
    if not task.graph_mode:
        return False
    versions = worker.versions if worker is not None else None
    if versions is None or versions.get("keras_major") is None:
        return True
    return versions["keras_major"] in LOADERS[task.loader].keras_majors


def _startup_failure(worker: Worker) -> LoadRecord:
    """Why a worker gave no hello: it died (how), or it did not start in time; the worker is stopped."""
    result: LoadRecord = {"status": "timeout", "stage": "startup",
                          "error": {"type": "Timeout", "message": "worker did not start in time"}}
    if worker.proc.poll() is not None:
        result = {**worker.death(), "stage": "startup"}
    worker.stop()
    return result


def _run_one(worker: Worker, task: LoadTask, timeout: float) -> LoadRecord:
    start = time.monotonic()
    worker.send(task)
    result = worker.receive(timeout)
    if result is not None:
        return result
    seconds = round(time.monotonic() - start, 3)
    if worker.proc.poll() is None:
        worker.proc.kill()
        return {"status": "timeout", "seconds": seconds,
                "error": {"type": "Timeout", "message": f"no result within {timeout:.0f} s"}}
    return {**worker.death(), "seconds": seconds}


def _record(task: LoadTask, target: str, result: LoadRecord) -> LoadRecord:
    """A load record: the cell a task decides, and how its load went."""
    return {"kind": "load", "target": target, "source": task.source, "model": task.model, "format": task.format,
            "loader": task.loader, **result}
