"""`harness check`: is it safe to move one model to each target? The flags; harness/advisor/check.py answers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.options import add_model_arguments, add_run_arguments, model_question, run_settings
from harness.workflow import RunEngine


def add_parser(sub: Any) -> None:
    """The `check` subcommand's arguments."""
    check = sub.add_parser("check", help="is it safe to move one model from one environment to another?",
                           description="Build (or reuse) the environments, save and load your model in each, and "
                                       "say whether your route survives, and which route works if not: the file "
                                       "as it is, with tf-keras beside a Keras 3 target, or migrated (loaded where "
                                       "it works and saved there again).")
    check.add_argument("--from", dest="source", required=True, metavar="SPEC",
                       help="the environment you are on: tf==2.15.1, tensorflow==2.16.2,keras==3.3.3, 2.16.2+tf-keras")
    check.add_argument("--to", dest="target", required=True, action="append", metavar="SPEC",
                       help="the environment to move to; repeat it for several (one run, a table row per target)")
    add_model_arguments(check)
    check.add_argument("--migrate", type=Path, metavar="DIR",
                       help="write the best verified migrated file (your saved model loaded where it works, saved "
                            "again there, and shown to predict the same in the target), the code that loads it and "
                            "a manifest to DIR (DIR/<target> for several --to); nothing unverified is written")
    check.add_argument("--no-tf-keras", dest="tf_keras", action="store_false",
                       help="do not add the target's TensorFlow with tf-keras beside a Keras 3 target")
    add_run_arguments(check, "check")


def main(args: argparse.Namespace, engine: RunEngine) -> int:
    """Answer the check; 0 when the current route survives in every target."""
    from harness.advisor.check import run_check
    from harness.advisor.question import CheckQuestion

    question = CheckQuestion(source=args.source, targets=tuple(args.target), model=model_question(args),
                             tf_keras=args.tf_keras, migrate=args.migrate)
    return run_check(question, run_settings(args), engine)
