"""What the benchmarks share: a harness run measured from the outside, with the CPU time of its containers.

Wall times on a shared host move with whatever else runs; the CPU time a container spends moves much less.
CpuWatch reads each harness container's CPU time from its cgroup while it runs (cgroup v1 cpuacct or v2
cpu.stat), so a run's in-container work is known in CPU seconds as well as in container seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LABEL = "org.harness.managed=true"
CGROUP_FILES = ("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage",  # v1: nanoseconds
                "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat")  # v2: usage_usec


def _usage(container_id: str) -> float | None:
    """CPU seconds a running container has used, from its cgroup; None when it cannot be read."""
    for pattern in CGROUP_FILES:
        try:
            text = Path(pattern.format(id=container_id)).read_text()
        except OSError:
            continue
        if pattern.endswith("cpuacct.usage"):
            return int(text) / 1e9
        for line in text.splitlines():
            if line.startswith("usage_usec"):
                return int(line.split()[1]) / 1e6
    return None


class CpuWatch:
    """Polls every harness container's cgroup while it runs; keeps the last reading per container name."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.seconds: dict[str, float] = {}
        self._ids: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        listed = 0.0
        while not self._stop.is_set():
            if time.monotonic() - listed > 1.0:
                found = subprocess.run(["docker", "ps", "--no-trunc", "--filter", f"label={LABEL}", "--format",
                                        "{{.ID}} {{.Names}}"], capture_output=True, text=True, check=False)
                for line in found.stdout.splitlines():
                    cid, _, name = line.partition(" ")
                    self._ids.setdefault(cid, name)
                listed = time.monotonic()
            for cid, name in list(self._ids.items()):
                used = _usage(cid)
                if used is not None:
                    self.seconds[name] = max(self.seconds.get(name, 0.0), used)
            self._stop.wait(self.interval)

    @contextmanager
    def running(self) -> Iterator[CpuWatch]:
        """Watch while the block runs."""
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def of_run(self, run_id: str) -> dict[str, float]:
        """CPU seconds of one run's containers (named harness-<run id>-...), by phase."""
        phases: dict[str, float] = {}
        for name, used in self.seconds.items():
            if name.startswith(f"harness-{run_id}-"):
                phase = name[len(f"harness-{run_id}-"):].split("-")[0]
                phases[phase] = phases.get(phase, 0.0) + used
        return phases


@dataclasses.dataclass
class Measured:
    """One harness run: its wall time, what run.json says, and its containers' CPU time."""

    label: str
    wall: float
    exit_code: int
    run: dict[str, Any]
    cpu: dict[str, float]  # phase -> CPU seconds of its containers
    load: tuple[float, float]  # load average (1 min) when it began and ended
    peak_rss_mb: float = 0.0
    containers: int = 0

    def in_container(self) -> float:
        """Container seconds of the save and load phases, summed over environments."""
        return sum(float(e.get(phase, {}).get("seconds", 0.0)) for e in self.run["environments"]
                   for phase in ("save", "load"))

    def cpu_total(self) -> float:
        """CPU seconds of the run's containers."""
        return sum(self.cpu.values())

    def cells(self) -> int:
        """Load records written (cells decided by containers)."""
        return int(self.run.get("cells_loaded") or 0)


def load_average() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]


def run_harness(label: str, tree: Path, matrix: Path, out: Path, *extra: str) -> Measured:
    """`python -m harness run` in a checkout (`tree`), measured: wall, peak RSS, exit code, containers' CPU."""
    cmd = [sys.executable, "-m", "harness", "run", str(matrix), "--out", str(out), "--quiet", *extra]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    begin = load_average()
    start = time.monotonic()
    with CpuWatch().running() as watch:
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    run = json.loads((out / "run.json").read_text())
    run["cells_loaded"] = sum(1 for f in (out / "records").glob("load-*.jsonl")
                              for line in f.read_text().splitlines() if '"kind": "load"' in line)
    measured = Measured(label, wall, os.waitstatus_to_exitcode(status), run, watch.of_run(str(run.get("run_id"))),
                        (begin, load_average()), usage.ru_maxrss / 1024)
    print(f"{label}: {wall:.1f} s, exit {measured.exit_code}, in-container {measured.in_container():.1f} s, "
          f"CPU {measured.cpu_total():.1f} s, load {begin:.1f}..{measured.load[1]:.1f}", flush=True)
    return measured


def wait_for_quiet(minutes: float, *, below: float = 1.0, poll: float = 60.0) -> float:
    """Wait (up to `minutes`) until the load average is under `below` and no harness container runs; the load
    average then."""
    deadline = time.monotonic() + minutes * 60
    while True:
        busy = subprocess.run(["docker", "ps", "-q", "--filter", f"label={LABEL}"], capture_output=True, text=True,
                              check=False).stdout.split()
        load = load_average()
        if (load < below and not busy) or time.monotonic() > deadline:
            return load
        print(f"waiting for a quiet machine: load {load:.2f}, {len(busy)} harness container(s) running", flush=True)
        time.sleep(poll)


def phases(measured: Measured) -> str:
    """Per-phase wall times from run.json."""
    return ", ".join(f"{k} {v:.1f} s" for k, v in sorted(measured.run.get("timings", {}).items()))


def jobs_of(extra: Sequence[str]) -> int:
    """The --jobs a run was given (1 when none)."""
    return int(extra[list(extra).index("--jobs") + 1]) if "--jobs" in extra else 1
