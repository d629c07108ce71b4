"""Plan, then act: the pure part of a run. Matrix -> images and container specs."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import harness
from harness import isolation
from harness.agent.protocol import (
    ARTIFACTS_MOUNT,
    OUT_MOUNT,
    OUTPUTS_MOUNT,
    RECORDS_MOUNT,
    USERDATA_MOUNT,
    CellKey,
    LoadRequest,
    ModelSpec,
    Only,
    SaveRequest,
    artifact_source,
    origin_dir,
    output_rel,
    user_code_dir,
)
from harness.cells import CellPlan
from harness.engine import LABEL_RUN, LABEL_VERSION, Mount, RunSpec, check_spec
from harness.errors import UsageError
from harness.images import ImagePlan, build_pip_settings, plan_image
from harness.isolation import Artifact
from harness.matrix import Environment, Matrix
from harness.rundir import RunDir

SOURCE_MOUNT = "/opt/harness-src"
PHASE_TIMEOUT = 3600.0  # whole save or load container, seconds
# Enough for TensorFlow loading probes; a runaway load is killed inside its
# container instead of taking the host's memory.
CONTAINER_MEMORY = "6g"
# Processes and threads per container: TensorFlow starts a few per core in each of the load container's
# two processes; a fork bomb stops here.
PIDS_LIMIT = 1024
MAX_CPUS = 2.0  # per container by default: a runaway load cannot take every core of a shared host
# The containers' user when the harness runs as root (as CI often does): nobody:nogroup, never uid 0.
UNPRIVILEGED = (65534, 65534)


def default_cpus() -> float:
    """CPUs one container may use by default: MAX_CPUS, or fewer on a smaller host."""
    return min(MAX_CPUS, float(os.cpu_count() or 1))


@dataclass(frozen=True)
class EnvPlan:
    """One environment and the image that serves it."""

    env: Environment
    image: ImagePlan


@dataclass(frozen=True)
class Limits:
    """How containers are confined and how long one load may take."""

    memory: str = CONTAINER_MEMORY  # docker --memory syntax
    runtime: str | None = None  # e.g. "runsc" (gVisor)
    cell_timeout: float = 300.0  # seconds per (artifact, loader)
    isolation: str = "target"  # "target": one worker per target; "artifact": a container per artifact
    cpus: float = field(default_factory=default_cpus)  # docker --cpus

    @property
    def per_artifact(self) -> bool:
        """Whether every artifact is loaded in a container of its own (--isolation artifact)."""
        return self.isolation == ISOLATION_LEVELS[1]


ISOLATION_LEVELS = ("target", "artifact")
# What each level promises, word for word in run.json, report.json and docs/security.md.
ISOLATION_PROMISES = {
    "target": "one load container and worker per target loads every artifact: code a file runs when it is loaded "
              "(a Lambda, a custom object, a SavedModel op) cannot reach the host's files, the network or another "
              "target's results, but it can rewrite the records and predictions of every cell of its target's "
              "column, its own and other files' alike (turning errors into passes); use --isolation artifact when "
              "an artifact may be hostile",
    "artifact": "each artifact is loaded in a container of its own that can write only that artifact's records and "
                "predictions, and the host accepts only records of that artifact: a hostile file cannot change "
                "another file's cells. It can still decide its own cells (it can read its own reference "
                "predictions), so a pass of an untrusted file proves nothing about that file",
}


def selected_environments(matrix: Matrix, only: Sequence[str] = ()) -> list[Environment]:
    """The matrix's environments, or the ones named by --only (UsageError for an unknown one)."""
    envs = list(matrix.environments)
    if only:
        known = {e.id for e in envs}
        unknown = [name for name in only if name not in known]
        if unknown:
            raise UsageError(f"--only {unknown[0]}: no such environment (have: {', '.join(sorted(known))})")
        envs = [e for e in envs if e.id in only]
    return envs


def plan_environments(matrix: Matrix, environ: Mapping[str, str], only: Sequence[str] = ()) -> list[EnvPlan]:
    """Image plans for the matrix's environments (or the ones named by --only)."""
    direct = build_pip_settings(matrix.pip, environ)  # None: builds take packages from the host's wheel cache
    return [EnvPlan(env=e, image=plan_image(e, direct)) for e in selected_environments(matrix, only)]


