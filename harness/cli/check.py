"""`harness check`: is it safe to move one model to each target? The flags; harness/advisor/check.py answers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.options import add_model_arguments, add_run_arguments, model_question, run_settings
from harness.errors import UsageError
from harness.workflow import RunEngine

MODEL_FLAGS = ("inputs", "custom_objects", "factory", "reference", "format")  # only with --model


def add_parser(sub: Any) -> None:
    """The `check` subcommand's arguments."""
    check = sub.add_parser("check", help="is it safe to move one model from one environment to another?",
                           description="Build (or reuse) the environments, save and load your model in each, and "
                                       "say whether your route survives, and which route works if not: the file "
                                       "as it is, with tf-keras beside a Keras 3 target, or migrated (loaded where "
                                       "it works and saved there again). The environments are SPECs, or read from "
                                       "the project's own dependency files at git refs (--from-ref/--to-ref).")
    check.add_argument("--from", dest="source", metavar="SPEC",
                       help="the environment you are on: tf==2.15.1, tensorflow==2.16.2,keras==3.3.3, 2.16.2+tf-keras")
    check.add_argument("--to", dest="target", action="append", metavar="SPEC",
                       help="the environment to move to; repeat it for several (one run, a table row per target)")
    check.add_argument("--from-ref", metavar="REF",
                       help="read the environment you are on from the project's files at this git commit (uv.lock, "
                            "poetry.lock, requirements*.txt, pyproject.toml, .python-version; git show, no checkout)")
    check.add_argument("--to-ref", metavar="REF",
                       help="read the environment to move to from the project's files at this commit (default with "
                            "--from-ref: the working tree)")
    check.add_argument("--project", type=Path, default=Path(), metavar="DIR",
                       help="the folder holding the project's dependency files and its [tool.harness] models "
                            "(default: the current folder)")
    add_model_arguments(check, declared=True)
    check.add_argument("--migrate", type=Path, metavar="DIR",
                       help="write the best verified migrated file (your saved model loaded where it works, saved "
                            "again there, and shown to predict the same in the target), the code that loads it and "
                            "a manifest to DIR (DIR/<target> for several --to); nothing unverified is written")
    check.add_argument("--no-tf-keras", dest="tf_keras", action="store_false",
                       help="do not add the target's TensorFlow with tf-keras beside a Keras 3 target")
    add_run_arguments(check, "check")


def main(args: argparse.Namespace, engine: RunEngine) -> int:
    """Answer the check; 0 when the current route survives in every target (of every model)."""
    from harness.advisor.check import run_check
    from harness.advisor.checks import ProjectCheck, run_project_check
    from harness.advisor.question import CheckQuestion

    if args.model is None:
        given = [f"--{name.replace('_', '-')}" for name in MODEL_FLAGS if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{given[0]} is for --model; a declared model says it in its [tool.harness] entry")
    if args.model is not None and args.from_ref is None and args.to_ref is None:
        if args.source is None or not args.target:
            raise UsageError("give --from SPEC and --to SPEC, or --from-ref REF (the project's files say both sides)")
        question = CheckQuestion(source=args.source, targets=tuple(args.target), model=model_question(args),
                                 tf_keras=args.tf_keras, migrate=args.migrate)
        return run_check(question, run_settings(args), engine)
    ask = ProjectCheck(folder=args.project, source=args.source, targets=tuple(args.target or ()),
                       from_ref=args.from_ref, to_ref=args.to_ref,
                       model=model_question(args) if args.model is not None else None, python=args.python,
                       tf_keras=args.tf_keras, migrate=args.migrate)
    return run_project_check(ask, run_settings(args), engine)
