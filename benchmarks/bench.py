"""Measure the harness on this machine and write benchmarks/RESULTS.md.

    python benchmarks/bench.py [--matrix matrices/default.yaml] [--cold] [--scaling] [--out DIR]

Everything is measured in one run, side by side, on the same machine:
- cold build (with --cold: the matrix's images are removed first), then a warm rerun;
- containers started (counted from the engine's event log), per-phase wall times, the sum
  of in-container time, and the harness process's peak RSS;
- a naive runner that starts one load container per (source, target) pair for the
  same per-cell work, against `--jobs 1` and `--jobs 2`;
- with --scaling: wall time as the number of environments and of probe models grows.
Nothing here asserts a time: the figures and their ratios go into RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
WHEEL_CACHE = ("<!-- wheel-cache -->", "<!-- /wheel-cache -->")
sys.path.insert(0, str(ROOT))

from harness.agent import protocol  # noqa: E402
from harness.base_images import Debootstrap, resolve_base_images  # noqa: E402
from harness.engine import LABEL_MANAGED, Mount, engine_for  # noqa: E402
from harness.matrix import load_matrix  # noqa: E402
from harness.plan import Limits, load_spec, plan_environments  # noqa: E402
from harness.rundir import RunDir  # noqa: E402
from harness.selectors import Versions  # noqa: E402


@dataclasses.dataclass
class Measured:
    """One harness run: wall time, peak RSS, containers, and what run.json says."""

    label: str
    wall: float
    peak_rss_mb: float
    containers: int
    exit_code: int
    run: dict[str, Any]

    def in_container(self) -> float:
        """Seconds spent inside save and load containers, summed over environments."""
        return sum(float(e.get(phase, {}).get("seconds", 0.0)) for e in self.run["environments"]
                   for phase in ("save", "load"))

    def built(self) -> int:
        """Images built (not reused) during this run."""
        return sum(1 for e in self.run["environments"] if e.get("build", {}).get("built"))


def count_started(since: float, until: float) -> int:
    """Harness containers started between two times, from the engine's own event log."""
    return engine_for(None).containers_started(since, until, {LABEL_MANAGED: "true"})


def run_harness(label: str, matrix: Path, out: Path, *extra: str) -> Measured:
    """Run `python -m harness run` as a child process and measure it."""
    cmd = [sys.executable, "-m", "harness", "run", str(matrix), "--out", str(out), "--quiet", *extra]
    since = time.time()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    time.sleep(1)  # let the engine's event log catch up
    measured = Measured(label, wall, usage.ru_maxrss / 1024, count_started(since, time.time()), proc.returncode,
                        json.loads((out / "run.json").read_text()))
    print(f"{label}: {wall:.1f} s, exit {proc.returncode}, {measured.containers} containers, "
          f"{measured.built()} images built, peak RSS {measured.peak_rss_mb:.0f} MB", flush=True)
    return measured


def naive_loads(matrix_path: Path, run_dir: Path, base_image: str | None) -> tuple[float, int]:
    """The per-pair baseline: one load container per (source, target), same agent, same cells."""
    matrix = load_matrix(matrix_path, base_image=base_image, versions=Versions(os.environ, None, pinned=pins(run_dir)))
    plans = plan_environments(matrix, os.environ)
    engine = engine_for(None)
    runs = RunDir(run_dir)
    sources = [p.env.id for p in plans if (runs.artifacts(p.env.id) / protocol.MANIFEST).is_file()]
    start = time.monotonic()
    started = 0
    for target in plans:
        for source in sources:
            pair = run_dir / "naive" / f"{source}--{target.env.id}"
            (pair / "outputs").mkdir(parents=True, exist_ok=True)
            (pair / "records.jsonl").write_text("")
            spec = load_spec(matrix, target, runs, f"naive{started}", Limits())
            mounts = (
                *(m for m in spec.mounts if m.container.startswith("/opt/")),  # the harness source
                Mount(runs.artifacts(source), f"{protocol.ARTIFACTS_MOUNT}/{source}"),
                Mount(pair / "outputs", protocol.OUTPUTS_MOUNT, read_only=False),
                Mount(pair / "records.jsonl", protocol.RECORDS_MOUNT, read_only=False),
            )
            engine.run(dataclasses.replace(spec, mounts=mounts, name=f"harness-naive-{started}"), pair / "log")
            started += 1
    return time.monotonic() - start, started


def pins(run_dir: Path) -> dict[str, str]:
    """The versions a measured run resolved its selectors to: the same environments, whatever the index says now."""
    from harness.selectors import read_versions

    return read_versions(run_dir / "run.json")


def phases(m: Measured) -> str:
    """Per-phase wall times from run.json."""
    return ", ".join(f"{k} {v:.1f} s" for k, v in sorted(m.run.get("timings", {}).items()))


def scaling(matrix_path: Path, work: Path, base: list[str], full: Measured) -> list[tuple[int, int, float, int]]:
    """Wall time of warm runs as environments and probe models grow (the full matrix is `full`)."""
    data = yaml.safe_load(matrix_path.read_text())
    rows = []
    for n_envs in (2, 3, 5):
        for models in (["dense"], ["dense", "classifier", "lambda", "text_rnn"], None):
            if n_envs >= len(data["environments"]) and models is None:
                cells = len(json.loads((work / "warm2" / "report.json").read_text())["cells"])
                rows.append((len(data["environments"]), 0, full.wall, cells))
                continue
            small = dict(data, environments=data["environments"][:n_envs], name=f"scale-{n_envs}")
            if models is not None:
                small["models"] = models
            path = work / f"scale-{n_envs}-{len(models or [])}.yaml"
            path.write_text(yaml.safe_dump(small))
            m = run_harness(f"scale {n_envs} envs, {len(models) if models else 'all'} models", path,
                            work / path.stem, *base)
            cells = len(json.loads((work / path.stem / "report.json").read_text())["cells"])
            rows.append((n_envs, len(models) if models else 0, m.wall, cells))
    return rows