@dataclass(frozen=True)
class RunPlan:
    """A run decided before anything runs: its environments and their images, the cells the report must show, and
    every container a phase may start (by environment; under --isolation artifact, by target and artifact)."""

    matrix: Matrix
    envs: tuple[EnvPlan, ...]  # the ones this invocation works on (--only)
    cells: CellPlan  # the whole matrix's: recorded in run.json for the report
    limits: Limits
    run_id: str
    saves: Mapping[str, RunSpec]
    loads: Mapping[str, RunSpec]
    # Under --isolation artifact: target -> (source, model, format) -> (log name, container).
    artifact_loads: Mapping[str, Mapping[tuple[str, str, str], tuple[str, RunSpec]]]
    expected: tuple[CellKey, ...]  # every cell among all the matrix's environments

    def cells_of(self, target: str) -> list[CellKey]:
        """The cells a target's load decides."""
        return [c for c in self.expected if c.target == target]


def plan_run(matrix: Matrix, envs: Sequence[EnvPlan], run_dir: RunDir, run_id: str, limits: Limits) -> RunPlan:
    """The whole plan of a run of these environments into run_dir: pure, computed once before the first phase."""
    cells = CellPlan.of(matrix)
    expected = tuple(cells.cells(cells.environments))
    return RunPlan(
        matrix=matrix, envs=tuple(envs), cells=cells, limits=limits, run_id=run_id, expected=expected,
        saves={p.env.id: save_spec(matrix, p, run_dir, run_id, limits) for p in envs},
        loads={p.env.id: load_spec(matrix, p, run_dir, run_id, limits) for p in envs},
        artifact_loads={} if not limits.per_artifact else {
            p.env.id: _artifact_loads(matrix, p, run_dir, run_id, limits, expected=expected) for p in envs},
    )


def _artifact_loads(matrix: Matrix, plan: EnvPlan, run_dir: RunDir, run_id: str, limits: Limits, *,
                    expected: Sequence[CellKey]) -> dict[tuple[str, str, str], tuple[str, RunSpec]]:
    """A container for each artifact a target may load, numbered in the order of its cells (a log name each)."""
    target = plan.env.id
    found = isolation.artifacts(c for c in expected if c.target == target)
    return {(a.source, a.model, a.format): (
        f"load-{target}-{n}", artifact_load_spec(matrix, plan, run_dir, run_id, limits, artifact=a, number=n))
        for n, a in enumerate(found, 1)}


def _container(plan: EnvPlan, phase: str, run_id: str, command: Sequence[str], *, mounts: Sequence[Mount],
               limits: Limits, part: str = "", masks: Sequence[str] = ()) -> RunSpec:
    return RunSpec(
        image=plan.image.tag,
        name=f"harness-{run_id}-{phase}-{plan.env.id}" + (f"-{part}" if part else ""),
        command=tuple(command),
        mounts=(source_mount(), *mounts),
        masks=tuple(masks),
        labels={LABEL_RUN: run_id, LABEL_VERSION: harness.__version__},
        env={
            "PYTHONPATH": SOURCE_MOUNT,
            "PYTHONDONTWRITEBYTECODE": "1",  # never write into the mounted source tree
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "HOME": "/tmp",
            # Fixed and different per phase: the label-order probe shows what a
            # list(set(...)) class map does when the loading process hashes differently.
            "PYTHONHASHSEED": "0" if phase == "save" else "1",
            **plan.env.container_env(),  # the backend and the matrix's variables (names the harness sets are refused)
        },
        network="none",  # probes and loads never need the network
        user=container_user(),
        timeout=PHASE_TIMEOUT,
        pids_limit=PIDS_LIMIT,
        memory=limits.memory,
        cpus=limits.cpus,
        runtime=limits.runtime,
    )


def _agent(step: str, request: SaveRequest | LoadRequest) -> list[str]:
    return ["python", "-m", "harness.agent", step, "--spec", request.to_json()]


def source_mount() -> Mount:
    """The harness package, mounted read-only so images never contain harness code."""
    return Mount(Path(harness.__file__).resolve().parent, f"{SOURCE_MOUNT}/harness")


def container_user() -> str:
    """uid:gid inside the containers: the invoking user's, so files in the run directory are theirs; never root.

    When the harness runs as root the containers run as nobody (the runner lends them their writable mounts).
    """
    uid, gid = os.getuid(), os.getgid()
    return "{}:{}".format(*(UNPRIVILEGED if uid == 0 else (uid, gid)))


VCS_FOLDERS = (".git",)  # a checkout's history, hooks and the credentials CI persists in its config


