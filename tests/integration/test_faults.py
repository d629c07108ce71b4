"""Faults are results: hostile artifacts, crashes, hangs, OOM and interruption, in real containers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.agent.protocol import read_records
from harness.engine import LABEL_RUN
from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENV = "py3.11-tf2.16.2-keras3.3.3"
FAULTS = """
name: faults
environments:
  - {python: "3.11", tensorflow: "2.16.2", keras: "3.3.3"}
models: [dense, fault_network, fault_write, fault_oom, fault_abort, fault_segfault, fault_hang]
formats: [keras]
loaders: [load_model_custom, load_model]
"""


def harness_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def interruptible_cmd(*args: str) -> list[str]:
    """The harness as a terminal's Ctrl-C meets it, even where this test was started in the background:
    a shell without job control starts background jobs with SIGINT ignored, and children inherit that."""
    start = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from harness.cli import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-c", start, *args]


def load(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory: pytest.TempPathFactory, docker: None) -> Path:
    root = tmp_path_factory.mktemp("faults")
    (root / "matrix.yaml").write_text(FAULTS)
    proc = subprocess.run(harness_cmd("run", str(root / "matrix.yaml"), "--out", str(root / "run"),
                                      "--cell-timeout", "15", "--memory", "3g", "--fail-on", "unexpected"),
                          capture_output=True, text=True, cwd=ROOT, timeout=1800, check=False)
    assert proc.returncode == 1, proc.stderr
    return root / "run"


def _cells(run: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["model"], c["loader"]): c for c in load_report(run / "report.json")["cells"]}


def test_sandbox_blocks_network_and_writes_and_the_report_says_so(fault_run: Path) -> None:
    cells = _cells(fault_run)
    network = cells[("fault_network", "load_model_custom")]
    assert network["status"] == "error"
    assert network["error"]["message"].startswith("network blocked")
    writes = cells[("fault_write", "load_model_custom")]
    assert writes["status"] == "error"
    assert writes["error"]["message"].startswith("writes blocked")
    assert "Read-only file system" in writes["error"]["message"]
    assert not (fault_run / "artifacts" / ".tampered").exists()


def test_crashes_hangs_and_oom_are_cells_and_the_run_goes_on(fault_run: Path) -> None:
    cells = _cells(fault_run)
    assert (cells[("fault_segfault", "load_model_custom")]["status"],
            cells[("fault_segfault", "load_model_custom")]["signal"]) == ("crash", "SIGSEGV")
    assert (cells[("fault_abort", "load_model_custom")]["status"],
            cells[("fault_abort", "load_model_custom")]["signal"]) == ("crash", "SIGABRT")
    oom = cells[("fault_oom", "load_model_custom")]
    assert (oom["status"], oom["signal"]) == ("crash", "SIGKILL")
    assert "out of memory" in oom["error"]["hint"]
    assert cells[("fault_hang", "load_model_custom")]["status"] == "timeout"
    assert cells[("dense", "load_model")]["status"] == "pass"
    # Without custom_objects the hostile class is never instantiated: a plain, hinted error.
    assert cells[("fault_segfault", "load_model")]["status"] == "error"
    assert cells[("fault_segfault", "load_model")]["error"]["hint"]


def _containers(run_id: str) -> list[str]:
    proc = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL_RUN}={run_id}"],
                          capture_output=True, text=True, check=True)
    return proc.stdout.split()


def _wait_for(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_cleans_up_and_resume_finishes_without_redoing_cells(
    tmp_path: Path, docker: None, sig: signal.Signals
) -> None:
    (tmp_path / "matrix.yaml").write_text(FAULTS.replace(
        "models: [dense, fault_network, fault_write, fault_oom, fault_abort, fault_segfault, fault_hang]",
        "models: [dense, fault_hang]"))
    out = tmp_path / "run"
    records = out / "records" / f"load-{ENV}.jsonl"
    proc = subprocess.Popen(interruptible_cmd("run", str(tmp_path / "matrix.yaml"), "--out", str(out),
                                              "--cell-timeout", "120"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # dense's cells sort before fault_hang's: wait until they are recorded, then stop mid-hang.
        _wait_for(lambda: records.is_file() and len(records.read_text().splitlines()) >= 1, 600)
        time.sleep(3)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    run = load(out / "run.json")
    assert run["status"] == "interrupted"
    assert _containers(run["run_id"]) == []
    done_before = [r for r in read_records(str(records)) if r["kind"] == "load"]
    assert [(r["model"], r["loader"]) for r in done_before] == [("dense", "load_model")]
    resumed = subprocess.run(harness_cmd("run", str(tmp_path / "matrix.yaml"), "--out", str(out), "--resume",
                                         "--cell-timeout", "5", "--fail-on", "unexpected"),
                             capture_output=True, text=True, cwd=ROOT, timeout=900, check=False)
    assert resumed.returncode == 1, resumed.stderr  # the hang is a timeout cell no expectation covers
    after = [r for r in read_records(str(records)) if r["kind"] == "load"]
    keys = [(r["model"], r["loader"]) for r in after]
    assert keys.count(("dense", "load_model")) == 1  # not redone
    report = load_report(out / "report.json")
    statuses = {(c["model"], c["loader"]): c["status"] for c in report["cells"]}
    assert statuses[("dense", "load_model")] == "pass"
    assert statuses[("fault_hang", "load_model_custom")] == "timeout"
    assert load(out / "run.json")["status"] == "complete"
