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
from typing import Any, Dict, Optional

from harness.agent.protocol import LOAD_DONE, CellKey, RecordWriter, done_cells, from_dict, plan_tasks, sha256_file

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
        self.versions: Optional[Dict[str, Any]] = None

    def receive(self, timeout: float) -> Optional[Dict[str, Any]]:
        """The next result line, or None when the worker died or the time ran out."""
        ready, _, _ = select.select([self._fh], [], [], timeout)
        if not ready:
            return None
        line = self._fh.readline()
        if not line:
            # End of file: the worker is exiting. Reap it, so death() sees how it ended.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
            return None
        result: Dict[str, Any] = json.loads(line)
        return result

    def start(self) -> bool:
        """Wait for the worker's hello (TensorFlow imported)."""
        hello = self.receive(STARTUP_TIMEOUT)
        self.versions = hello.get("hello") if hello else None
        return self.versions is not None

    def send(self, task: Dict[str, Any]) -> None:
        """Hand one task to the worker."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(task) + "\n").encode())
        self.proc.stdin.flush()

    def stop(self) -> None:
        """Kill the worker and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._fh.close()

    def death(self) -> Dict[str, Any]:
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

    def problem(self, task: Dict[str, Any]) -> Optional[str]:
        """None when every file is as saved, else what changed."""
        key = task["artifact"]
        if key not in self._verdicts:
            self._verdicts[key] = _changed(task["files"])
        return self._verdicts[key]


def _changed(files: Dict[str, str]) -> Optional[str]:
    for path, digest in sorted(files.items()):
        if not os.path.isfile(path):
            return f"{path} is missing"
        if sha256_file(path) != digest:
            return f"{path} does not match its sha256 in manifest.json"
    return None


def run_load(spec: Dict[str, Any]) -> int:
    """Run every task not already recorded; append a record for each as it ends."""
    target = spec["env"]
    tasks = plan_tasks(spec["artifacts"], spec["outputs"], [from_dict(m) for m in spec["models"]])
    only = spec.get("only") or {}  # one artifact: source, model and format (--isolation artifact)
    tasks = [t for t in tasks if all(t[key] == value for key, value in only.items())]
    done = set(done_cells(spec["records"], target))
    writer = RecordWriter(spec["records"])
    base = {"kind": "load", "target": target}
    worker: Optional[Worker] = None
    integrity = Integrity()
    graph_mode = False  # whether the current worker switched TensorFlow to graph mode
    # Graph-mode loads (TF1 sessions) go last and share one worker of their own, so the
    # eager worker is started once: a worker start costs a TensorFlow import.
    for task in sorted(tasks, key=lambda t: bool(t["graph_mode"])):
        if CellKey.of(task, target) in done:
            continue
        changed = integrity.problem(task)
        if changed:
            writer.write(dict(base, **_identity(task), status="error", stage="integrity", error={
                "type": "ArtifactChanged", "message": "artifact changed since it was saved: " + changed}))
            continue
        if worker is not None and task["graph_mode"] != graph_mode:
            worker.stop()
            worker = None
        if worker is None:
            worker, graph_mode = Worker(), bool(task["graph_mode"])
            if not worker.start():
                result = dict(worker.death(), stage="startup") if worker.proc.poll() is not None else {
                    "status": "timeout", "stage": "startup",
                    "error": {"type": "Timeout", "message": "worker did not start in time"}}
                worker.stop()
                worker = None
                writer.write(dict(base, **_identity(task), **result))
                continue
        limit = float(spec.get("timeout", 300))
        result = _run_one(worker, task, min(limit, float(task.get("timeout") or limit)))
        writer.write(dict(base, versions=worker.versions, worker=worker.proc.pid, **_identity(task), **result))
        # A worker that died or hung is never reused; with isolation "artifact" none is.
        if result["status"] in ("crash", "timeout") or spec.get("isolation") == "artifact":
            worker.stop()
            worker = None
    if worker is not None:
        worker.stop()
    writer.write(dict(base, kind=LOAD_DONE))
    writer.close()
    return 0


def _run_one(worker: Worker, task: Dict[str, Any], timeout: float) -> Dict[str, Any]:
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
    return dict(worker.death(), seconds=seconds)


def _identity(task: Dict[str, Any]) -> Dict[str, Any]:
    return {k: task[k] for k in ("source", "model", "format", "loader")}
