"""Command line: python -m harness {run,validate,plan,report,diff,doctor} ...; main(argv) -> exit code."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from harness import __version__, check
from harness.console import Console
from harness.errors import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, HarnessError, RunDirError, UsageError
from harness.plan import CONTAINER_MEMORY, ISOLATION_LEVELS
from harness.rundir import RunDir
from harness.runstate import ENV_PHASES, PHASES

if TYPE_CHECKING:
    from harness.engine import DockerCLI
    from harness.runner import Runner

log = logging.getLogger("harness")
MEMORY_PER_JOB = 6 * 1024**3  # a TensorFlow process loading probes stays well below this


# Storage failures are the user's to fix (a full disk, a read-only or foreign folder): one line, exit 2.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def default_jobs() -> int:
    """Parallel environments: one per core, but never more than memory allows."""
    cores = os.cpu_count() or 1
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1
    return max(1, min(cores, available // MEMORY_PER_JOB))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, found {value}")
    return value


def _memory(text: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*[kmgKMG]?", text):
        raise argparse.ArgumentTypeError(f"expected a size like 6g or 512m, found {text!r}")
    return text


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, found {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, found {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="harness", description="Cross-version reproducibility of Keras models.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="build, save, load, compare and report a matrix")
    run.add_argument("matrix", type=Path, help="matrix YAML file")
    run.add_argument("--out", type=Path, help="run directory (default runs/<matrix>-<UTC time>)")
    run.add_argument("--jobs", type=_positive_int, default=None,
                     help="environments worked on in parallel (default: from cores and free memory)")
    run.add_argument("--only", action="append", default=[], metavar="ENV", help="run only this environment id")
    run.add_argument("--resume", action="store_true", help="continue the run in --out without redoing work")
    run.add_argument("--base-image", default=os.environ.get("HARNESS_BASE_IMAGE"),
                     help="base image template, e.g. 'harness-base:{python}' (env HARNESS_BASE_IMAGE)")
    run.add_argument("--cell-timeout", type=_positive_float, default=300.0,
                     help="seconds one load may take before it is a timeout cell (default 300)")
    run.add_argument("--isolation", choices=ISOLATION_LEVELS, default=ISOLATION_LEVELS[0],
                     help="target: one load worker per target environment (fast); artifact: a fresh worker for "
                          "every artifact, so one hostile file cannot touch another's results (slower)")
    run.add_argument("--memory", type=_memory, default=os.environ.get("HARNESS_MEMORY", CONTAINER_MEMORY),
                     help=f"memory limit of each container, docker syntax (default {CONTAINER_MEMORY}; "
                          "env HARNESS_MEMORY)")
    run.add_argument("--runtime", default=os.environ.get("HARNESS_DOCKER_RUNTIME"),
                     help="container runtime for a stronger sandbox, e.g. runsc (env HARNESS_DOCKER_RUNTIME)")
    run.add_argument("--baseline", type=Path, metavar="REPORT",
                     help="an earlier report.json (or its run directory): cells that got worse are regressions")
    run.add_argument("--phase", action="append", choices=PHASES, default=[],
                     help="run only this phase (repeatable; default: all). Phases share --out: each reads only "
                          "what earlier ones wrote, so separate jobs can run them (README: Nightly CI)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines")

    validate = sub.add_parser("validate", help="parse and expand a matrix; build nothing")
    validate.add_argument("matrix", type=Path)
    validate.add_argument("--base-image", default=os.environ.get("HARNESS_BASE_IMAGE"))

    plan = sub.add_parser("plan", help="the CI job matrix: one entry per environment, its image and phase commands")
    plan.add_argument("matrix", type=Path)
    plan.add_argument("--format", choices=("github", "json"), default="json",
                      help="github: one line of strategy.matrix values for $GITHUB_OUTPUT; json: the whole plan")
    plan.add_argument("--out", default="run", help="the run directory the commands share (default: run)")
    plan.add_argument("--base-image", default=None,
                      help="base image template passed to every command (default: HARNESS_BASE_IMAGE, unpassed)")
    plan.add_argument("--max-jobs", type=_positive_int, default=256,
                      help="environments per matrix; more are split into several (GitHub's limit: 256)")

    report = sub.add_parser("report", help="re-render the reports of a run directory from its records")
    report.add_argument("run_dir", type=Path)
    report.add_argument("--format", choices=("json", "md", "html", "junit"), help="also print this format to stdout")
    report.add_argument("--baseline", type=Path, metavar="REPORT",
                        help="an earlier report.json (or its run directory); default: the one run.json records")

    diff = sub.add_parser("diff", help="what changed between two reports: new failures, fixed cells, figures")
    diff.add_argument("old", type=Path, help="the earlier report.json (or its run directory)")
    diff.add_argument("new", type=Path, help="the later report.json (or its run directory)")

    doctor = sub.add_parser("doctor", help="engine, base images, disk space, index and CA settings, leftovers")
    doctor.add_argument("matrix", type=Path, nargs="?", help="matrix to check images for (default "
                        "matrices/default.yaml when present)")
    doctor.add_argument("--base-image", default=os.environ.get("HARNESS_BASE_IMAGE"))
    doctor.add_argument("--out", type=Path, default=Path("runs"), help="where run directories go (default runs)")
    doctor.add_argument("--runtime", default=os.environ.get("HARNESS_DOCKER_RUNTIME"),
                        help="container runtime runs will ask for (env HARNESS_DOCKER_RUNTIME)")
    doctor.add_argument("--cleanup", action="store_true",
                        help="remove containers of dead runs and untagged harness images (never a tagged image)")
    check.add_parser(sub)
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    """Print the expanded environment table."""
    from rich.console import Console as RichConsole
    from rich.table import Table

    from harness.matrix import load_matrix
    from harness.plan import plan_environments

    matrix = load_matrix(args.matrix, base_image=args.base_image)
    plans = plan_environments(matrix, os.environ)
    table = Table(title=f"{matrix.name}: {len(plans)} environment(s)")
    for column in ("id", "python", "tensorflow", "keras", "base image", "image tag"):
        table.add_column(column, overflow="fold")
    for p in plans:
        e = p.env
        keras = f"keras{e.keras}" if e.keras else "bundled"
        if e.legacy_keras:
            keras = f"tf-keras{e.tf_keras or ''} (legacy)"
        table.add_row(e.id, e.python, e.tensorflow_package + e.tensorflow, keras, e.base_image, p.image.tag)
    out = RichConsole(no_color="NO_COLOR" in os.environ, width=160)
    out.print(table)
    out.print(f"models: {', '.join([*matrix.models, *(m.name for m in matrix.user_models)])}; "
              f"formats: {', '.join(matrix.formats)}; "
              f"loaders: {', '.join(matrix.loaders)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The whole flow; returns the report's exit code."""
    from harness.engine import DockerCLI
    from harness.leftovers import owner_labels, remove_stale_containers
    from harness.matrix import load_matrix
    from harness.plan import Limits, plan_environments
    from harness.report.schema import load_report
    from harness.report.writers import FILES, write_reports
    from harness.rundir import default_out
    from harness.runner import Runner, RunOptions

    if args.resume and args.out is None:
        raise UsageError("--resume needs --out RUN_DIR: the run to continue")
    if args.phase and args.out is None:
        raise UsageError("--phase needs --out RUN_DIR: the run directory the phases share")
    phases = tuple(p for p in PHASES if p in args.phase) or PHASES
    matrix = getattr(args, "built_matrix", None) or load_matrix(args.matrix, base_image=args.base_image)  # check's
    if args.baseline is not None:
        load_report(args.baseline, "baseline")  # a bad baseline is exit 2 before anything is built
    plans = plan_environments(matrix, os.environ, args.only)
    engine = DockerCLI()
    needs_engine = any(p in ENV_PHASES for p in phases)  # the report phase alone needs no Docker
    if needs_engine:
        engine.ping()
    run_dir = RunDir.prepare(args.out or default_out(matrix.name), resume=args.resume, shared=bool(args.phase))
    baseline = args.baseline or (_recorded_baseline(run_dir) if args.resume else None)
    console = Console(quiet=args.quiet)
    if needs_engine and (removed := remove_stale_containers(engine)):
        console.step(f"removed {removed} container(s) left by harness runs that are gone")
    jobs = args.jobs or default_jobs()
    run_id = uuid.uuid4().hex[:10]
    console.step(f"run {run_id}: {len(plans)} environment(s), {jobs} job(s), phases {', '.join(phases)}, "
                 f"into {run_dir.path}")
    limits = Limits(memory=args.memory, runtime=args.runtime, cell_timeout=args.cell_timeout,
                    isolation=args.isolation)
    options = RunOptions(jobs=jobs, resume=args.resume, limits=limits, phases=phases, owner=owner_labels())
    runner = Runner(engine, matrix, plans, run_dir=run_dir, console=console, options=options, run_id=run_id)
    report = _execute(runner, engine)
    if isinstance(report, int):  # interrupted
        return report
    if report is None:  # phases without the report: failures are results the report judges, but say so now
        for failure in runner.failures:
            print(f"harness: {failure}", file=sys.stderr)
        console.step(f"{', '.join(phases)} done in {run_dir.path}; the report phase merges every job's copy")
        return EXIT_FAILURES if runner.failures else EXIT_OK
    if baseline is not None:
        report = write_reports(run_dir, baseline=baseline)  # records it in run.json, adds the regressions
    console.grid(report)
    console.step(f"reports in {run_dir.path}: {', '.join(FILES.values())}")
    return int(report["verdict"]["exit_code"])