def machine() -> str:
    """What this was measured on."""
    engine = engine_for(None)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (f"{platform.platform()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python "
            f"{platform.python_version()}, {engine.product} {engine.info().get('ServerVersion', '?')}")


def main() -> int:
    """Run every measurement and write RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--matrix", type=Path, default=ROOT / "matrices" / "default.yaml")
    parser.add_argument("--out", type=Path, default=Path("/tmp/harness-bench"))
    parser.add_argument("--cold", action="store_true", help="remove the matrix's images first (cold build)")
    parser.add_argument("--scaling", action="store_true", help="also vary environments and probe models")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    base_image = os.environ.get("HARNESS_BASE_IMAGE")
    base = ["--base-image", base_image] if base_image else []
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work = args.out / stamp
    work.mkdir(parents=True)

    runs: list[Measured] = []
    if args.cold:
        engine = engine_for(None)
        written = load_matrix(args.matrix, base_image=base_image, versions=Versions(os.environ, None))
        matrix = resolve_base_images(written, engine, Debootstrap(), print)
        # every image a cold build makes: the environments' and the TensorFlow images they build FROM
        tags = sorted({t for p in plan_environments(matrix, os.environ)
                       for t in (p.image.tag, p.image.parent.tag if p.image.parent else None) if t})
        subprocess.run([engine.binary, "image", "rm", "-f", *tags], capture_output=True, check=False)
        runs.append(run_harness("cold, --jobs 2", args.matrix, work / "cold", "--jobs", "2", "--no-cache", *base))
    # warm: the images are there, every cell is computed again (--no-cache: the cell cache would reuse them all)
    warm1 = run_harness("warm, --jobs 1", args.matrix, work / "warm1", "--jobs", "1", "--no-cache", *base)
    warm2 = run_harness("warm, --jobs 2", args.matrix, work / "warm2", "--jobs", "2", "--no-cache", *base)
    runs += [warm1, warm2]
    runs.append(run_harness("rerun, nothing changed (cell cache)", args.matrix, work / "cached", "--jobs", "2", *base))
    naive_load, naive_containers = naive_loads(args.matrix, work / "warm1", base_image)
    naive_total = float(warm1.run["timings"].get("save", 0.0)) + naive_load
    print(f"naive: {naive_load:.1f} s of loads in {naive_containers} containers, {naive_total:.1f} s with saves")
    rows = scaling(args.matrix, work, [*base, "--jobs", "2"], warm2) if args.scaling else []
    write_results(args.results, runs, warm1=warm1, warm2=warm2, naive=(naive_total, naive_containers, naive_load),
                  rows=rows)
    return 0


def write_results(path: Path, runs: list[Measured], *, warm1: Measured, warm2: Measured,
                  naive: tuple[float, int, float], rows: list[tuple[int, int, float, int]]) -> None:
    """RESULTS.md: the machine, every figure, and the ratios the targets are about."""
    naive_total, naive_containers, naive_load = naive
    n_envs = len(warm2.run["environments"])
    lines = [
        "# Benchmark results", "",
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with `python benchmarks/bench.py` on: "
        f"{machine()}.", "",
        "| run | wall s | containers started | images built | in-container s | phases | host peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {m.label} | {m.wall:.1f} | {m.containers} | {m.built()} | {m.in_container():.1f} | {phases(m)} "
              f"| {m.peak_rss_mb:.0f} |" for m in runs]
    lines += [f"| naive per-pair loads (+ the same saves) | {naive_total:.1f} | {naive_containers} (+{n_envs} saves) "
              f"| 0 | {naive_load:.1f} (loads) | - | - |", ""]
    ideal = warm2.in_container() / 2
    lines += [
        "## Ratios", "",
        "| figure | value | target |", "|---|---|---|",
        f"| containers started per environment (warm) | {warm2.containers / n_envs:.1f} | 2 |",
        f"| images rebuilt on the warm runs | {warm1.built() + warm2.built()} | 0 |",
        f"| warm wall / (in-container time / 2 jobs) | {warm2.wall / ideal:.2f} | <= 1.15 |",
        f"| naive / ours, --jobs 1 | {naive_total / warm1.wall:.2f} | >= 1.5 |",
        f"| naive / ours, --jobs 2 | {naive_total / warm2.wall:.2f} | >= 2.5 |",
        f"| host peak RSS (MB) | {max(m.peak_rss_mb for m in runs):.0f} | <= 150 |", "",
    ]
    if rows:
        lines += ["## Scaling (warm, --jobs 2)", "", "| environments | probe models | cells | wall s |",
                  "|---|---|---|---|"]
        lines += [f"| {e} | {m or 'all'} | {c} | {w:.1f} |" for e, m, w, c in rows]
        lines.append("")
    old = path.read_text() if path.is_file() else ""
    if WHEEL_CACHE[0] in old and WHEEL_CACHE[1] in old:  # benchmarks/wheel_cache.py's block stays
        lines += [old[old.index(WHEEL_CACHE[0]):old.index(WHEEL_CACHE[1]) + len(WHEEL_CACHE[1])], ""]
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
