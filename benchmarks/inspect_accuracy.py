"""How well `harness inspect` predicts which routes fail, measured against the cells of a finished run.

    python benchmarks/inspect_accuracy.py RUN_DIR [RUN_DIR...] [--answer-times examples]
                                          [--results benchmarks/RESULTS.md]

Every saved artifact of the run is read once on the host (harness/inspection.py, no TensorFlow) and every cell is
predicted from it and its target's versions (the table of harness/agent/accepts.py). A cell whose load raised,
crashed or timed out is a failing route; one that loaded (pass or drift) is not; cells a target has no loader for
(unsupported), that were never saved (skipped) or that have no file (a probe rebuilt from its seed) are left out.
A model the run evaluates is predicted as evaluated. Precision: of the routes predicted to fail, how many
did; recall: of the routes that failed, how many were predicted. Probes are loaded by their plain loaders without
their custom objects (load_model_custom passes them), as the run does.

--answer-times PATH also times `python -m harness inspect FILE --to ...` itself, from the command to its answer
(Python starting included), on every file and SavedModel folder below PATH and on every artifact of the runs.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.agent.protocol import Release, accepts_predict  # noqa: E402
from harness.inspection import Inspected, inspect_file  # noqa: E402

FAILED = ("error", "crash", "timeout")
LOADED = ("pass", "drift")
NO_FILE = ("seed",)  # a probe rebuilt from its seed: nothing saved to read
MARKS = ("<!-- inspect-accuracy -->", "<!-- /inspect-accuracy -->")
ANSWER_TARGETS = ("2.15.1", "2.16.2+keras3.3.3", "2.21.0+keras3.15.1")


def artifact(run: Path, source: str, model: str, fmt: str) -> tuple[Path, bool] | None:
    """The path of one saved artifact, from its source's manifest, and whether its model is evaluated."""
    try:
        entry = json.loads((run / "artifacts" / source / "manifest.json").read_text())["models"][model]
        return run / "artifacts" / source / entry["formats"][fmt]["path"], entry.get("evaluate") is not None
    except (OSError, KeyError, ValueError):
        return None


def release(env: dict[str, Any]) -> Release:
    """A report environment as the table sees it."""
    return Release(keras=str(env.get("keras") or ""), keras_package=str(env.get("keras_package") or "keras"),
                   python=str(env.get("python") or ""), backend=str(env.get("backend") or "tensorflow"),
                   tensorflow=str(env.get("tensorflow") or ""))


def measure(run: Path) -> dict[str, Any]:
    """Confusion counts, per cause, and inspection times for one run directory."""
    report = json.loads((run / "report.json").read_text())
    envs = {e["id"]: e for e in report["environments"]}
    files: dict[tuple[str, str, str], tuple[Inspected, bool] | None] = {}
    tally: collections.Counter[str] = collections.Counter()
    missed: collections.Counter[str] = collections.Counter()
    wrong: collections.Counter[str] = collections.Counter()
    for cell in report["cells"]:
        status = cell["status"]
        if status not in FAILED + LOADED or cell["format"] in NO_FILE:
            continue
        key = (cell["source"], cell["model"], cell["format"])
        if key not in files:
            where = artifact(run, *key)
            files[key] = (inspect_file(where[0]), where[1]) if where is not None else None
        read = files[key]
        if read is None or cell["target"] not in envs:
            continue
        found, evaluated = read
        told = accepts_predict(found.findings, cell["format"], cell["loader"], release(envs[cell["target"]]),
                               custom_objects=cell["loader"] == "load_model_custom", evaluate=evaluated)
        predicted, failed = told["outcome"] == "error", status in FAILED
        tally[("t" if predicted == failed else "f") + ("p" if predicted else "n")] += 1
        cause = str(cell.get("cause") or (cell.get("error") or {}).get("type") or status)
        if failed and not predicted:
            missed[cause] += 1
        if predicted and not failed:
            wrong["+".join(told["causes"]) or "?"] += 1
    times = [f[0].seconds for f in files.values() if f is not None]
    return {"run": str(run), "matrix": report.get("matrix", {}).get("name"), "tally": dict(tally),
            "missed": missed.most_common(8), "wrong": wrong.most_common(8), "files": len(times),
            "slowest": max(times, default=0.0), "total": sum(times)}


def files_below(path: Path) -> list[Path]:
    """Every file below path, a SavedModel folder counted once (as inspect reads it)."""
    if not path.is_dir():
        return [path]
    if (path / "saved_model.pb").is_file():
        return [path]
    return [found for child in sorted(path.iterdir()) for found in files_below(child)]


