"""`harness check`: is it safe to move THIS model from one environment to another, and if not, what works.

The check is a two-environment matrix made in memory and run by the same workflow as `run`: the
same run directory and reports, plus check.yaml (the matrix, to rerun with `run`) and check.json
(the verdict).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.options import add_base_image, default_jobs, positive_float, positive_int, python_version
from harness.console import Console
from harness.errors import EXIT_FAILURES, EXIT_OK, MatrixError, UsageError
from harness.matrix import Matrix
from harness.plan import Limits
from harness.workflow import RunEngine, RunRequest, run_matrix

if TYPE_CHECKING:
    from harness.agent.protocol import ModelSpec
    from harness.handover import Handed
    from harness.verdict import Verdict

DEFAULT_PYTHON = "3.11"  # TensorFlow 2.12 to 2.20 all have wheels for it
STATUS_ORDER = ("safe", "safe via another route", "untested", "unsafe")  # the worst of several targets counts


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


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and how it is loaded: shared by check and bisect."""
    parser.add_argument("--python", type=python_version, default=DEFAULT_PYTHON,
                        help=f"Python of every environment (default {DEFAULT_PYTHON})")
    parser.add_argument("--model", required=True, metavar="PATH_OR_MODULE:FN",
                        help="a saved model (.h5, .keras, SavedModel dir, weights) or a factory MODULE:FUNCTION "
                             "(or path/to/file.py:FUNCTION) that builds it")
    parser.add_argument("--inputs", metavar="FILE_OR_SHAPE",
                        help="a .npy/.npz file, or SHAPE[:DTYPE] like 8x64x64x1:float32 for seeded random inputs")
    parser.add_argument("--custom-objects", metavar="MODULE",
                        help="MODULE[:DICT] or file.py[:DICT] with custom layers")
    parser.add_argument("--factory", metavar="MODULE:FN", help="with a saved model: the code that rebuilds it "
                                                               "(adds the rebuild + load_weights route)")
    parser.add_argument("--reference", metavar="FILE", help="with a saved model: its known-good predictions (.npy); "
                                                            "default: what the --from environment predicts")
    parser.add_argument("--format", help="the format you save in (default: the saved model's, else keras)")
    parser.add_argument("--unsafe", action="store_true",
                        help="also try load_model(safe_mode=False), which runs the code the file holds (Lambda "
                             "bytecode) inside the sandbox; never tried unless asked")


def add_run_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Where the run goes and how it runs: shared by check and bisect."""
    parser.add_argument("--out", type=Path, help=f"run directory (default runs/{command}-<model>-<UTC time>)")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="environments worked on in parallel (default: from cores and memory)")
    add_base_image(parser)
    parser.add_argument("--cell-timeout", type=positive_float, default=300.0,
                        help="seconds one load may take (default 300)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


@dataclass(frozen=True)
class Target:
    """One --to: its environment, and the tf-keras environment beside it (None when the check added none)."""

    spec: str
    env: str
    tf_keras: str | None


def check_matrix(args: argparse.Namespace) -> tuple[Matrix, dict[str, Any], list[Target]]:
    """The matrix of a check, validated like a matrix file; its YAML-ready data; and each --to's environments."""
    import yaml

    from harness.matrix import parse_matrix
    from harness.upgrade import add_routes, check_environments, migration_entry, parse_spec, user_model_entry

    entry = user_model_entry(args.model, custom_objects=args.custom_objects, factory=args.factory,
                             inputs=args.inputs, reference=args.reference)
    add_routes(entry, args.format, unsafe=args.unsafe)
    source = parse_spec(args.source, "--from")
    wanted = [parse_spec(text, "--to") for text in args.target]
    envs = check_environments(source, wanted, args.python, tf_keras=args.tf_keras)
    migrated = migration_entry(entry)
    data = {"name": f"check-{entry['name']}", "environments": envs.entries,
            "models": [entry, *([migrated] if migrated else [])]}
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        matrix = parse_matrix(data, path="check.yaml", sha256=hashlib.sha256(text.encode()).hexdigest(),
                              base_image=args.base_image)
    except MatrixError as exc:
        flags = _flag_names(envs.targets)
        raise UsageError(in_flag_terms(exc.problems[0], flags) + (f" (and {len(exc.problems) - 1} more)"
                                                           if len(exc.problems) > 1 else "")) from None
    ids = [e.id for e in matrix.environments]
    targets = [Target(spec, ids[at], None if beside is None else ids[beside])
               for spec, (at, beside) in zip(args.target, envs.targets)]
    for target in targets:
        if target.env == ids[0]:
            raise UsageError(f"--from and --to are the same environment: {ids[0]}")
    seen = [t.env for t in targets]
    twice = next((t for t in targets if seen.count(t.env) > 1), None)
    if twice is not None:
        raise UsageError(f"--to {twice.spec}: the environment {twice.env} is asked for twice")
    return matrix, data, targets


def _flag_names(placed: list[tuple[int, int | None]]) -> dict[int, str]:
    """Environment index -> the flag that asked for it."""
    names = {0: "--from"}
    for at, beside in placed:  # a problem's own words say which --to it is (found ...)
        names.setdefault(at, "--to")
        if beside is not None:
            names.setdefault(beside, "the tf-keras environment beside --to")
    return names


