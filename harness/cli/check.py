"""`harness check`: is it safe to move THIS model from one environment to another, and if not, what works.

The check is a two-environment matrix made in memory and run by the same workflow as `run`: the
same run directory and reports, plus check.yaml (the matrix, to rerun with `run`) and check.json
(the verdict).
"""

from __future__ import annotations

import argparse
import hashlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.cli.options import add_base_image, default_jobs, positive_float, positive_int
from harness.console import Console
from harness.errors import EXIT_FAILURES, EXIT_OK, MatrixError, UsageError
from harness.matrix import Matrix
from harness.plan import Limits
from harness.workflow import RunEngine, RunRequest, run_matrix

DEFAULT_PYTHON = "3.11"  # TensorFlow 2.12 to 2.20 all have wheels for it


def add_parser(sub: Any) -> None:
    """The `check` subcommand's arguments."""
    check = sub.add_parser("check", help="is it safe to move one model from one environment to another?",
                           description="Build (or reuse) two environments, save and load your model both ways, "
                                       "and say whether your route survives, and which route works if not.")
    check.add_argument("--from", dest="source", required=True, metavar="SPEC",
                       help="the environment you are on: tf==2.15.1, tensorflow==2.16.2,keras==3.3.3, 2.16.2+tf-keras")
    check.add_argument("--to", dest="target", required=True, metavar="SPEC", help="the environment to move to")
    check.add_argument("--python", default=DEFAULT_PYTHON, help=f"Python of both (default {DEFAULT_PYTHON})")
    check.add_argument("--model", required=True, metavar="PATH_OR_MODULE:FN",
                       help="a saved model (.h5, .keras, SavedModel dir, weights) or a factory MODULE:FUNCTION "
                            "(or path/to/file.py:FUNCTION) that builds it")
    check.add_argument("--inputs", metavar="FILE_OR_SHAPE",
                       help="a .npy/.npz file, or SHAPE[:DTYPE] like 8x64x64x1:float32 for seeded random inputs")
    check.add_argument("--custom-objects", metavar="MODULE", help="MODULE[:DICT] or file.py[:DICT] with custom layers")
    check.add_argument("--factory", metavar="MODULE:FN", help="with a saved model: the code that rebuilds it "
                                                              "(adds the rebuild + load_weights route)")
    check.add_argument("--reference", metavar="FILE", help="with a saved model: its known-good predictions (.npy); "
                                                           "default: what the --from environment predicts")
    check.add_argument("--format", help="the format you save in (default: the saved model's, else keras)")
    check.add_argument("--unsafe", action="store_true",
                       help="also try load_model(safe_mode=False), which runs the code the file holds (Lambda "
                            "bytecode) inside the sandbox; never tried unless asked")
    check.add_argument("--out", type=Path, help="run directory (default runs/check-<model>-<UTC time>)")
    check.add_argument("--jobs", type=positive_int, default=None,
                       help="environments worked on in parallel (default: from cores and memory)")
    add_base_image(check)
    check.add_argument("--cell-timeout", type=positive_float, default=300.0,
                       help="seconds one load may take (default 300)")
    check.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def check_matrix(args: argparse.Namespace) -> tuple[Matrix, dict[str, Any]]:
    """The two-environment matrix of a check, validated like a matrix file; and its YAML-ready data."""
    import yaml

    from harness.matrix import parse_matrix
    from harness.upgrade import add_routes, parse_spec, user_model_entry

    entry = user_model_entry(args.model, custom_objects=args.custom_objects, factory=args.factory,
                             inputs=args.inputs, reference=args.reference)
    add_routes(entry, args.format, unsafe=args.unsafe)
    source, target = parse_spec(args.source, "--from"), parse_spec(args.target, "--to")
    data = {"name": f"check-{entry['name']}", "environments": [source.entry(args.python), target.entry(args.python)],
            "models": [entry]}
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        matrix = parse_matrix(data, path="check.yaml", sha256=hashlib.sha256(text.encode()).hexdigest(),
                              base_image=args.base_image)
    except MatrixError as exc:
        raise UsageError(_flags(exc.problems[0]) + (f" (and {len(exc.problems) - 1} more)"
                                                    if len(exc.problems) > 1 else "")) from None
    if matrix.environments[0].id == matrix.environments[1].id:
        raise UsageError(f"--from and --to are the same environment: {matrix.environments[0].id}")
    return matrix, data


_FLAGS = (("environments[0]", "--from"), ("environments[1]", "--to"), ("models[0].artifact", "--model"),
          ("models[0].factory", "--model"), ("models[0].custom_objects", "--custom-objects"),
          ("models[0].inputs", "--inputs"), ("models[0].reference", "--reference"), ("models[0]", "--model"))


def _flags(problem: str) -> str:
    """A matrix problem in terms of the command line."""
    for key, flag in _FLAGS:
        problem = problem.replace(key, flag)
    return problem


def main(args: argparse.Namespace, engine: RunEngine) -> int:
    """Run the two-environment matrix like `run`, then print the verdict; 0 when the current route survives."""
    import yaml

    from harness.agent.protocol import artifact_source, write_json_atomic
    from harness.rundir import default_out
    from harness.upgrade import route_of
    from harness.verdict import decide, render

    matrix, data = check_matrix(args)
    model = matrix.models[0]
    route = route_of(model.artifact_format, args.format, model.code.factory is not None)
    out = args.out or default_out(matrix.name)
    request = RunRequest(out=out, jobs=args.jobs or default_jobs(), limits=Limits(cell_timeout=args.cell_timeout))
    outcome = run_matrix(matrix, request, engine, Console(quiet=args.quiet), os.environ)
    if outcome.exit_code not in (EXIT_OK, EXIT_FAILURES) or outcome.report is None:
        return outcome.exit_code
    report = outcome.report
    home, target = matrix.environments[0].id, matrix.environments[1].id
    source = artifact_source(model.name) if model.kind == "artifact" else home
    verdict = decide(report, model=model.name, source=source, target=target, home=home, route=route)
    (Path(out) / "check.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    fields = asdict(verdict)
    write_json_atomic(Path(out) / "check.json", {
        "verdict": verdict.status, "path_verdict": verdict.path, "exit_code": verdict.exit_code, "source": source,
        "home": home, "target": target, "route": list(verdict.current), "asked": list(verdict.asked),
        "current": fields["route"], "at_home": fields["at_home"], "works": fields["works"],
        "breaks": fields["breaks"], "never_works": fields["never"]}, strict=True)
    print(render(verdict, report, source=source, home=home, target=target, route=route, run_dir=Path(out)), end="")
    return verdict.exit_code
