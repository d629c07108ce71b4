"""The job matrix for a CI fan-out: one entry per environment, with its image and phase commands.

Pure: a matrix in, JSON-ready data out. Each environment's jobs run
`run MATRIX --out DIR --only ENV --phase ...` against their own copy of a shared run directory;
one last job combines the copies and runs `--phase report` (see docs/ci.md).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from harness import __version__
from harness.plan import EnvPlan

GITHUB_MAX_JOBS = 256  # GitHub Actions: jobs one matrix may generate per workflow run
PHASE_STEPS = {"build": ("build",), "save": ("build", "save"), "load": ("load",)}


VERSIONS_FILE = "versions.json"  # where a job writes the plan's "versions" for --versions


def command(matrix_arg: str, out: str, phases: Sequence[str], only: str | None = None, *,
            base_image: str | None = None, pinned: bool = False) -> str:
    """The shell command that runs some phases (for one environment) into `out`; `pinned`: with the versions the
    plan resolved (the job writes the plan's "versions" to versions.json first)."""
    argv = ["python", "-m", "harness", "run", matrix_arg, "--out", out]
    if pinned:
        argv += ["--versions", VERSIONS_FILE]
    if only is not None:
        argv += ["--only", only]
    if base_image:
        argv += ["--base-image", base_image]
    for phase in phases:
        argv += ["--phase", phase]
    return shlex.join(argv)


def environment_jobs(plans: Sequence[EnvPlan], matrix_arg: str, out: str,
                     base_image: str | None = None, pinned: bool = False) -> list[dict[str, Any]]:
    """One entry per environment, in matrix order: id, versions, image tag, phase commands."""
    return [
        {
            "env": p.env.id,
            "python": p.env.python,
            "tensorflow": p.env.tensorflow_package + p.env.tensorflow,
            "keras": p.env.keras,
            "legacy_keras": p.env.legacy_keras,
            "image": p.image.tag,
            **{step: command(matrix_arg, out, phases, p.env.id, base_image=base_image, pinned=pinned)
               for step, phases in PHASE_STEPS.items()},
        }
        for p in plans
    ]


def github_matrices(jobs: list[dict[str, Any]], max_jobs: int = GITHUB_MAX_JOBS) -> list[dict[str, Any]]:
    """strategy.matrix values, {"include": [...]} each, split so none exceeds GitHub's job limit.

    A matrix value is never null there: an unset field is "".
    """
    entries = [{k: "" if v is None else v for k, v in job.items()} for job in jobs]
    return [{"include": entries[i:i + max_jobs]} for i in range(0, len(entries), max_jobs)] or [{"include": []}]


def fanout_plan(plans: Sequence[EnvPlan], *, matrix_name: str, matrix_arg: str, matrix_sha256: str, out: str,
                base_image: str | None = None, max_jobs: int = GITHUB_MAX_JOBS,
                versions: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything a CI needs to fan one matrix out, deterministic for the same inputs (and the same releases on the
    index: `versions`, what its selectors resolved to, which every job's command then pins)."""
    pinned = bool(versions)
    jobs = environment_jobs(plans, matrix_arg, out, base_image, pinned)
    return {
        "harness_version": __version__,
        "matrix": {"name": matrix_name, "path": matrix_arg, "sha256": matrix_sha256},
        "run_dir": out,
        "count": len(jobs),
        "environments": jobs,
        "matrices": github_matrices(jobs, max_jobs),
        "report": command(matrix_arg, out, ["report"], base_image=base_image, pinned=pinned),
        "versions": dict(sorted((versions or {}).items())),
    }
