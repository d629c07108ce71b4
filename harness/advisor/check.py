"""`harness check`: is it safe to move THIS model from one environment to another, and if not, what works.

The check is a matrix made in memory (the --from environment, each --to, and the tf-keras
environment beside a Keras 3 target) and run by the same workflow as `run`: the same run
directory and reports, plus check.yaml (the matrix, to rerun with `run`) and check.json.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.advisor.question import CheckQuestion, RunSettings
from harness.base_images import cache_dir
from harness.console import Console
from harness.errors import EXIT_FAILURES, EXIT_OK, MatrixError, UsageError
from harness.matrix import Matrix
from harness.plan import Limits
from harness.reuse import Reuse, ReuseAsked
from harness.workflow import RunEngine, RunRequest, run_matrix

if TYPE_CHECKING:
    from harness.advisor.handover import Handed
    from harness.rundir import RunDir


@dataclass(frozen=True)
class Target:
    """One --to: its environment, and the tf-keras environment beside it (None when the check added none)."""

    spec: str
    env: str
    tf_keras: str | None


def check_matrix(question: CheckQuestion, base_image: str | None,
                 name: str = "check") -> tuple[Matrix, dict[str, Any], list[Target]]:
    """The matrix of a check (named `name`-<model>), validated like a matrix file; its YAML-ready data; and each --to's
    environments."""
    import yaml

    from harness.advisor.question import check_environments, migration_entry, parse_spec
    from harness.matrix import parse_matrix

    entry = question.model.entry()
    given = list(question.environments) or [None] * (1 + len(question.targets))
    source = given[0] or parse_spec(question.source, "--from")
    wanted = [read or parse_spec(text, "--to") for text, read in zip(question.targets, given[1:])]
    envs = check_environments(source, wanted, question.model.python, tf_keras=question.tf_keras)
    migrated = migration_entry(entry) if question.migration else None
    data = {"name": f"{name}-{entry['name']}", "environments": envs.entries,
            "models": [entry, *([migrated] if migrated else [])]}
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        matrix = parse_matrix(data, path="check.yaml", sha256=hashlib.sha256(text.encode()).hexdigest(),
                              base_image=base_image)
    except MatrixError as exc:
        flags = _flag_names(envs.targets)
        raise UsageError(in_flag_terms(exc.problems[0], flags) + (f" (and {len(exc.problems) - 1} more)"
                                                                  if len(exc.problems) > 1 else "")) from None
    ids = [e.id for e in matrix.environments]
    targets = [Target(spec, ids[at], None if beside is None else ids[beside])
               for spec, (at, beside) in zip(question.targets, envs.targets)]
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
          ("models[0].reference", "--reference"), ("models[0].format", "--format"), ("models[0]", "--model"),
          ("models[1]", "the migration of --model"))


def in_flag_terms(problem: str, environments: dict[int, str]) -> str:
    """A matrix problem in terms of the command line."""
    problem = re.sub(r"environments\[(\d+)\]", lambda m: environments.get(int(m.group(1)), m.group(0)), problem)
    for key, flag in _FLAGS:
        problem = problem.replace(key, flag)
    return problem


def question_record(matrix: Matrix, question: CheckQuestion, targets: list[Target]) -> dict[str, Any]:
    """What run.json records of the check, for the report to answer it (harness/advisor/answer.py)."""
    from harness.advisor.question import current_route

    model = matrix.models[0]
    migrated = matrix.models[1] if len(matrix.models) > 1 else None
    home = matrix.environments[0].id
    route = current_route(model.artifact_format, question.model.format, model.code.factory is not None)
    return {"model": model.name, "source": next(iter(model.homes([home]))),
            "home": home, "route": list(route), "migrated": migrated.name if migrated else None,
            "targets": [{"spec": t.spec, "env": t.env, "tf_keras": t.tf_keras} for t in targets],
            **({"dependencies": question.dependencies} if question.dependencies else {})}


@dataclass(frozen=True)
class Answered:
    """A check's run, done: its matrix, report and run directory, and the screen that answers it."""

    matrix: Matrix
    report: dict[str, Any]
    run_dir: RunDir
    screen: str


