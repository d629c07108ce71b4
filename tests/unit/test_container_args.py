"""The save and load containers of a run, down to the `docker run` flags: which mounts are writable, whose user
runs inside, and the sandbox (no network, read-only root, no capabilities, no privilege gain, memory and pids).

Everything this module needs from the planning code goes through the helpers just below.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

import harness
from harness.agent.protocol import resolve_probe
from harness.engine import DockerCLI, RunSpec
from harness.isolation import Artifact
from harness.matrix import Environment, Matrix
from harness.plan import Limits, artifact_load_spec, load_spec, plan_environments, save_spec
from harness.rundir import RunDir

RUN_ID = "r1"
ENV_ID = "tf216"


def tiny_matrix() -> Matrix:
    return Matrix(name="tiny", path="tiny.yaml", sha256="0" * 64,
                  environments=(Environment(id=ENV_ID, python="3.11", tensorflow="==2.16.2"),))


def container(phase: str, run_dir: Path, limits: Limits) -> RunSpec:
    """The RunSpec the planning code builds for one phase of the tiny matrix's only environment."""
    matrix = tiny_matrix()
    (plan,) = plan_environments(matrix, {})
    return {"save": save_spec, "load": load_spec}[phase](matrix, plan, RunDir(run_dir), RUN_ID, limits)


@pytest.fixture(autouse=True)
def _fixed_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The containers run as the invoking user: here uid 1234, gid 5678 (once pytest has made tmp_path as itself),
    on a host of 8 cores."""
    monkeypatch.setattr(os, "getuid", lambda: 1234)
    monkeypatch.setattr(os, "getgid", lambda: 5678)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)


def flags(spec: RunSpec) -> list[str]:
    """The `docker run` arguments before the image; checks that the image and the command end the list."""
    args = DockerCLI()._run_args(spec)
    at = len(args) - len(spec.command) - 1
    assert args[at:] == [spec.image, *spec.command]
    return args[:at]


def expected_flags(phase: str, run_dir: Path, mounts: list[str], memory: str = "6g", *, user: str = "1234:5678",
                   name: str = "") -> list[str]:
    source = Path(harness.__file__).resolve().parent
    return [
        "run", "--name", name or f"harness-{RUN_ID}-{phase}-{ENV_ID}", "--init",
        "--label=org.harness.managed=true", f"--label=org.harness.run={RUN_ID}",
        f"--label=org.harness.version={harness.__version__}",
        f"--mount=type=bind,source={source},target=/opt/harness-src/harness,readonly",
        *(m.format(run=run_dir.resolve()) for m in mounts),
        "--env=HOME=/tmp", "--env=PYTHONDONTWRITEBYTECODE=1",
        f"--env=PYTHONHASHSEED={'0' if phase == 'save' else '1'}",
        "--env=PYTHONPATH=/opt/harness-src", "--env=TF_CPP_MIN_LOG_LEVEL=2",
        "--memory", memory, "--memory-swap", memory,
        "--pids-limit", "1024",
        "--cpus", "2",
        "--network", "none",
        "--user", user,
        "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=2g",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
    ]


SAVE_MOUNTS = [
    f"--mount=type=bind,source={{run}}/artifacts/{ENV_ID},target=/harness/out",
    f"--mount=type=bind,source={{run}}/records/save-{ENV_ID}.jsonl,target=/harness/records.jsonl",
]
LOAD_MOUNTS = [
    "--mount=type=bind,source={run}/artifacts,target=/harness/artifacts,readonly",
    f"--mount=type=bind,source={{run}}/outputs/{ENV_ID},target=/harness/outputs",
    f"--mount=type=bind,source={{run}}/records/load-{ENV_ID}.jsonl,target=/harness/records.jsonl",
]


def test_the_save_container_writes_only_its_own_artifacts_and_records(tmp_path: Path) -> None:
    spec = container("save", tmp_path, Limits())
    assert flags(spec) == expected_flags("save", tmp_path, SAVE_MOUNTS)
    assert spec.command[:4] == ("python", "-m", "harness.agent", "save")


def test_the_load_container_reads_every_artifact_and_writes_only_its_own_outputs(tmp_path: Path) -> None:
    spec = container("load", tmp_path, Limits())
    assert flags(spec) == expected_flags("load", tmp_path, LOAD_MOUNTS)
    assert spec.command[:4] == ("python", "-m", "harness.agent", "load")


@pytest.mark.parametrize("phase", ["save", "load"])
def test_the_memory_limit_and_runtime_come_from_the_limits(phase: str, tmp_path: Path) -> None:
    args = flags(container(phase, tmp_path, Limits(memory="2g", runtime="runsc")))
    mounts = SAVE_MOUNTS if phase == "save" else LOAD_MOUNTS
    assert args == [*expected_flags(phase, tmp_path, mounts, memory="2g"), "--runtime", "runsc"]


@pytest.mark.parametrize("phase", ["save", "load"])
def test_a_harness_running_as_root_runs_its_containers_as_nobody(phase: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getuid", lambda: 0)
    monkeypatch.setattr(os, "getgid", lambda: 0)
    args = flags(container(phase, tmp_path, Limits()))
    mounts = SAVE_MOUNTS if phase == "save" else LOAD_MOUNTS
    assert args == expected_flags(phase, tmp_path, mounts, user="65534:65534")


def test_the_cpus_come_from_the_limits(tmp_path: Path) -> None:
    args = flags(container("load", tmp_path, Limits(cpus=0.5)))
    assert args[args.index("--cpus") + 1] == "0.5"


def test_an_artifacts_own_container_writes_only_that_artifacts_records_and_outputs(tmp_path: Path) -> None:
    matrix = dataclasses.replace(tiny_matrix(), models=(resolve_probe("dense", ("h5",), ("load_model",)),))
    (plan,) = plan_environments(matrix, {})
    artifact = Artifact(source="py3.9-tf2.12.1", model="dense", format="h5", loaders=("load_model",))
    spec = artifact_load_spec(matrix, plan, RunDir(tmp_path), RUN_ID, Limits(), artifact=artifact, number=3)
    assert flags(spec) == expected_flags("load", tmp_path, [
        "--mount=type=bind,source={run}/artifacts/py3.9-tf2.12.1,target=/harness/artifacts/py3.9-tf2.12.1,readonly",
        f"--mount=type=bind,source={{run}}/outputs/{ENV_ID}/py3.9-tf2.12.1/dense/h5,"
        "target=/harness/outputs/py3.9-tf2.12.1/dense/h5",
        f"--mount=type=bind,source={{run}}/records/load-{ENV_ID}/py3.9-tf2.12.1/dense/h5.jsonl,"
        "target=/harness/records.jsonl",
    ], name=f"harness-{RUN_ID}-load-{ENV_ID}-3")
    agent = json.loads(spec.command[5])
    assert agent["only"] == {"source": "py3.9-tf2.12.1", "model": "dense", "format": "h5"}
    assert [m["name"] for m in agent["models"]] == ["dense"]
