"""`harness base-images [PYTHON...]`: build the local base images from Debian packages, once per host."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.base_images import SUITES, BaseEngine, Debootstrap, build_base, check_pythons


def add_parser(sub: Any) -> None:
    """The `base-images` subcommand's arguments."""
    parser = sub.add_parser("base-images", help="build the local base images (harness-base:PYTHON) from Debian "
                            "packages, for hosts that cannot pull python:X.Y-slim")
    parser.add_argument("python", nargs="*", default=list(SUITES), metavar="PYTHON",
                        help=f"Python versions to build (default: {' '.join(SUITES)}), each from the Debian "
                             f"release that ships it ({', '.join(f'{p} {s}' for p, s in SUITES.items())})")
    parser.add_argument("--rebuild", action="store_true", help="build again an image that already exists")


def main(args: argparse.Namespace, engine: BaseEngine) -> int:
    """Build every missing base image (needs root for debootstrap), all at once; existing ones are kept."""
    check_pythons(args.python)
    engine.ping()
    bootstrap = Debootstrap()
    pythons = list(dict.fromkeys(args.python))
    with ThreadPoolExecutor(max_workers=len(pythons)) as pool:
        builds = [pool.submit(build_base, python, engine, bootstrap, print, rebuild=args.rebuild) for python in pythons]
        for built in (future.result() for future in builds):
            if not built.built:
                print(f"base image {built.tag}: present, kept (--rebuild builds it again)")
    return 0
