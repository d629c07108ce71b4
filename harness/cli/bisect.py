"""`harness bisect`: which release broke your model's route? The flags; harness/advisor/bisect.py searches."""

from __future__ import annotations

import argparse
from typing import Any

from harness.advisor.question import AXES
from harness.advisor.releases import GRANULARITIES
from harness.cli.options import add_model_arguments, add_run_arguments, model_question, run_settings
from harness.workflow import RunEngine


def add_parser(sub: Any) -> None:
    """The `bisect` subcommand's arguments."""
    bisect = sub.add_parser("bisect", help="which release between two broke your model's route?",
                            description="List the releases between --from and --to from the package index, build "
                                        "only the environments a binary search needs, and name the last good and "
                                        "first bad release of your route (and of each route that breaks), with the "
                                        "cause at the boundary.")
    bisect.add_argument("--from", dest="source", required=True, metavar="SPEC",
                        help="where the model works (its home): 2.15.1, 2.16.2+keras3.15.1, ...")
    bisect.add_argument("--to", dest="target", required=True, metavar="SPEC",
                        help="where it breaks (or may): the other end, newer or older")
    bisect.add_argument("--axis", choices=AXES, default=None,
                        help="what changes between releases: tensorflow (the Keras each brings, unless both ends "
                             "name the same keras) or keras (TensorFlow fixed); default: tensorflow when the two "
                             "TensorFlow versions differ, else keras")
    bisect.add_argument("--releases", choices=GRANULARITIES, default="minor",
                        help="minor (default): the newest release of each minor in between; release: every one")
    bisect.add_argument("--every", action="store_true",
                        help="probe every listed release (the whole history, non-monotone ones too), not only "
                             "what a binary search needs")
    add_model_arguments(bisect)
    add_run_arguments(bisect, "bisect")


def main(args: argparse.Namespace, engine: RunEngine) -> int:
    """Search, then print the boundary of each route; 0 when your route works at --to, 1 when it breaks."""
    from harness.advisor.bisect import run_bisect
    from harness.advisor.question import BisectQuestion

    question = BisectQuestion(source=args.source, target=args.target, model=model_question(args), axis=args.axis,
                              releases=args.releases, every=args.every)
    return run_bisect(question, run_settings(args), engine)
