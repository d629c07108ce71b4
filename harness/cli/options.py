"""Argument types and flags several subcommands share."""

from __future__ import annotations

import argparse
import os
import re

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
                             "regressions (only cells worse than --baseline); `run` records it in run.json for every "
                             "later report of the run, `report` applies it to that report only")


def add_base_image(parser: argparse.ArgumentParser) -> None:
    """--base-image, defaulting to HARNESS_BASE_IMAGE."""
    parser.add_argument("--base-image", default=os.environ.get("HARNESS_BASE_IMAGE"),
                        help="base image template, e.g. 'harness-base:{python}' (env HARNESS_BASE_IMAGE)")
