"""Phases as separate CI jobs would run them, for real: each in its own process and its own copy of the run
directory, combined by copying; the merged report equals a single-process run cell for cell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness.report.schema import load_report

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SMOKE = str(ROOT / "matrices" / "smoke.yaml")
ENVS = ("py3.11-tf2.15.1", "py3.11-tf2.16.2-keras3.3.3")
TIMING_KEYS = {"seconds"}


def harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=1800, check=False)


def phases(out: Path, env_id: str | None, *names: str) -> subprocess.CompletedProcess[str]:
    only = ["--only", env_id] if env_id else []
    return harness("run", SMOKE, "--out", str(out), "--no-cache", *only, *(f"--phase={n}" for n in names))


def assemble(into: Path, *parts: Path) -> Path:
    for part in parts:
        shutil.copytree(part, into, dirs_exist_ok=True)
    return into


def cells(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k not in TIMING_KEYS} for c in report["cells"]]


def load(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def fanout(tmp_path_factory: pytest.TempPathFactory, docker: None) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fanout")
    # Every job computes its cells (--no-cache): the fan-out's own accounting is under test, not the cell cache
    single = harness("run", SMOKE, "--out", str(root / "single"), "--jobs", "2", "--no-cache")
    assert single.returncode in (0, 1), single.stderr
    with ThreadPoolExecutor(2) as pool:  # the save jobs of two machines, at the same time
        saves = list(pool.map(lambda e: phases(root / f"save-{e}", e, "build", "save"), ENVS))
    for proc in saves:
        assert proc.returncode == 0, proc.stderr
    save_dirs = [root / f"save-{e}" for e in ENVS]
    for env_id in ENVS:  # each load job downloads every save
        assemble(root / f"load-{env_id}", *save_dirs)
    with ThreadPoolExecutor(2) as pool:
        loads = list(pool.map(lambda e: phases(root / f"load-{e}", e, "load"), ENVS))
    for proc in loads:
        assert proc.returncode == 0, proc.stderr
    merged = assemble(root / "merged", *save_dirs, *(root / f"load-{e}" for e in ENVS))
    report = phases(merged, None, "report")
    assert report.returncode == single.returncode, report.stderr
    return {"single": root / "single", "merged": merged, "root": root}


def test_merged_report_equals_the_single_run_cell_for_cell(fanout: dict[str, Path]) -> None:
    single, merged = load_report(fanout["single"] / "report.json"), load_report(fanout["merged"] / "report.json")
    assert len(merged["cells"]) == 2 * 2 * 2
    assert merged["summary"]["counts"]["pass"] >= 4  # every environment's own artifacts, at least
    assert cells(merged) == cells(single)
    assert merged["summary"] == single["summary"]
    assert merged["verdict"] == single["verdict"]
    assert [e["id"] for e in merged["environments"]] == list(ENVS)
    for before, after in zip(single["environments"], merged["environments"]):
        assert {k: after[k] for k in ("python", "tensorflow", "keras", "image", "status")} == \
               {k: before[k] for k in ("python", "tensorflow", "keras", "image", "status")}


def test_merged_run_json_counts_every_jobs_containers(fanout: dict[str, Path]) -> None:
    run = load(fanout["merged"] / "run.json")
    assert run["status"] == "complete" and run["containers_started"] == 2 * len(ENVS)
    for env in run["environments"]:
        assert set(env["phases"]) == {"build", "save", "load"}
        assert env["save"]["exit_code"] == 0 and env["load"]["exit_code"] == 0
    single = load(fanout["single"] / "run.json")
    assert single["containers_started"] == 2 * len(ENVS)


def test_report_command_rerenders_the_assembled_directory_without_docker(fanout: dict[str, Path]) -> None:
    merged = fanout["merged"]
    before = cells(load_report(merged / "report.json"))
    proc = harness("report", str(merged), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert proc.returncode in (0, 1), proc.stderr
    assert cells(load_report(merged / "report.json")) == before


def test_a_job_leaves_only_its_own_environments_files(fanout: dict[str, Path]) -> None:
    a, b = ENVS
    save_a = fanout["root"] / f"save-{a}"
    assert sorted(p.name for p in (save_a / "artifacts").iterdir()) == [a]
    assert sorted(p.name for p in (save_a / "envs").iterdir()) == [a]
    assert not (save_a / "records" / f"save-{b}.jsonl").exists()
    assert not (fanout["root"] / f"load-{a}" / "records" / f"load-{b}.jsonl").exists()
