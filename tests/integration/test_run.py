"""The whole flow for real: Docker, TensorFlow images, the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OLD, MID, NEW, BROKEN = "py3.9-tf2.12.1", "py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3", "py3.11-tf2.12.9"
BUILT = (OLD, MID, NEW)
MATRIX = """
name: integration
environments:
  - {python: "3.9", tensorflow: "2.12.1"}
  - {python: "3.11", tensorflow: "2.15.1"}
  - {python: "3.11", tensorflow: "2.16.2", keras: "3.3.3"}
  - {python: "3.11", tensorflow: "2.12.9"}   # no such release: a build error, not a harness crash
models: [dense, lambda, label_order, fault_segfault]
formats: [h5, keras, savedmodel]
loaders: [load_model, load_model_custom]
"""
# Per (source, target): dense, lambda and label_order in 3 formats with load_model (9 cells),
# fault_segfault in .keras with and without custom_objects (2 cells).
CELLS_PER_PAIR = 11


def harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=3600, check=False)


def load(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, docker: None) -> tuple[subprocess.CompletedProcess[str], Path]:
    root = tmp_path_factory.mktemp("integration")
    (root / "matrix.yaml").write_text(MATRIX)
    out = root / "run"
    # --no-cache: this run's containers are under test, whatever an earlier run on this host computed
    return harness("run", str(root / "matrix.yaml"), "--out", str(out), "--jobs", "2", "--no-cache"), out


def test_run_reports_every_pair_and_the_keras_break(first_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = first_run
    assert proc.returncode == 1, proc.stderr
    report = load_report(out / "report.json")
    envs = {e["id"]: e for e in report["environments"]}
    assert envs[OLD]["python"].startswith("3.9")  # the agent really ran on Python 3.9
    assert envs[OLD]["keras_major"] == 2 and envs[NEW]["keras_major"] == 3
    cells = {(c["source"], c["target"], c["model"], c["format"]): c for c in report["cells"]
             if c["loader"] == "load_model"}
    assert len(report["cells"]) == 4 * 4 * CELLS_PER_PAIR
    for source in BUILT:
        assert cells[(source, source, "dense", "h5")]["status"] == "pass"
        assert cells[(source, source, "dense", "keras")]["bit_exact"] is True
    # A Keras 2 .keras file does not load in Keras 3, and the report says why.
    broken = cells[(OLD, NEW, "dense", "keras")]
    assert broken["status"] == "error"
    assert "Keras 2" in broken["error"]["hint"]
    assert report["summary"]["grid"][OLD][NEW]["worst"] in ("error", "crash")
    for c in report["cells"]:
        if BROKEN in (c["source"], c["target"]):
            assert c["status"] == "skipped"
    md = (out / "report.md").read_text()
    assert OLD in md and "saved in" in md


def test_known_breaks_are_classified(first_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = first_run
    cells = {(c["source"], c["target"], c["model"], c["format"], c["loader"]): c
             for c in load_report(out / "report.json")["cells"]}
    # Lambda bytecode marshalled by Python 3.11 does not load on Python 3.9.
    lam = cells[(MID, OLD, "lambda", "h5", "load_model")]
    assert lam["status"] == "error" and "bytecode" in lam["error"]["hint"]
    # Keras 3 load_model refuses a Keras 2 SavedModel and points to TFSMLayer.
    saved = cells[(MID, NEW, "dense", "savedmodel", "load_model")]
    assert saved["status"] == "error" and "TFSMLayer" in saved["error"]["hint"]
    assert cells[(NEW, NEW, "dense", "savedmodel", "load_model")]["status"] == "unsupported"  # Keras 3 can't write it
    # A worker that segfaults is a crash cell; the next cells still ran.
    crash = cells[(NEW, NEW, "fault_segfault", "keras", "load_model_custom")]
    assert crash["status"] == "crash" and crash["signal"] == "SIGSEGV" and "native code" in crash["error"]["hint"]
    assert cells[(NEW, NEW, "label_order", "keras", "load_model")]["status"] == "drift"
    assert "PYTHONHASHSEED" in cells[(NEW, NEW, "label_order", "keras", "load_model")]["hint"]
    failing = [c for c in cells.values() if c["status"] in ("error", "crash", "timeout")]
    assert sum(1 for c in failing if c["error"]["hint"]) >= 0.9 * len(failing)


def test_failed_build_keeps_pips_own_line(first_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = first_run
    envs = {e["id"]: e for e in load_report(out / "report.json")["environments"]}
    assert envs[BROKEN]["status"] == "build_error"
    assert "tensorflow-cpu==2.12.9" in envs[BROKEN]["error"]
    assert (out / "envs" / BROKEN / "build.log").is_file()


def test_two_containers_per_built_environment(first_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = first_run
    run = load(out / "run.json")
    assert run["containers_started"] == 2 * 3
    for env_id in BUILT:
        assert (out / "envs" / env_id / "packages.txt").read_text().count("==") > 10
        assert (out / "records" / f"load-{env_id}.jsonl").is_file()


def test_report_rerenders_from_records_alone(first_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = first_run
    before = load_report(out / "report.json")["cells"]
    proc = harness("report", str(out), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert proc.returncode == 1, proc.stderr
    assert load_report(out / "report.json")["cells"] == before


def test_resume_of_a_finished_run_starts_nothing(first_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = first_run
    before = load(out / "run.json")["containers_started"]
    start = time.monotonic()
    proc = harness("run", str(out.parent / "matrix.yaml"), "--out", str(out), "--resume")
    assert proc.returncode == 1, proc.stderr
    assert load(out / "run.json")["containers_started"] == before
    assert time.monotonic() - start < 60


def test_warm_rerun_rebuilds_no_image(first_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = first_run
    again = out.parent / "warm"
    proc = harness("run", str(out.parent / "matrix.yaml"), "--out", str(again), *(f"--only={e}" for e in BUILT))
    assert proc.returncode == 1, proc.stderr
    run = load(again / "run.json")
    assert [e["build"]["built"] for e in run["environments"]] == [False, False, False]
    def statuses(report: dict[str, Any]) -> list[tuple[str, ...]]:
        return [(c["source"], c["target"], c["model"], c["format"], c["loader"], c["status"])
                for c in report["cells"]]

    first = [s for s in statuses(load_report(out / "report.json")) if BROKEN not in s]
    assert statuses(load_report(again / "report.json")) == first
    # The same matrix twice on the same images: nothing regressed, and what changed by itself is counted apart.
    diff = harness("diff", str(out), str(again))
    assert diff.returncode == 0, diff.stdout
    assert "regressions (0):" in diff.stdout and "spurious (" in diff.stdout and ": 0 regressed," in diff.stdout
    gate = harness("report", str(again), "--baseline", str(out), "--fail-on", "regressions")
    assert gate.returncode == 0, gate.stdout
    verdict = load_report(again / "report.json")["verdict"]
    assert verdict["regressions"] == [] and isinstance(verdict["spurious"], list)


def test_unreachable_engine_exits_3_with_one_line(tmp_path: Path) -> None:
    proc = harness("run", "matrices/smoke.yaml", "--out", str(tmp_path / "run"),
                   env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert proc.returncode == 3
    assert proc.stderr.strip().count("\n") == 0 and "Docker engine unavailable" in proc.stderr
    assert not (tmp_path / "run").exists()