def run_files(run: Path) -> list[Path]:
    """Every artifact a run saved that has a file (or folder, or checkpoint prefix)."""
    found = []
    for manifest in sorted((run / "artifacts").glob("*/manifest.json")):
        models = json.loads(manifest.read_text()).get("models", {})
        for entry in models.values():
            found += [manifest.parent / spec["path"] for fmt, spec in sorted(entry.get("formats", {}).items())
                      if fmt not in NO_FILE and spec.get("path")]
    return found


def answer_seconds(path: Path) -> float:
    """How long `harness inspect` takes to answer for one file, from the command to its exit."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "harness", "inspect", str(path),
                           *(f"--to={spec}" for spec in ANSWER_TARGETS)], cwd=ROOT, capture_output=True, check=False)
    seconds = time.monotonic() - start
    if done.returncode not in (0, 1, 2):
        raise RuntimeError(f"harness inspect {path}: exit {done.returncode}: {done.stderr.decode()[-400:]}")
    return seconds


def answer_times(label: str, paths: list[Path]) -> dict[str, Any]:
    """inspect's answer time on each path: count, median, max and the slowest file."""
    times = {str(p): answer_seconds(p) for p in paths}
    slowest = max(times, key=times.__getitem__) if times else ""
    return {"label": label, "files": len(times), "median": statistics.median(times.values()) if times else 0.0,
            "max": times.get(slowest, 0.0), "slowest": slowest, "load": os.getloadavg()[0]}


def ratios(tally: dict[str, int]) -> tuple[float, float]:
    """(precision, recall) of the predicted failures."""
    tp, fp, fn = tally.get("tp", 0), tally.get("fp", 0), tally.get("fn", 0)
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def lines(results: list[dict[str, Any]], timed: list[dict[str, Any]] | None = None) -> list[str]:
    """The RESULTS.md block."""
    out = [MARKS[0], "## `harness inspect`: failing routes predicted from the file, before any container", "",
           f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with "
           "`python benchmarks/inspect_accuracy.py` "
           "over finished runs: every artifact read on the host without TensorFlow, every cell predicted from it and "
           "its target's versions, then compared with what the cell did. A failing route raised, crashed or timed "
           "out; unsupported and skipped cells are left out.", "",
           "| matrix | cells | failed | predicted to fail | precision | recall | files read | slowest read s |",
           "|---|---|---|---|---|---|---|---|"]
    for r in results:
        t = r["tally"]
        precision, recall = ratios(t)
        cells = sum(t.values())
        out.append(f"| {r['matrix']} | {cells} | {t.get('tp', 0) + t.get('fn', 0)} | {t.get('tp', 0) + t.get('fp', 0)} "
                   f"| {precision:.3f} | {recall:.3f} | {r['files']} | {r['slowest']:.4f} |")
    out.append("")
    for r in results:
        out.append(f"{r['matrix']}: failures not predicted, by cause: "
                   + (", ".join(f"{c} {n}" for c, n in r["missed"]) or "none")
                   + "; predicted failures that loaded, by predicted cause: "
                   + (", ".join(f"{c} {n}" for c, n in r["wrong"]) or "none") + ".")
    if timed:
        out += ["", "`harness inspect FILE " + " ".join(f"--to {t}" for t in ANSWER_TARGETS) + "`, timed from the "
                "command to its exit (Python starting included), once per file:", "",
                "| files | count | median s | max s | slowest | load average (1 min) at the end |",
                "|---|---|---|---|---|---|"]
        out += [f"| {t['label']} | {t['files']} | {t['median']:.2f} | {t['max']:.2f} | "
                f"`{os.path.relpath(t['slowest'], ROOT) if t['slowest'].startswith(str(ROOT)) else t['slowest']}` "
                f"| {t['load']:.1f} |" for t in timed]
    out += ["", MARKS[1]]
    return out


def main() -> int:
    """Measure every run directory given; print the figures and put them in RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--answer-times", dest="answer_times", type=Path, action="append", default=[],
                        metavar="PATH", help="also time inspect's answer on every file below PATH and every artifact "
                        "of the runs")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    results = [measure(run) for run in args.runs]
    timed = [answer_times(str(path), files_below(path)) for path in args.answer_times]
    if args.answer_times:
        timed += [answer_times(f"{r['matrix']} artifacts", run_files(run)) for r, run in zip(results, args.runs)]
    block = lines(results, timed)
    print("\n".join(block))
    old = args.results.read_text() if args.results.is_file() else ""
    if MARKS[0] in old and MARKS[1] in old:
        old = old[:old.index(MARKS[0])] + old[old.index(MARKS[1]) + len(MARKS[1]):].lstrip("\n")
    args.results.write_text(old.rstrip("\n") + "\n\n" + "\n".join(block) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
