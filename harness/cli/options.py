"""Argument types and flags several subcommands share."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from harness.advisor.question import DEFAULT_PYTHON, ModelQuestion, RunSettings
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.selectors import Versions

MEMORY_PER_JOB = 6 * 1024**3  # a TensorFlow process loading probes stays well below this


def default_jobs(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Parallel environments: one per core, but never more than memory allows."""
    cores = os.cpu_count() or 1
    available = available_memory(meminfo)
    return 1 if available is None else max(1, min(cores, available // MEMORY_PER_JOB))


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes a new process can have: Linux's MemAvailable (free memory and the page cache it can drop), else the
    free pages; None when neither is known.

    Free pages alone shrink to a few GiB on a host that built images (the page cache holds their layers), which
    made every default run and check take one environment at a time.
    """
    try:
        for line in meminfo.read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("MemAvailable:") and line.split()[1].isdigit():
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, found {value}")
    return value


MEMORY_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
MIN_MEMORY, MAX_MEMORY = 6 << 20, 1 << 50  # Docker refuses less than 6 MiB; no host has a PiB


def memory(text: str) -> str:
    """A container memory limit in docker syntax, within what Docker accepts."""
    found = re.fullmatch(r"([1-9][0-9]{0,15})([kmgKMG]?)", text)
    if not found:
        raise argparse.ArgumentTypeError(f"expected a size like 6g or 512m, found {text[:40]!r}")
    if not MIN_MEMORY <= int(found.group(1)) * MEMORY_UNITS[found.group(2).lower()] <= MAX_MEMORY:
        raise argparse.ArgumentTypeError(f"expected 6m to {MAX_MEMORY >> 30}g, found {text!r}")
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


MAX_SECONDS = 7 * 24 * 3600.0  # a week: longer than any container is let run


def positive_float(text: str) -> float:
    """A number of seconds > 0: finite (nan and inf are not), at most MAX_SECONDS."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, found {text[:40]!r}") from None
    if not 0 < value <= MAX_SECONDS:  # false for nan
        raise argparse.ArgumentTypeError(f"expected more than 0 and at most {MAX_SECONDS:.0f} seconds, found "
                                         f"{text[:40]!r}")
    return value


def python_version(text: str) -> str:
    """A Python major.minor such as 3.11, as matrices write it."""
    if not re.fullmatch(r"3\.[0-9]{1,2}", text):
        raise argparse.ArgumentTypeError(f"expected a Python version like 3.11, found {text[:40]!r}")
    return text


def runtime(text: str) -> str:
    """A container runtime's name, as `docker info` lists it (runc, runsc, io.containerd.runc.v2, ...)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", text):
        raise argparse.ArgumentTypeError(f"expected a runtime name like runsc, found {text[:64]!r}")
    return text


def add_fail_on(parser: argparse.ArgumentParser) -> None:
    """--fail-on: what makes the exit code 1."""
    from harness.report.gate import FAIL_ON

    parser.add_argument("--fail-on", choices=FAIL_ON, default=None,
                        help="what fails the run (exit 1): breaks (default: a route that works at home breaks in a "
                             "target, no expectation covers it), unexpected (any failing cell no expectation covers), "
                             "regressions (only cells worse than --baseline); `run` records it in run.json for every "
                             "later report of the run, `report` applies it to that report only")


def add_base_image(parser: argparse.ArgumentParser) -> None:
    """--base-image, defaulting to HARNESS_BASE_IMAGE."""
    parser.add_argument("--base-image", default=os.environ.get("HARNESS_BASE_IMAGE"),
                        help="base image template, e.g. 'harness-base:{python}' (env HARNESS_BASE_IMAGE)")


def add_model_arguments(parser: argparse.ArgumentParser, *, declared: bool = False, file: bool = False) -> None:
    """The model and how it is loaded: shared by check, bisect and adapt (`declared`: --model may be left out for
    the models the project declares; `file`: a saved model, named first)."""
    parser.add_argument("--python", type=python_version, default=DEFAULT_PYTHON,
                        help=f"Python of every environment (default {DEFAULT_PYTHON})")
    if file:
        parser.add_argument("model", metavar="FILE", help="the saved model: .h5, .keras, an architecture .json (its "
                                                          "weights beside it), or a weights .h5 with --factory")
    else:
        parser.add_argument("--model", required=not declared, metavar="PATH_OR_MODULE:FN",
                            help="a saved model (.h5, .keras, SavedModel dir, weights) or a factory MODULE:FUNCTION "
                                 "(or path/to/file.py:FUNCTION) that builds it"
                                 + ("; default: every model the project declares ([tool.harness] in pyproject.toml, "
                                    "or harness.toml)" if declared else ""))
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


def add_versions(parser: argparse.ArgumentParser) -> None:
    """--offline and --versions: how latest, latest-pre and specifiers resolve (harness/selectors.py)."""
    parser.add_argument("--offline", action="store_true",
                        help="do not ask the package index: latest, latest-pre and specifiers take the newest version "
                             "this host resolved them to before (whose image it built)")
    parser.add_argument("--versions", type=Path, metavar="FILE",
                        help="the versions selectors resolve to: a file of them (what `harness plan` prints under "
                             '"versions") or a run.json, so that every job of one run installs the same releases')


def matrix_versions(args: argparse.Namespace, out: Path | None = None) -> Versions:
    """What resolves a matrix's selectors for these flags: --versions, else the run already in `out` (resumed, or
    shared by phase jobs), else the package index (or, --offline, this host's record)."""
    from harness.base_images import cache_dir
    from harness.rundir import RUN_JSON
    from harness.selectors import RECORD, Versions, read_versions

    pinned: dict[str, str] = {}
    if args.versions is not None:
        pinned = read_versions(args.versions)
    elif out is not None:
        try:
            pinned = read_versions(out / RUN_JSON) if (out / RUN_JSON).is_file() else {}
        except (HarnessError, OSError, ValueError):  # not a run of this harness, or no usable path: the run says so
            pinned = {}
    return Versions(os.environ, cache_dir(os.environ) / RECORD, offline=args.offline, pinned=pinned)
