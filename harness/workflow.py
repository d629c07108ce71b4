"""One workflow: a matrix, what was asked of the run, and a container engine in; a finished run directory out.

`run` and `check` both call run_matrix; the engine is a parameter, so the whole flow (and an
interrupt in the middle of it) runs in unit tests against a fake engine.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.base_images import BaseEngine, Bootstrap, Debootstrap, cache_dir, resolve_base_images
from harness.console import Console
from harness.engine import LABEL_RUN, ContainerEngine
from harness.errors import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, UsageError
from harness.images import effective_pip_settings
from harness.leftovers import Housekeeping, remove_stale_containers
from harness.matrix import Matrix
from harness.matrix.problems import shown
from harness.plan import Limits, check_specs, plan_environments
from harness.report.schema import load_report
from harness.report.writers import write_reports
from harness.rundir import RunDir, default_out, out_problem
from harness.runner import Runner, RunOptions
from harness.runstate import ENV_PHASES, PHASES, refuse_changed_matrix
from harness.wheelcache import WheelCache, cache_root


class RunEngine(ContainerEngine, Housekeeping, BaseEngine, Protocol):
    """What a run needs of the container engine: base images, builds, containers, and sweeping dead runs'."""


@dataclass(frozen=True)
class RunRequest:
    """What a run is asked to do, from the command line or from `check`."""

    out: Path | None = None  # the run directory; default runs/<matrix>-<UTC time>
    resume: bool = False
    jobs: int = 1
    only: tuple[str, ...] = ()  # environment ids; empty: all of them
    phases: tuple[str, ...] = ()  # empty: every phase; some: they share `out` with other jobs' phases
    limits: Limits = field(default_factory=Limits)
    baseline: Path | None = None
    fail_on: str | None = None  # what the exit code fails on (report/gate.py); None: what run.json records
    owner: Mapping[str, str] = field(default_factory=dict)  # labels naming this process on its containers


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its exit code, its run directory, and report.json's content when the report ran."""

    exit_code: int
    run_dir: RunDir | None
    report: dict[str, Any] | None = None


def check_request(request: RunRequest) -> None:
    """Refuse a request whose flags contradict each other, before anything happens."""
    if request.resume and request.out is None:
        raise UsageError("--resume needs --out RUN_DIR: the run to continue")
    if request.phases and request.out is None:
        raise UsageError("--phase needs --out RUN_DIR: the run directory the phases share")
    if request.out is not None and (problem := out_problem(request.out)):
        raise UsageError(f"--out {shown(str(request.out))}: {problem}")
    if request.baseline is not None:
        load_report(request.baseline, "baseline")  # a bad baseline is exit 2 before anything is built


def run_matrix(matrix: Matrix, request: RunRequest, engine: RunEngine, console: Console,
               environ: Mapping[str, str], *, bootstrap: Bootstrap | None = None) -> RunOutcome:
    """Build, save, load and report (or the phases asked for); the exit code the report decides.

    Base images are resolved first (pulled, else the local equivalent, built with `bootstrap` once
    per host when missing); image builds take their packages from the host's wheel cache.
    """
    check_request(request)
    phases = tuple(p for p in PHASES if p in request.phases) or PHASES
    plans = plan_environments(matrix, environ, request.only)
    check_specs(matrix, plans, RunDir(request.out or default_out(matrix.name)), request.limits)
    needs_engine = any(p in ENV_PHASES for p in phases)  # the report phase alone needs no engine
    if needs_engine:
        engine.ping()
        matrix = resolve_base_images(matrix, engine, bootstrap or Debootstrap(), console.step,
                                     [p.env.id for p in plans])
        plans = plan_environments(matrix, environ, request.only)
    run_dir = RunDir.prepare(request.out or default_out(matrix.name), resume=request.resume,
                             shared=bool(request.phases))
    if request.resume or request.phases:  # only a run of the same matrix continues here
        refuse_changed_matrix(run_dir, matrix, "--resume" if request.resume else "--out")
    baseline = request.baseline or (_recorded_baseline(run_dir) if request.resume else None)
    if needs_engine and (removed := remove_stale_containers(engine)):
        console.step(f"removed {removed} container(s) left by harness runs that are gone")
    run_id = uuid.uuid4().hex[:10]
    console.step(f"run {run_id}: {len(plans)} environment(s), {request.jobs} job(s), phases "
                 f"{', '.join(phases)}, into {run_dir.path}")
    cache = WheelCache(cache_root(environ, cache_dir(environ) / "wheels"), effective_pip_settings(matrix.pip, environ))
    options = RunOptions(jobs=request.jobs, resume=request.resume, limits=request.limits, phases=phases,
                         owner=request.owner, wheel_cache=cache)
    runner = Runner(engine, matrix, plans, run_dir=run_dir, console=console, options=options, run_id=run_id)
    try:
        with cache.serving():
            report = runner.execute()
    except (KeyboardInterrupt, OSError) as exc:
        removed = engine.remove_containers({LABEL_RUN: run_id})
        runner.mark_interrupted()
        if isinstance(exc, OSError):
            raise
        print(f"harness: interrupted; removed {removed} container(s); continue with "
              f"--resume --out {run_dir.path}", file=sys.stderr)
        return RunOutcome(EXIT_INTERRUPTED, run_dir)
    if report is None:  # phases without the report: failures are results the report judges, but say so now
        for failure in runner.failures:
            print(f"harness: {failure}", file=sys.stderr)
        console.step(f"{', '.join(phases)} done in {run_dir.path}; the report phase merges every job's copy")
        return RunOutcome(EXIT_FAILURES if runner.failures else EXIT_OK, run_dir)
    if baseline is not None or request.fail_on is not None:  # recorded in run.json for later re-renders
        report = write_reports(run_dir, baseline=baseline, fail_on=request.fail_on)
    return RunOutcome(int(report["verdict"]["exit_code"]), run_dir, report)


def _recorded_baseline(run_dir: RunDir) -> Path | None:
    """The baseline an earlier `run --baseline` recorded in run.json, checked now (exit 2 if it is gone)."""
    recorded = run_dir.read_run().get("baseline")
    if not recorded:
        return None
    load_report(Path(recorded), "baseline (recorded in run.json)")
    return Path(recorded)
