"""`harness adapt FILE --to SPEC`: a copy of a saved model edited for the target's Keras, verified there, written.
The flags; harness/advisor/adapt.py adapts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.options import add_model_arguments, add_run_arguments, model_question, run_settings
from harness.workflow import RunEngine


def add_parser(sub: Any) -> None:
    """The `adapt` subcommand's arguments."""
    adapt = sub.add_parser("adapt", help="edit a copy of a saved model for another Keras, verify it there, write it",
                           description="Edit a copy of FILE's stored config (and weights, where a known transform "
                                       "exists) for the target's Keras without loading it with the wrong Keras, load "
                                       "the copy in the target with its own load_model (safe mode on), compare its "
                                       "predictions with the original's at home, and write the copy only if they "
                                       "match. The screen names every edit, or which adapter failed and why.")
    adapt.add_argument("--to", dest="target", required=True, metavar="SPEC",
                       help="the environment to adapt for: 2.21.0+keras3.15.1, tensorflow==2.16.2,keras==3.3.3, ...")
    adapt.add_argument("--from", dest="source", metavar="SPEC",
                       help="where FILE loads today, its reference predictions' home (default: TensorFlow 2.15.1 "
                            "for a Keras 2 file, 2.20.0 with the file's own Keras for a Keras 3 file)")
    adapt.add_argument("--out", type=Path, metavar="FILE",
                       help="where the verified copy goes, a new file (default: ./<name>.adapted.<ext>); its suffix "
                            "chooses among verified copies (.keras: the one saved as .keras in the target)")
    add_model_arguments(adapt, file=True)
    add_run_arguments(adapt, "adapt", run_dir_flag="--run-dir")


def main(args: argparse.Namespace, engine: RunEngine) -> int:
    """Adapt, verify and write; 0 when a verified copy was written or none was needed, 1 when none passed."""
    from harness.advisor.adapt import run_adapt
    from harness.advisor.question import AdaptQuestion

    question = AdaptQuestion(target=args.target, source=args.source, out=args.out, model=model_question(args))
    return run_adapt(question, run_settings(args), engine)
