"""`harness plan MATRIX`: the job matrix of a CI fan-out, one entry per environment."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from harness.cli.options import add_versions, matrix_versions, positive_int


def add_parser(sub: Any) -> None:
    """The `plan` subcommand's arguments."""
    plan = sub.add_parser("plan", help="the CI job matrix: one entry per environment, its image and phase commands")
    plan.add_argument("matrix", type=Path, help="matrix YAML file")
    plan.add_argument("--format", choices=("github", "json"), default="json",
                      help="github: one line of strategy.matrix values for $GITHUB_OUTPUT; json: the whole plan")
    plan.add_argument("--out", default="run", help="the run directory the commands share (default: run)")
    plan.add_argument("--base-image", default=None,
                      help="base image template passed to every command (default: HARNESS_BASE_IMAGE, unpassed)")
    plan.add_argument("--max-jobs", type=positive_int, default=256,
                      help="environments per matrix; more are split into several (GitHub's limit: 256)")
    add_versions(plan)


def main(args: argparse.Namespace, engine: object) -> int:
    """Print the CI job matrix of a matrix file as JSON."""
    from harness.fanout import fanout_plan
    from harness.matrix import load_matrix
    from harness.plan import plan_environments

    base_image = args.base_image or os.environ.get("HARNESS_BASE_IMAGE")
    versions = matrix_versions(args)
    matrix = load_matrix(args.matrix, base_image=base_image, versions=versions)
    plan = fanout_plan(plan_environments(matrix, os.environ), matrix_name=matrix.name, matrix_arg=str(args.matrix),
                       matrix_sha256=matrix.sha256, out=args.out, base_image=args.base_image,
                       max_jobs=args.max_jobs, versions=versions.resolved())
    for line in versions.lines():
        print(f"harness: version: {line}", file=sys.stderr)
    if args.format == "github":
        keep = {"count": plan["count"], "chunks": len(plan["matrices"]), "matrices": plan["matrices"],
                "report": plan["report"], "versions": plan["versions"]}
        print(json.dumps(keep, sort_keys=True, separators=(",", ":")))
    else:
        print(json.dumps(plan, sort_keys=True, indent=2))
    return 0
