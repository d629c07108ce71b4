"""Cold builds of two environments that share a TensorFlow release: without the wheel cache, then with it.

    python benchmarks/wheel_cache.py [--python 3.11] [--tensorflow 2.16.2] [--jobs 1] [--results benchmarks/RESULTS.md]

The two environments are TF X with Keras 3 and TF X with tf-keras (as in matrices/default.yaml). Each
measurement builds both images from nothing: on a base image of its own (a label added to the Python's
base image), so no layer of an earlier build is reused; those images and bases are removed afterwards.

- without the cache (HARNESS_WHEEL_CACHE=off): each build downloads from the index itself; the bytes are
  the sum of pip's own "Downloading NAME (SIZE)" lines in the build logs (pip rounds them);
- with an empty cache: run.json's `wheels`, counted by the cache (exact bytes fetched from the index);
- with the cache full (a second host-side run): the same builds, every file served from the cache.

Writes its table into RESULTS.md between the wheel-cache markers (bench.py keeps that block).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- wheel-cache -->", "<!-- /wheel-cache -->"
UNITS = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
MB = 1e6


def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], input=stdin, capture_output=True, text=True, check=False, timeout=3600)


def base_of(python: str) -> str:
    """A present base image of that Python: python:X-slim, else harness-base:X (built now if need be)."""
    for image in (f"python:{python}-slim", f"harness-base:{python}"):
        if docker("image", "inspect", image).returncode == 0:
            return image
    subprocess.run([sys.executable, "-m", "harness", "base-images", python], cwd=ROOT, check=True)
    return f"harness-base:{python}"


def fresh_base(python: str, label: str) -> str:
    """A base image no build has used yet: the Python's base plus one label."""
    tag = f"harness-bench-{label}:{python}"
    proc = docker("build", "-q", "-t", tag, "-", stdin=f"FROM {base_of(python)}\nLABEL org.harness.bench={label}\n")
    if proc.returncode != 0:
        raise SystemExit(f"could not make {tag}: {proc.stderr.strip()}")
    return tag


def logged_downloads(run_dir: Path) -> tuple[int, float]:
    """Files and bytes pip says it downloaded, over every build log of the run."""
    files, total = 0, 0.0
    for log in run_dir.glob("envs/*/build*.log"):
        for size, unit in re.findall(r"Downloading \S+ \(([\d.]+) (bytes|kB|MB|GB)\)", log.read_text(errors="replace")):
            files += 1
            total += float(size) * UNITS[unit]
    return files, total


def build(matrix: Path, out: Path, label: str, base: str, *, jobs: int, cache: str) -> dict[str, Any]:
    """One cold build phase of the matrix; its wall time, run.json and pip's own download lines."""
    env = {**os.environ, "HARNESS_WHEEL_CACHE": cache}
    env.pop("HARNESS_BASE_IMAGE", None)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(matrix), "--out", str(out), "--phase", "build",
                           "--jobs", str(jobs), "--base-image", base.replace(base.rsplit(":", 1)[1], "{python}")],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    run = json.loads((out / "run.json").read_text())
    files, logged = logged_downloads(out)
    for image in {e["image"] for e in run["environments"] if e.get("image")}:
        docker("rmi", image)
    print(f"{label}: exit {proc.returncode}, {wall:.1f} s, pip logged {files} downloads, {logged / MB:.1f} MB; "
          f"wheels {run.get('wheels')}")
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
    return {"label": label, "wall": wall, "files": files, "logged": logged, "wheels": run.get("wheels"),
            "build_seconds": [e.get("build", {}).get("seconds") for e in run["environments"]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--tensorflow", default="2.16.2")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="harness-wheel-bench-"))
    matrix = work / "shared-tf.yaml"
    matrix.write_text(f"""name: shared-tf
environments:
  - {{python: "{args.python}", tensorflow: "{args.tensorflow}", keras: "3.3.3"}}
  - {{python: "{args.python}", tensorflow: "{args.tensorflow}", keras: "tf-keras"}}
models: [dense]
""")
    rows = []
    bases = []
    try:
        for label, cache in (("without the cache", "off"), ("empty cache", str(work / "wheels")),
                             ("full cache", str(work / "wheels"))):
            base = fresh_base(args.python, re.sub(r"\W+", "-", label))
            bases.append(base)
            rows.append(build(matrix, work / re.sub(r"\W+", "-", label), label, base, jobs=args.jobs, cache=cache))
    finally:
        for base in bases:
            docker("rmi", base)
    write(args.results, rows, args)
    return 0


def write(path: Path, rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The wheel-cache block of RESULTS.md."""
    lines = [BEGIN, "## Wheel cache: a cold build of two environments sharing one TensorFlow release", "",
             f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with `python benchmarks/wheel_cache.py"
             f" --jobs {args.jobs}` on {platform.platform()}, {os.cpu_count()} cores (load average {args.load:.1f} "
             f"at the start): Python {args.python}, "
             f"tensorflow-cpu {args.tensorflow} with Keras 3.3.3 and with tf-keras, both images built from nothing "
             "(a fresh base image each time, so no layer is reused).", "",
             "| builds | wall s | per image s | files downloaded | MB downloaded | files reused | MB reused |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        wheels = row["wheels"]
        seconds = " + ".join(f"{s:.0f}" for s in row["build_seconds"] if s is not None)
        if wheels is None:  # the builds downloaded for themselves: pip's own lines
            cells = f"{row['files']} | {row['logged'] / MB:.1f} (pip's log) | 0 | 0"
        else:
            cells = (f"{wheels['downloaded']} | {wheels['bytes_downloaded'] / MB:.1f} | {wheels['reused']} | "
                     f"{wheels['bytes_reused'] / MB:.1f}")
        lines.append(f"| {row['label']} | {row['wall']:.1f} | {seconds} | {cells} |")
    lines += ["", END]
    text = path.read_text() if path.is_file() else ""
    block = "\n".join(lines)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