def model_mounts(models: Sequence[ModelSpec], run_dir: RunDir) -> tuple[Mount, ...]:
    """Each user directory, read-only at its model's code directory, and the data the host prepared."""
    found = [Mount(Path(m.origin.root), user_code_dir(m.name)) for m in models if m.origin and m.origin.root]
    # A migrated model's save loads the existing artifact it starts from: its pseudo-source, read-only.
    found += [Mount(run_dir.artifacts(artifact_source(m.migrates.model)), origin_dir(m.migrates.model))
              for m in models if m.migrates is not None]
    if any(m.has_inputs or m.has_labels for m in models):
        found.append(Mount(run_dir.userdata, USERDATA_MOUNT))
    return tuple(found)


def model_masks(models: Sequence[ModelSpec]) -> tuple[str, ...]:
    """Container paths hidden under an empty tmpfs: the .git folder of a code directory that is a checkout's root.

    Mounting the folder that holds a model's code mounts all of it; a checkout's root holds .git, whose config a
    CI job may have given a token. It is covered rather than refused: `check --model model.py:build` run at the
    root of a repository is the common case. (A .git file, a worktree's, only names where its git folder is.)
    """
    return tuple(f"{user_code_dir(m.name)}/{name}" for m in models if m.origin and m.origin.root
                 for name in VCS_FOLDERS if (Path(m.origin.root) / name).is_dir()
                 and not (Path(m.origin.root) / name).is_symlink())


def save_spec(matrix: Matrix, plan: EnvPlan, run_dir: RunDir, run_id: str, limits: Limits) -> RunSpec:
    """The container that builds and saves every model of one environment."""
    env_id = plan.env.id
    request = SaveRequest(env_id, tuple(m for m in matrix.models if env_id in m.homes([env_id])))
    return _container(plan, "save", run_id, _agent("save", request), mounts=(
        Mount(run_dir.artifacts(env_id), OUT_MOUNT, read_only=False),
        Mount(run_dir.records("save", env_id), RECORDS_MOUNT, read_only=False),
        *model_mounts(matrix.models, run_dir),
    ), limits=limits, masks=model_masks(matrix.models))


def load_spec(matrix: Matrix, plan: EnvPlan, run_dir: RunDir, run_id: str, limits: Limits) -> RunSpec:
    """The container that loads every artifact of every environment in one target.

    Its only writable mounts are this target's own record file and output folder.
    """
    env_id = plan.env.id
    request = LoadRequest(env_id, matrix.models, timeout=limits.cell_timeout, isolation=limits.isolation,
                          tolerance=matrix.tolerance)
    return _container(plan, "load", run_id, _agent("load", request), mounts=(
        Mount(run_dir.artifacts_root, ARTIFACTS_MOUNT, read_only=True),
        Mount(run_dir.outputs(env_id), OUTPUTS_MOUNT, read_only=False),
        Mount(run_dir.records("load", env_id), RECORDS_MOUNT, read_only=False),
        *model_mounts(matrix.models, run_dir),
    ), limits=limits, masks=model_masks(matrix.models))


def artifact_load_spec(matrix: Matrix, plan: EnvPlan, run_dir: RunDir, run_id: str, limits: Limits, *,
                       artifact: Artifact, number: int) -> RunSpec:
    """The container that loads one artifact in one target (--isolation artifact).

    It sees its source's artifacts and its model's code only; its only writable mounts are the artifact's
    own records file and its own outputs folder.
    """
    env_id, model = plan.env.id, matrix.model(artifact.model)
    request = LoadRequest(env_id, (model,), timeout=limits.cell_timeout, isolation="artifact",
                          tolerance=matrix.tolerance, only=Only(artifact.source, artifact.model, artifact.format))
    where = (env_id, artifact.source, artifact.model, artifact.format)
    return _container(plan, "load", run_id, _agent("load", request), mounts=(
        Mount(run_dir.artifacts(artifact.source), f"{ARTIFACTS_MOUNT}/{artifact.source}", read_only=True),
        Mount(run_dir.artifact_outputs(*where), posixpath.join(OUTPUTS_MOUNT, posixpath.dirname(
            output_rel(artifact.source, artifact.model, artifact.format, "any"))), read_only=False),
        Mount(run_dir.artifact_records(*where), RECORDS_MOUNT, read_only=False),
        *model_mounts([model], run_dir),
    ), limits=limits, part=str(number), masks=model_masks([model]))


def check_specs(matrix: Matrix, plans: Sequence[EnvPlan], run_dir: RunDir, limits: Limits) -> None:
    """UsageError naming the first value of a container its engine's arguments could not carry as written: every
    mount source (the run directory, users' code, the harness's own code) is checked before anything runs. An
    artifact's own load container mounts folders below the same ones."""
    for plan in plans:
        for spec in (save_spec, load_spec):
            check_spec(spec(matrix, plan, run_dir, "check", limits))
