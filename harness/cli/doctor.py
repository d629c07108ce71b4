"""`harness doctor [MATRIX]`: is this machine ready to run a matrix, and what to do where it is not."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from harness.cli.options import add_base_image
from harness.doctor import DoctorEngine


def add_parser(sub: Any) -> None:
    """The `doctor` subcommand's arguments."""
    doctor = sub.add_parser("doctor", help="engine, base images, disk space, index and CA settings, leftovers")
    doctor.add_argument("matrix", type=Path, nargs="?", help="matrix to check images for (default "
                        "matrices/default.yaml when present)")
    add_base_image(doctor)
    doctor.add_argument("--out", type=Path, default=Path("runs"), help="where run directories go (default runs)")
    doctor.add_argument("--runtime", default=os.environ.get("HARNESS_DOCKER_RUNTIME"),
                        help="container runtime runs will ask for (env HARNESS_DOCKER_RUNTIME)")
    doctor.add_argument("--cleanup", action="store_true",
                        help="remove containers of dead runs and untagged harness images (never a tagged image)")


def main(args: argparse.Namespace, engine: DoctorEngine) -> int:
    """Examine this machine; exit 3 when the engine does not answer, 1 when a finding failed."""
    from harness.base_images import Debootstrap, cache_dir
    from harness.doctor import diagnose, render
    from harness.matrix import load_matrix
    from harness.selectors import RECORD, Versions

    default = Path("matrices/default.yaml")
    path = args.matrix or (default if default.is_file() else None)
    # The images a run would build: its latest and latest-pre as the index (or this host's record) resolves them.
    versions = Versions(os.environ, cache_dir(os.environ) / RECORD)
    matrix = load_matrix(path, base_image=args.base_image, versions=versions) if path else None
    engine.ping()
    findings = diagnose(engine, matrix, os.environ, out=args.out, runtime=args.runtime, cleanup=args.cleanup,
                        bootstrap=Debootstrap())
    return render(findings, print)