def _execute(runner: Runner, engine: DockerCLI) -> dict[str, Any] | int | None:
    """Run; when stopped early (Ctrl-C, SIGTERM, a full disk), remove its containers and keep its records."""
    from harness.engine import LABEL_RUN

    try:
        return runner.execute()
    except (KeyboardInterrupt, OSError) as exc:
        removed = engine.remove_containers({LABEL_RUN: runner.run_id})
        runner.mark_interrupted()
        if isinstance(exc, OSError):
            raise
        print(f"harness: interrupted; removed {removed} container(s); continue with "
              f"--resume --out {runner.run_dir.path}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _recorded_baseline(run_dir: RunDir) -> Path | None:
    """The baseline an earlier `run --baseline` recorded in run.json, checked now (exit 2 if it is gone)."""
    from harness.report.schema import load_report

    recorded = run_dir.read_run().get("baseline")
    if not recorded:
        return None
    load_report(Path(recorded), "baseline (recorded in run.json)")
    return Path(recorded)


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild every report format from the stored records."""
    from harness.report.writers import FILES, write_reports

    run_dir = RunDir.open_existing(args.run_dir)
    _merge_phase_records(run_dir)
    report = write_reports(run_dir, baseline=args.baseline)
    if args.format:
        print((run_dir.path / FILES[args.format]).read_text(encoding="utf-8"), end="")
    return int(report["verdict"]["exit_code"])


def _merge_phase_records(run_dir: RunDir) -> None:
    """Rebuild run.json from the phase records (envs/<env>/<phase>.json) of every job that wrote into run_dir."""
    from harness.matrix import matrix_from_dict
    from harness.runstate import has_phase_records, merged_run

    if not has_phase_records(run_dir):
        return  # a run directory from before phase records: run.json is the record
    run = run_dir.read_run()
    try:
        matrix = matrix_from_dict(run["matrix"])
        selected = {e["id"]: e.get("image") for e in run.get("environments", [])}
    except (KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{run_dir.run_json}: not a harness run.json ({exc})") from None
    run_dir.write_run(merged_run(run_dir, matrix, selected, run_id=str(run.get("run_id") or "report")))


def cmd_plan(args: argparse.Namespace) -> int:
    """Print the CI job matrix of a matrix file as JSON."""
    from harness.fanout import fanout_plan
    from harness.matrix import load_matrix
    from harness.plan import plan_environments

    base_image = args.base_image or os.environ.get("HARNESS_BASE_IMAGE")
    matrix = load_matrix(args.matrix, base_image=base_image)
    plan = fanout_plan(plan_environments(matrix, os.environ), matrix_name=matrix.name, matrix_arg=str(args.matrix),
                       matrix_sha256=matrix.sha256, out=args.out, base_image=args.base_image,
                       max_jobs=args.max_jobs)
    if args.format == "github":
        keep = {"count": plan["count"], "chunks": len(plan["matrices"]), "matrices": plan["matrices"],
                "report": plan["report"]}
        print(json.dumps(keep, sort_keys=True, separators=(",", ":")))
    else:
        print(json.dumps(plan, sort_keys=True, indent=2))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check this machine; exit 3 when the engine does not answer, 1 when a check failed."""
    from harness.doctor import diagnose, render
    from harness.engine import DockerCLI
    from harness.matrix import load_matrix

    default = Path("matrices/default.yaml")
    path = args.matrix or (default if default.is_file() else None)
    matrix = load_matrix(path, base_image=args.base_image) if path else None
    engine = DockerCLI()
    engine.ping()
    checks = diagnose(engine, matrix, os.environ, out=args.out, runtime=args.runtime, cleanup=args.cleanup)
    return render(checks, print)


def cmd_diff(args: argparse.Namespace) -> int:
    """Print what changed between two reports; exit 1 when a cell got worse."""
    from harness.report.diff import diff_reports, render_diff
    from harness.report.schema import load_report

    diff = diff_reports(load_report(args.old, "old report"), load_report(args.new, "new report"))
    print(render_diff(diff), end="")
    return EXIT_FAILURES if diff["regressions"] else EXIT_OK


COMMANDS = {"run": cmd_run, "validate": cmd_validate, "plan": cmd_plan, "report": cmd_report, "diff": cmd_diff,
            "doctor": cmd_doctor, "check": check.cmd_check}


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run one command, map the project's errors to exit codes."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="harness: %(levelname)s: %(message)s")
    # SIGTERM (CI cancelling a job) cleans up exactly like Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return COMMANDS[args.command](args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"harness: error: {exc.strerror}{where}; free space or choose another --out, then --resume",
              file=sys.stderr)
        return EXIT_USAGE
    finally:
        signal.signal(signal.SIGTERM, previous)
