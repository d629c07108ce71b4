"""`harness inspect FILE --to SPEC...`: which routes of a model file fail where, from the file alone, in a second.
The flags; harness/inspection.py reads the file and answers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    """The `inspect` subcommand's arguments."""
    parser = sub.add_parser("inspect", help="read a model file on the host, without TensorFlow, and predict which "
                            "routes fail in which releases and why (before any container)",
                            description="Read FILE's stored config (a .keras archive, a legacy .h5, an architecture "
                                        "JSON, a SavedModel folder) without TensorFlow and without running any of "
                                        "its code, and predict from a table of what each Keras release accepts "
                                        "which routes fail in each target and why. `harness check` confirms it in "
                                        "containers.")
    parser.add_argument("file", type=Path, metavar="FILE", help="the model file or SavedModel folder")
    parser.add_argument("--to", dest="target", required=True, action="append", metavar="SPEC",
                        help="a release to load it in, as check's SPEC: 2.15.1, 2.16.2+keras3.3.3, 2.16.2+tf-keras; "
                             "repeat it for several")
    parser.add_argument("--python", default=None, metavar="VERSION",
                        help="the targets' Python (default 3.11): Lambda bytecode loads only in its own Python")
    parser.add_argument("--with-custom-objects", dest="custom_objects", action="store_true",
                        help="the loads pass the model's custom objects (check's --custom-objects)")
    parser.add_argument("--json", dest="as_json", action="store_true", help="print the findings and every "
                        "route's prediction as JSON")


def main(args: argparse.Namespace, engine: Any) -> int:
    """Print the file's first answer; 0 when its usual route is predicted to load in every target, 1 when not,
    2 when FILE is no model file."""
    from harness.inspection import inspect_answer

    text, code = inspect_answer(args.file, tuple(args.target), python=args.python, custom_objects=args.custom_objects,
                                as_json=args.as_json)
    print(text, end="")
    return code
