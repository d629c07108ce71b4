"""One workflow: a matrix, what was asked of the run, and a container engine in; a finished run directory out.

A run is a list of steps, each a small function: resolve the images, prepare the run directory
(where the run's plan is recorded), then build, stage, save, load and report. `run` and `check`
both call run_matrix; the engine is a parameter, so every step (and an interrupt in the middle of a
run) runs in unit tests against a fake engine.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness import models, untrusted
from harness.base_images import BaseBuilds, BaseEngine, Bootstrap, Debootstrap, cache_dir, resolve_base_images
from harness.cellcache import DEFAULT_MAX_BYTES, MAX_VARIABLE, CellCache
from harness.console import Console
from harness.engine import LABEL_RUN, ContainerEngine, mount_problem
from harness.errors import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, BaseImageUnavailable, UsageError
from harness.images import effective_pip_settings
from harness.leftovers import Housekeeping, remove_stale_containers
from harness.matrix import Matrix
from harness.matrix.problems import shown
from harness.plan import EnvPlan, Limits, check_specs, plan_environments, plan_run, selected_environments
from harness.report.schema import load_report
from harness.report.writers import write_reports
from harness.reuse import ReuseAsked
from harness.rundir import RunDir, default_out
from harness.runner import Runner, RunOptions
from harness.runstate import ENV_PHASES, PHASES, now, refuse_changed_matrix
from harness.wheelcache import WheelCache, cache_root

MB = 1 << 20


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
    baseline: Path | None = None  # recorded in run.json: every later report of the run compares with it
    fail_on: str | None = None  # what the exit code fails on (report/gate.py), recorded too; None: what run.json has
    owner: Mapping[str, str] = field(default_factory=dict)  # labels naming this process on its containers
    record: Mapping[str, Any] = field(default_factory=dict)  # recorded in run.json (a check's question), read by
    # the report
    cell_cache: Path | None = None  # the cell cache's folder (harness/cellcache.py); None: every cell is computed
    reuse_cells: bool = True  # False (--no-cache): every save and load computed again (and kept for the next run)
    cell_cache_max: int | None = DEFAULT_MAX_BYTES  # the cell cache's bound (HARNESS_CELL_CACHE_MAX); None: none
    reuse: ReuseAsked | None = None  # containers an earlier run on this host may stand in for (check's home)


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


def out_problem(path: Path) -> str | None:
    """Why a path cannot be a run directory (its containers mount folders below it), or None; stat only."""
    try:
        full = path.resolve()
        if full.exists() and not full.is_dir():
            return f"not a folder: {full} is {untrusted.kind(full.stat().st_mode)}"
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a name too long, a link loop
        return f"not a usable path ({getattr(exc, 'strerror', None) or exc})"
    return mount_problem(str(full))


def phases_of(request: RunRequest) -> tuple[str, ...]:
    """The phases a request runs, in their order (none named: all of them)."""
    return tuple(p for p in PHASES if p in request.phases) or PHASES


# ---------------------------------------------------------------------------- the steps


def resolve_images(matrix: Matrix, request: RunRequest, engine: RunEngine, *, console: Console,
                   environ: Mapping[str, str], bootstrap: Bootstrap | None = None,
                   bases: BaseBuilds | None = None) -> tuple[Matrix, list[EnvPlan]]:
    """The matrix with its base images resolved, and the image of every selected environment.

    When a phase needs the engine it is pinged (once per run) and the base images resolved: pulled,
    else the local equivalent, built with `bootstrap` once per host when missing (given `bases`, in the
    background, while the run goes on). The report phase alone needs no engine.
    """
    selected = [e.id for e in selected_environments(matrix, request.only)]  # an unknown --only: exit 2 first
    plans = plan_environments(matrix, environ, request.only)
    # Every value a container's arguments carry is checked before anything runs (the base images may be built
    # next); the images' tags do not matter to it.
    check_specs(matrix, plans, RunDir(request.out or default_out(matrix.name)), request.limits)
    if any(p in ENV_PHASES for p in phases_of(request)):
        engine.ping()
        resolved = resolve_base_images(matrix, engine, bootstrap or Debootstrap(), console.step, selected, builds=bases)
        if resolved != matrix:  # a local stand-in for a base image: other tags
            return resolved, plan_environments(resolved, environ, request.only)
    return matrix, plans


def prepare_run_dir(matrix: Matrix, envs: list[EnvPlan], request: RunRequest, engine: RunEngine, *,
                    console: Console, environ: Mapping[str, str], bases: BaseBuilds | None = None) -> Runner:
    """The run directory (fresh, resumed, or shared with other jobs' phases), the run's plan, and run.json saying
    the run began, with its plan and its gate (--baseline, --fail-on): a runner ready for the phases."""
    phases = phases_of(request)
    run_dir = RunDir.prepare(request.out or default_out(matrix.name), resume=request.resume,
                             shared=bool(request.phases))
    if request.resume or request.phases:  # only a run of the same matrix continues here
        refuse_changed_matrix(run_dir, matrix, "--resume" if request.resume else "--out")
    if request.resume and request.baseline is None:
        _check_recorded_baseline(run_dir)
    if any(p in ENV_PHASES for p in phases) and (removed := remove_stale_containers(engine)):
        console.step(f"removed {removed} container(s) left by harness runs that are gone")
    plan = plan_run(matrix, envs, run_dir, uuid.uuid4().hex[:10], request.limits)
    cache = WheelCache(cache_root(environ, cache_dir(environ) / "wheels"), effective_pip_settings(matrix.pip, environ))
    cells = None if request.cell_cache is None else CellCache(request.cell_cache, reuse=request.reuse_cells,
                                                              max_bytes=request.cell_cache_max)
    options = RunOptions(jobs=request.jobs, resume=request.resume, phases=phases, owner=request.owner,
                         wheel_cache=cache, cell_cache=cells, bases=bases, reuse=request.reuse)
    console.step(f"run {plan.run_id}: {len(envs)} environment(s), {request.jobs} job(s), phases "
                 f"{', '.join(phases)}, into {run_dir.path}")
    runner = Runner(engine, plan, run_dir=run_dir, console=console, options=options)
    runner.start(baseline=request.baseline, fail_on=request.fail_on, record=request.record)
    return runner


def record_bases(runner: Runner) -> None:
    """run.json says which base images this run built, and how long each took (they build meanwhile)."""
    bases = runner.options.bases
    built = bases.built() if bases is not None else []
    if built:
        runner.state.write_run(base_images=[{"tag": b.tag, "python": b.python, "seconds": round(b.seconds, 1)}
                                            for b in built])


def build(runner: Runner) -> None:
    """Build (or reuse) the image of every selected environment: a failed build is a result, its cells skipped.

    When the run saves too and an image is missing, each environment saves as soon as its own image is built
    (a TensorFlow save beside another image's pip install), instead of after the last build.
    """
    if not runner.asks("build"):
        return
    if runner.asks("save") and not runner.options.resume and runner.missing_images():
        runner.each("build", runner.plan.envs, runner.build_then_save)
        runner.state.timings["save"] = runner.span("save", 0.0)
    else:
        runner.each("build", runner.plan.envs, runner.build)
    record_bases(runner)


def stage(runner: Runner) -> None:
    """Write users' inputs, and existing files as the pseudo-sources every load reads: first, so a file that cannot
    be staged stops the run before it cost an image build."""
    if runner.asks("save") or runner.asks("load"):
        models.stage_models(runner.plan.matrix.models, runner.run_dir)


def save(runner: Runner) -> None:
    """Save every model in every environment whose image is usable (a save container each), but those saved
    while the images were built."""
    todo = [p for p in runner.usable() if p.env.id not in runner.saved]
    if runner.asks("save") and (todo or not runner.saved):
        runner.each("save", todo, runner.save)


def load(runner: Runner) -> None:
    """Load every saved artifact in every environment whose image is usable (a load container each, or one per
    artifact under --isolation artifact)."""
    if runner.asks("load"):
        runner.each("load", runner.usable(), runner.load)


def trim(runner: Runner) -> None:
    """Keep the cell cache within its bound: what this run stored may push the least recently used entries out."""
    cache = runner.options.cell_cache
    if cache is None or cache.max_bytes is None:
        return
    trimmed = cache.trim()
    if trimmed.entries:
        runner.console.step(f"cell cache: removed {trimmed.entries} entries used longest ago "
                            f"({trimmed.bytes / MB:.0f} MB), to stay within {cache.max_bytes / MB:.0f} MB "
                            f"({MAX_VARIABLE})")


def report(runner: Runner) -> None:
    """Build the reports once, from every job's records and with the gate run.json records; without the report
    phase, say in run.json that this invocation's phases are done."""
    if not runner.asks("report"):
        runner.state.write_run(status="complete", finished=now())
        return
    runner.state.write_run(status=None, finished=now())  # derived from every job's phase records
    start = time.monotonic()
    runner.report = write_reports(runner.run_dir)
    runner.state.timings["report"] = round(time.monotonic() - start, 2)
    runner.state.write_run()


STEPS: tuple[Callable[[Runner], None], ...] = (stage, build, save, load, trim, report)  # after resolve_images, prepare


def execute(runner: Runner) -> dict[str, Any] | None:
    """The steps after the run directory is prepared, in order; report.json's content when the report step ran."""
    for step in STEPS:
        step(runner)
    return runner.report


def run_matrix(matrix: Matrix, request: RunRequest, engine: RunEngine, console: Console,
               environ: Mapping[str, str], *, bootstrap: Bootstrap | None = None) -> RunOutcome:
    """Every step of a run (or of the phases asked for); the exit code the report decides."""
    check_request(request)
    bases = BaseBuilds(engine, bootstrap or Debootstrap(), console.step)
    try:
        start = time.monotonic()
        matrix, envs = resolve_images(matrix, request, engine, console=console, environ=environ, bootstrap=bootstrap,
                                      bases=bases)
        runner = prepare_run_dir(matrix, envs, request, engine, console=console, environ=environ, bases=bases)
        runner.state.timings["prepare"] = round(time.monotonic() - start, 2)  # base images resolved, run dir made
        return _execute(runner, engine, console)
    finally:
        bases.close()


def _execute(runner: Runner, engine: RunEngine, console: Console) -> RunOutcome:
    """The steps of a prepared run; an interrupt removes its containers and says how to resume."""
    try:
        report = execute(runner)
    except (KeyboardInterrupt, OSError, BaseImageUnavailable) as exc:  # a base image built meanwhile failed
        removed = engine.remove_containers({LABEL_RUN: runner.plan.run_id})
        runner.mark_interrupted()
        if not isinstance(exc, KeyboardInterrupt):
            raise
        print(f"harness: interrupted; removed {removed} container(s); continue with "
              f"--resume --out {runner.run_dir.path}", file=sys.stderr)
        return RunOutcome(EXIT_INTERRUPTED, runner.run_dir)
    if report is None:  # phases without the report: failures are results the report judges, but say so now
        for failure in runner.failures:
            print(f"harness: {failure}", file=sys.stderr)
        console.step(f"{', '.join(runner.options.phases)} done in {runner.run_dir.path}; the report phase merges "
                     "every job's copy")
        return RunOutcome(EXIT_FAILURES if runner.failures else EXIT_OK, runner.run_dir)
    return RunOutcome(int(report["verdict"]["exit_code"]), runner.run_dir, report)


def _check_recorded_baseline(run_dir: RunDir) -> None:
    """The baseline an earlier `run --baseline` recorded in run.json is still readable (else exit 2, now)."""
    recorded = run_dir.read_run().get("baseline")
    if recorded:
        load_report(Path(recorded), "baseline (recorded in run.json)")
