"""The nightly GitHub Actions workflow: actionlint clean, and consistent with what the phases write."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fake_engine import FakeEngine, planned_runner
from harness.matrix import parse_matrix
from harness.plan import plan_environments
from harness.rundir import RunDir
from harness.workflow import execute

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"


def _workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def _steps(job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _workflow()["jobs"][job]["steps"]
    return steps


def _uses(job: str, action: str) -> list[dict[str, Any]]:
    return [s for s in _steps(job) if str(s.get("uses", "")).startswith(action + "@")]


def _actionlint() -> str | None:
    # The tox environment's bin/ first: its actionlint need not be on PATH.
    return shutil.which("actionlint", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                           os.environ.get("PATH", "")]))


def test_actionlint_passes() -> None:
    binary = _actionlint()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("actionlint is not installed (pip install -e '.[lint]')")
        pytest.skip("actionlint is not installed (pip install -e '.[lint]')")
    # Every workflow: pr-gate.yml uses the composite action (./), so its inputs are checked against action.yml.
    proc = subprocess.run([binary, "-no-color", *map(str, sorted(WORKFLOW.parent.glob("*.yml")))],
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_nightly_runs_on_a_schedule_and_by_hand() -> None:
    triggers = _workflow()[True]  # YAML 1.1 reads the key `on` as true
    assert re.fullmatch(r"[\d*/,-]+ [\d*/,-]+ [\d*/,-]+ [\d*/,-]+ [\d*/,-]+", triggers["schedule"][0]["cron"])
    assert "workflow_dispatch" in triggers
    assert list(_workflow()["jobs"]) == ["plan", "save", "load", "report"]


def test_another_repository_calls_the_nightly_with_its_own_matrix() -> None:
    called = _workflow()[True]["workflow_call"]["inputs"]
    assert called["matrix"]["type"] == called["harness"]["type"] == "string"
    assert _workflow()["env"]["HARNESS_SPEC"] == "${{ inputs.harness || '.' }}"
    installs = [s["run"] for job in _workflow()["jobs"] for s in _steps(job) if "pip install" in str(s.get("run"))]
    assert installs and all(run == 'python -m pip install "$HARNESS_SPEC"' for run in installs)


def test_jobs_fan_out_over_the_plan_and_merge_in_the_report() -> None:
    jobs = _workflow()["jobs"]
    for job in ("save", "load"):
        assert jobs[job]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.plan).matrices[0] }}"
        assert jobs[job]["strategy"]["fail-fast"] is False
    assert "--phase build --phase save" in _steps("save")[-2]["run"]
    assert _uses("save", "actions/upload-artifact")[0]["with"]["name"] == "save-${{ matrix.env }}"
    assert _uses("load", "actions/download-artifact")[0]["with"]["pattern"] == "save-*"
    assert "--phase load" in _steps("load")[-2]["run"]
    report = "\n".join(str(s.get("run", "")) for s in _steps("report"))
    assert "--phase report" in report and "--baseline baseline/report.json" in report
    assert "gh run download" in report and "nightly-report" in report
    uploaded = _uses("report", "actions/upload-artifact")[0]["with"]
    assert uploaded["name"] == "nightly-report"
    for name in ("report.json", "report.html", "junit.xml"):
        assert f"/{name}" in uploaded["path"]
    for job in ("load", "report"):  # a failed save or load still leaves a report to read
        assert "!cancelled()" in jobs[job]["if"]


def test_the_load_jobs_upload_covers_everything_the_load_phase_writes(tmp_path: Path) -> None:
    matrix = parse_matrix({"environments": [{"python": "3.11", "tensorflow": "2.15.1"}], "models": ["dense"],
                           "formats": ["h5"], "loaders": ["load_model"]}, path="m.yaml", sha256="0" * 64)
    plans = plan_environments(matrix, {})
    env_id = plans[0].env.id

    def run(phases: tuple[str, ...]) -> None:
        execute(planned_runner(FakeEngine(), matrix, RunDir.prepare(tmp_path, resume=False, shared=True), envs=plans,
                               run_id="x", phases=phases))

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    run(("build", "save"))
    before = files()
    run(("load",))
    written = {path for path, data in files().items() if before.get(path) != data} - {"run.json"}
    upload = _uses("load", "actions/upload-artifact")[0]["with"]["path"]
    patterns = [line.strip().replace("${{ env.RUN_DIR }}/", "").replace("${{ matrix.env }}", env_id)
                for line in upload.splitlines() if line.strip()]
    assert written
    for path in written:
        assert any(path == p or (p.endswith("/") and path.startswith(p)) for p in patterns), (path, patterns)
    assert json.loads((tmp_path / "envs" / env_id / "load.json").read_text())["finished"]


def test_the_nightly_pins_tonights_versions_and_keeps_its_baseline() -> None:
    for job in ("save", "load", "report"):
        steps = _steps(job)
        pins = [s for s in steps if s.get("name") == "the versions the plan resolved"]
        assert pins and "jq .versions > versions.json" in pins[0]["run"]
        assert pins[0]["env"]["PLAN"] == "${{ needs.plan.outputs.plan }}"
        assert any("--versions versions.json" in str(s.get("run", "")) for s in steps)
    baseline = next(s["run"] for s in _steps("report") if "gh run download" in str(s.get("run", "")))
    assert '[ "$(jq -r .matrix.path baseline/report.json)" = "$MATRIX" ]' in baseline  # of the same matrix


def test_the_site_is_published_after_every_nightly() -> None:
    pages: dict[Any, Any] = yaml.safe_load((WORKFLOW.parent / "pages.yml").read_text())
    assert pages[True]["workflow_run"] == {"workflows": ["nightly"], "types": ["completed"]}
    build = "\n".join(str(s.get("run", "")) for s in pages["jobs"]["build"]["steps"])
    assert "--name nightly-report" in build and 'python -m harness site "${runs[@]}" --out site' in build
    assert pages["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert pages["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages@")