_FLAGS = (("models[0].artifact", "--model"), ("models[0].factory", "--model"),
          ("models[0].custom_objects", "--custom-objects"), ("models[0].inputs", "--inputs"),
          ("models[0].reference", "--reference"), ("models[0]", "--model"), ("models[1]", "the migration of --model"))


def in_flag_terms(problem: str, environments: dict[int, str]) -> str:
    """A matrix problem in terms of the command line."""
    problem = re.sub(r"environments\[(\d+)\]", lambda m: environments.get(int(m.group(1)), m.group(0)), problem)
    for key, flag in _FLAGS:
        problem = problem.replace(key, flag)
    return problem


def main(args: argparse.Namespace, engine: RunEngine) -> int:
    """Run the check's matrix like `run`, then print the verdict; 0 when the current route survives in every target."""
    import yaml

    from harness.agent.protocol import artifact_source, write_json_atomic, write_text_atomic
    from harness.handover import check_folder, hand_over
    from harness.rundir import RunDir, default_out
    from harness.upgrade import route_of
    from harness.verdict import decide

    matrix, data, targets = check_matrix(args)
    if args.migrate is not None:
        check_folder(args.migrate)
    model = matrix.models[0]
    migrated = matrix.models[1] if len(matrix.models) > 1 else None
    route = route_of(model.artifact_format, args.format, model.code.factory is not None)
    out = args.out or default_out(matrix.name)
    request = RunRequest(out=out, jobs=args.jobs or default_jobs(), limits=Limits(cell_timeout=args.cell_timeout))
    outcome = run_matrix(matrix, request, engine, Console(quiet=args.quiet), os.environ)
    if outcome.exit_code not in (EXIT_OK, EXIT_FAILURES) or outcome.report is None:
        return outcome.exit_code
    report = outcome.report
    home = matrix.environments[0].id
    source = artifact_source(model.name) if model.kind == "artifact" else home
    verdicts = [decide(report, model=model.name, source=source, target=t.env, home=home, route=route,
                       tf_keras=t.tf_keras, migrated=migrated.name if migrated else None) for t in targets]
    handed = [] if args.migrate is None or migrated is None else hand_over(
        args.migrate, verdicts, run_dir=RunDir(Path(out)), report=report, model=model, migrated=migrated)
    write_text_atomic(Path(out) / "check.yaml", yaml.safe_dump(data, sort_keys=False))
    write_json_atomic(Path(out) / "check.json", check_json(verdicts, report, source=source, home=home,
                                                           migrated=migrated, handed=handed), strict=True)
    print(screen(verdicts, report, source=source, home=home, route=route, run_dir=Path(out), model=model.name,
                 migrate=args.migrate, handed=handed), end="")
    return max(v.exit_code for v in verdicts)


def check_json(verdicts: list[Verdict], report: dict[str, Any], *, source: str, home: str,
               migrated: ModelSpec | None, handed: list[Handed]) -> dict[str, Any]:
    """check.json: the overall verdict, one entry per target, and the first target's fields at the top level."""
    from harness.verdict import route_dict

    def one(v: Verdict) -> dict[str, Any]:
        given = next((h for h in handed if h.target == v.target), None)
        return {"target": v.target, "tf_keras": v.tf_keras, "verdict": v.status, "path_verdict": v.path,
                "exit_code": v.exit_code, "route": list(v.current), "asked": list(v.asked),
                "current": None if v.route is None else route_dict(v.route),
                "at_home": None if v.at_home is None else route_dict(v.at_home),
                "best": None if v.best is None else route_dict(v.best),
                "use": None if v.use is None else route_dict(v.use), "tried": v.tried,
                "works": [route_dict(r) for r in v.works], "breaks": [route_dict(r) for r in v.breaks],
                "never_works": [route_dict(r) for r in v.never],
                "migrated": None if given is None else {"folder": str(given.folder), "file": given.file,
                                                        "route": route_dict(given.route)}}

    entries = [one(v) for v in verdicts]
    worst = max((v.status for v in verdicts), key=STATUS_ORDER.index)
    migration = next((m for m in report.get("migrations", []) if migrated and m["model"] == migrated.name), None)
    return {**entries[0], "verdict": worst, "exit_code": max(v.exit_code for v in verdicts), "source": source,
            "home": home, "migration": migration, "targets": entries}


def screen(verdicts: list[Verdict], report: dict[str, Any], *, source: str, home: str, route: tuple[str, str],
           run_dir: Path, model: str, migrate: Path | None, handed: list[Handed]) -> str:
    """The verdict screen of one target, or the table of several; then what --migrate wrote."""
    from harness.verdict import render, table

    if len(verdicts) == 1:
        text = render(verdicts[0], report, source=source, home=home, target=verdicts[0].target, route=route,
                      run_dir=run_dir, model=model)
    else:
        text = "\n".join([*table(verdicts), "", f"details: {run_dir / 'check.json'}, report: "
                                                 f"{run_dir / 'report.html'}"]) + "\n"
    if migrate is None:
        return text
    lines = [f"migrated: {h.folder / h.file} (loads with {h.folder / 'load.py'}; {h.route.words()})" for h in handed]
    if not handed:
        lines = [f"migrated: nothing written to {migrate}: no migrated file predicts like the original in the target"]
    return text + "\n" + "\n".join(lines) + "\n"
