"""Argument types and flags several subcommands share."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from harness.advisor.question import DEFAULT_PYTHON, ModelQuestion, RunSettings

MEMORY_PER_JOB = 6 * 1024**3  # a TensorFlow process loading probes stays well below this


def default_jobs() -> int:
    """Parallel environments: one per core, but never more than memory allows."""
    cores = os.cpu_count() or 1
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1
    return max(1, min(cores, available // MEMORY_PER_JOB))


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, found {value}")
    return value


def memory(text: str) -> str:
    """A container memory limit in docker syntax."""
    if not re.fullmatch(r"[1-9][0-9]*[kmgKMG]?", text):
        raise argparse.ArgumentTypeError(f"expected a size like 6g or 512m, found {text!r}")
    return text


def cpus(text: str) -> float:
    """CPUs a container may use: more than 0, at most the host's."""
    cores = float(os.cpu_count() or 1)
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of CPUs like 2 or 0.5, found {text!r}") from None
    if not 0.01 <= value <= cores:
        raise argparse.ArgumentTypeError(f"expected 0.01 to {cores:g} (this host's CPUs), found {text}")
    return value


def positive_float(text: str) -> float:
    """A number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, found {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, found {value}")
    return value


def add_fail_on(parser: argparse.ArgumentParser) -> None:
    """--fail-on: what makes the exit code 1."""
    from harness.report.gate import FAIL_ON

    parser.add_argument("--fail-on", choices=FAIL_ON, default=None,
                        help="what fails the run (exit 1): breaks (default: a route that works at home breaks in a "
                             "target, no expectation covers it), unexpected (any failing cell no expectation covers), "
                             "regressions (only cells worse than --baseline); recorded in run.json")


def add_base_image(parser: argparse.ArgumentParser) -> None:
    """--base-image, defaulting to HARNESS_BASE_IMAGE."""
    parser.add_argument("--base-image", default=os.environ.get("HARNESS_BASE_IMAGE"),
                        help="base image template, e.g. 'harness-base:{python}' (env HARNESS_BASE_IMAGE)")


def add_model_arguments(parser: argparse.ArgumentParser, *, file: bool = False) -> None:
    """The model and how it is loaded: shared by check, bisect and adapt (`file`: a saved model, named first)."""
    parser.add_argument("--python", default=DEFAULT_PYTHON, help=f"Python of every environment (default "
                                                                 f"{DEFAULT_PYTHON})")
    if file:
        parser.add_argument("model", metavar="FILE", help="the saved model: .h5, .keras, an architecture .json (its "
                                                          "weights beside it), or a weights .h5 with --factory")
    else:
        parser.add_argument("--model", required=True, metavar="PATH_OR_MODULE:FN",
                            help="a saved model (.h5, .keras, SavedModel dir, weights) or a factory MODULE:FUNCTION "
                                 "(or path/to/file.py:FUNCTION) that builds it")
    parser.add_argument("--inputs", metavar="FILE_OR_SHAPE",
                        help="a .npy/.npz file, or SHAPE[:DTYPE] like 8x64x64x1:float32 for seeded random inputs")
    parser.add_argument("--custom-objects", metavar="MODULE",
                        help="MODULE[:DICT] or file.py[:DICT] with custom layers")
    parser.add_argument("--factory", metavar="MODULE:FN", help="with a saved model: the code that rebuilds it "
                                                               "(adds the rebuild + load_weights route)")
    parser.add_argument("--reference", metavar="FILE", help="with a saved model: its known-good predictions (.npy); "
                                                            "default: what the --from environment predicts")
    parser.add_argument("--format", help="the format you save in (default: the saved model's, else keras)")
    if not file:  # an adapted copy is verified with the target's own loader, safe mode on
        parser.add_argument("--unsafe", action="store_true",
                            help="also try load_model(safe_mode=False), which runs the code the file holds (Lambda "
                                 "bytecode) inside the sandbox; never tried unless asked")


def add_run_arguments(parser: argparse.ArgumentParser, command: str, run_dir_flag: str = "--out") -> None:
    """Where the run goes and how it runs: shared by check, bisect and adapt."""
    parser.add_argument(run_dir_flag, dest="run_dir", type=Path,
                        help=f"run directory (default runs/{command}-<model>-<UTC time>)")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="environments worked on in parallel (default: from cores and memory)")
    add_base_image(parser)
    parser.add_argument("--cell-timeout", type=positive_float, default=300.0,
                        help="seconds one load may take (default 300)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def model_question(args: argparse.Namespace) -> ModelQuestion:
    """What the model flags ask about."""
    return ModelQuestion(model=args.model, python=args.python, inputs=args.inputs, custom_objects=args.custom_objects,
                         factory=args.factory, reference=args.reference, format=args.format,
                         unsafe=getattr(args, "unsafe", False))


def run_settings(args: argparse.Namespace) -> RunSettings:
    """What the run flags ask for."""
    return RunSettings(out=args.run_dir, jobs=args.jobs or default_jobs(), base_image=args.base_image,
                       cell_timeout=args.cell_timeout, quiet=args.quiet)
