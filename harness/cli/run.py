"""`harness run MATRIX`: build, save, load, compare and report a matrix."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from harness.cellcache import cell_cache_bound
from harness.cli.options import (
    add_base_image,
    add_fail_on,
    add_versions,
    cpus,
    default_jobs,
    matrix_versions,
    memory,
    positive_float,
    positive_int,
    runtime,
)
from harness.console import Console
from harness.plan import CONTAINER_MEMORY, ISOLATION_LEVELS, MAX_CPUS, Limits, default_cpus
from harness.runstate import PHASES
from harness.workflow import RunEngine, RunRequest, run_matrix


def add_parser(sub: Any) -> None:
    """The `run` subcommand's arguments."""
    run = sub.add_parser("run", help="build, save, load, compare and report a matrix")
    run.add_argument("matrix", type=Path, help="matrix YAML file")
    run.add_argument("--out", type=Path, help="run directory (default runs/<matrix>-<UTC time>)")
    run.add_argument("--jobs", type=positive_int, default=None,
                     help="environments worked on in parallel (default: from cores and free memory)")
    run.add_argument("--only", action="append", default=[], metavar="ENV", help="run only this environment id")
    run.add_argument("--resume", action="store_true", help="continue the run in --out without redoing work")
    add_base_image(run)
    run.add_argument("--cell-timeout", type=positive_float, default=300.0,
                     help="seconds one load may take before it is a timeout cell (default 300)")
    run.add_argument("--isolation", choices=ISOLATION_LEVELS, default=ISOLATION_LEVELS[0],
                     help="target: one load container per target environment (fast; code a file runs when "
                          "loaded can rewrite its target's other cells); artifact: a container per artifact, whose "
                          "records are kept only for its own cells, so one hostile file cannot touch another's "
                          "results (a container start and a TensorFlow import per artifact)")
    run.add_argument("--memory", type=memory, default=os.environ.get("HARNESS_MEMORY", CONTAINER_MEMORY),
                     help=f"memory limit of each container, docker syntax (default {CONTAINER_MEMORY}; "
                          "env HARNESS_MEMORY)")
    run.add_argument("--cpus", type=cpus, default=default_cpus(),
                     help=f"CPUs each container may use (default {MAX_CPUS:g}, or fewer on a smaller host)")
    run.add_argument("--runtime", type=runtime, default=os.environ.get("HARNESS_DOCKER_RUNTIME") or None,
                     help="container runtime for a stronger sandbox, e.g. runsc (env HARNESS_DOCKER_RUNTIME)")
    run.add_argument("--baseline", type=Path, metavar="REPORT",
                     help="an earlier report.json (or its run directory): cells that got worse are regressions")
    run.add_argument("--phase", action="append", choices=PHASES, default=[],
                     help="run only this phase (repeatable; default: all). Phases share --out: each reads only "
                          "what earlier ones wrote, so separate jobs can run them (docs/ci.md)")
    add_fail_on(run)
    run.add_argument("--no-cache", action="store_true",
                     help="compute every save and load again instead of reusing the cells an earlier run computed "
                          "from the same images, models and agent (what is computed is kept for the next run)")
    add_versions(run)
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def request_of(args: argparse.Namespace) -> RunRequest:
    """What the run flags ask for."""
    from harness.base_images import cache_dir
    from harness.leftovers import owner_labels

    limits = Limits(memory=args.memory, runtime=args.runtime, cell_timeout=args.cell_timeout,
                    isolation=args.isolation, cpus=args.cpus)
    return RunRequest(out=args.out, resume=args.resume, jobs=args.jobs or default_jobs(), only=tuple(args.only),
                      phases=tuple(args.phase), limits=limits, baseline=args.baseline, owner=owner_labels(),
                      fail_on=args.fail_on, cell_cache=cache_dir(os.environ) / "cells", reuse_cells=not args.no_cache,
                      cell_cache_max=cell_cache_bound(os.environ))


def main(args: argparse.Namespace, engine: RunEngine) -> int:
    """The whole flow; returns the report's exit code."""
    from harness.matrix import load_matrix
    from harness.report.writers import FILES

    versions = matrix_versions(args, args.out)
    matrix = load_matrix(args.matrix, base_image=args.base_image, versions=versions)
    console = Console(quiet=args.quiet)
    for line in versions.lines():
        console.step(f"version: {line}")
    outcome = run_matrix(matrix, request_of(args), engine, console, os.environ)
    if outcome.report is not None and outcome.run_dir is not None:
        console.summary(outcome.report)
        console.step(f"reports in {outcome.run_dir.path}: {', '.join(FILES.values())}")
    return outcome.exit_code