def answer_question(question: CheckQuestion, settings: RunSettings, engine: RunEngine,
                    name: str = "check") -> Answered | int:
    """Run a check's matrix like `run` and compute its answer; the run's exit code when it could not be answered."""
    import yaml

    from harness.advisor.screens import check_screen
    from harness.agent.protocol import write_text_atomic
    from harness.rundir import RunDir, default_out

    matrix, data, targets = check_matrix(question, settings.base_image, name)
    if question.migrate is not None:
        from harness.advisor.handover import check_folder

        check_folder(question.migrate)
    forecast = first_answer(data, question, targets)
    if forecast and not settings.quiet:
        print("\n".join(forecast), flush=True)
    out = Path(settings.out or default_out(matrix.name))
    # The environment the file comes from answers the same for the same file, image and code every time: its
    # containers (the file's reference predictions, its migrated copies) run once per host; so do the saves.
    reuse = ReuseAsked(Reuse(cache_dir(os.environ) / "containers"), saves=True,
                       loads=frozenset({matrix.environments[0].id}))
    request = RunRequest(out=out, jobs=settings.jobs, limits=Limits(cell_timeout=settings.cell_timeout),
                         record={"check": question_record(matrix, question, targets)}, reuse=reuse)
    outcome = run_matrix(matrix, request, engine, Console(quiet=settings.quiet), os.environ)
    if outcome.exit_code not in (EXIT_OK, EXIT_FAILURES) or outcome.report is None:
        return outcome.exit_code
    write_text_atomic(out / f"{name}.yaml", yaml.safe_dump(data, sort_keys=False))
    return Answered(matrix, outcome.report, RunDir(out), check_screen(outcome.report, out))


def run_check(question: CheckQuestion, settings: RunSettings, engine: RunEngine) -> int:
    """Run the check's matrix like `run` and print its answer; 0 when the current route survives in every target."""
    from harness.advisor.handover import hand_over
    from harness.report.writers import write_check_json

    answered = answer_question(question, settings, engine)
    if isinstance(answered, int):
        return answered
    matrix, report, run_dir = answered.matrix, answered.report, answered.run_dir
    text = answered.screen
    if question.migrate is not None:
        handed = hand_over(question.migrate, report, run_dir=run_dir, model=matrix.models[0],
                           migrated=matrix.models[1] if len(matrix.models) > 1 else None)
        run_dir.write_run({**run_dir.read_run(), "handed": [h.entry() for h in handed]})
        write_check_json(run_dir, report)
        text += "\n" + "\n".join(handed_lines(handed, question.migrate)) + "\n"
    print(text, end="")
    return int(report["verdict"]["exit_code"])


def first_answer(data: dict[str, Any], question: CheckQuestion, targets: list[Target]) -> list[str]:
    """What the file says before any container starts: its route in each target as the table of what each release
    accepts predicts it (harness/inspection.py); UsageError at once for a file that is no model. [] for a factory."""
    from harness.agent.protocol import LOADERS
    from harness.inspection import (
        OUTCOME_WORDS,
        forecast,
        inspect_file,
        release_of,
        release_of_request,
        usual_loader,
    )

    entry = data["models"][0]
    if "artifact" not in entry:
        return []
    found = inspect_file(Path(entry["artifact"]))
    if found.format is None:
        raise UsageError(f"--model {entry['artifact']}: {found.findings.get('not_a_model')}")
    if found.findings.get("unread"):
        return [f"first answer: none from the file alone (its config could not be read: {found.findings['unread']})"]
    python = question.model.python
    # A side read from the project's files is named by its git ref, not by a SPEC: its release is the one read.
    read = list(question.environments[1:]) or [None] * len(targets)
    releases = [(t.spec, release_of_request(side, python)) if side is not None else release_of(t.spec, "--to", python)
                for t, side in zip(targets, read)]
    # The table knows what a release does with the file as it is, not with a copy an adapter edits for it.
    loaders = entry.get("loaders")
    plain = None if loaders is None else [x for x in loaders if not LOADERS[x].adapts]
    routes = forecast(found, releases, plain, custom_objects=question.model.custom_objects is not None,
                      evaluate=False)
    usual = usual_loader(found.format)
    lines = [f"first answer, from the file alone ({found.words()}; {found.seconds:.2f} s, no container yet):"]
    for target in targets:
        mine = [r for r in routes if r.target == target.spec]
        yours = next((r for r in mine if r.loader == usual), None)
        failing = [r for r in mine if r.outcome == "error"]
        said = "no usual loader" if yours is None else (f"{usual} FAILS: {yours.why}" if yours.outcome == "error"
                                                         else f"{usual} {OUTCOME_WORDS[yours.outcome]}")
        lines.append(f"  {target.spec}: {said}; {len(failing)} of {len(mine)} route(s) predicted to fail")
    lines.append("confirming in containers...")
    return lines


def handed_lines(handed: list[Handed], folder: Path) -> list[str]:
    """What --migrate wrote, one line per target (or why nothing was), and every edit of an adapted file."""
    if not handed:
        return [f"migrated: nothing written to {folder}: no migrated or adapted file predicts like the original in "
                "the target"]
    lines = []
    for h in handed:
        lines.append(f"migrated: {h.folder / h.file} (loads with {h.folder / 'load.py'}; {h.words})")
        lines += [f"  note: {h.note}"] if h.note else []
        lines += [f"  edited: {edit}" for edit in h.route.edits]
    return lines
