"""`check` over a project: its sides read from its own files (at git refs, or in the working tree), and every
model it declares, each checked like `check --model` in a run directory of its own.

A multi-model check writes checks.json beside the models' run directories: which run directory
answers for which model, and each one's verdict and exit code as its report.json says them. The
check's exit code is the worst of theirs; nothing here decides a verdict.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.advisor.deps import ProjectEnv
from harness.advisor.question import CheckQuestion, EnvRequest, ModelQuestion, RunSettings
from harness.errors import EXIT_FAILURES, EXIT_OK, UsageError
from harness.workflow import RunEngine

CHECKS_JSON = "checks.json"
CHECK_SARIF = "check.sarif"
CHECKS_SCHEMA = 1


@dataclass(frozen=True)
class ProjectCheck:
    """Where the sides and the models of a check come from: SPECs or the project's files, flags or its table."""

    folder: Path  # --project: where the dependency files and pyproject.toml are
    source: str | None = None  # --from SPEC
    targets: tuple[str, ...] = ()  # --to SPEC...
    from_ref: str | None = None
    to_ref: str | None = None
    model: ModelQuestion | None = None  # --model; None: every model the project declares
    python: str = "3.11"  # --python: the Python of a SPEC side, and the models' default
    tf_keras: bool = True
    migrate: Path | None = None


@dataclass(frozen=True)
class Side:
    """One side of the check: a SPEC, or what the project's files say."""

    label: str
    request: EnvRequest | None  # None: parse the SPEC in `label`
    project: ProjectEnv | None = None


def sides(ask: ProjectCheck) -> list[Side]:
    """The source, then each target; a side from files is read (at its ref, or in the working tree) now."""
    from harness.advisor import deps, files

    if ask.source is not None and ask.from_ref is not None:
        raise UsageError("--from and --from-ref: give one (a SPEC, or a git ref whose files say the environment)")
    if ask.targets and ask.to_ref is not None:
        raise UsageError("--to and --to-ref: give one")
    if ask.source is None and ask.from_ref is None:
        raise UsageError("give --from SPEC, or --from-ref REF to read the environment from the project's files")
    read: list[Side] = []
    if ask.from_ref is not None:
        env = deps.read_project(files.at_ref(ask.folder, ask.from_ref, "--from-ref"))
        read.append(Side(env.files.label, None, env))
    else:
        read.append(Side(str(ask.source), None))
    if ask.to_ref is not None or (not ask.targets and ask.from_ref is not None):
        tree = (files.at_ref(ask.folder, ask.to_ref, "--to-ref") if ask.to_ref is not None
                else files.working_tree(ask.folder))
        env = deps.read_project(tree)
        read.append(Side(env.files.label, None, env))
    elif ask.targets:
        read += [Side(spec, None) for spec in ask.targets]
    else:
        raise UsageError("give --to SPEC (or --to-ref REF, or --from-ref alone to compare with the working tree)")
    projects = [s.project for s in read if s.project is not None]
    named = iter(deps.requests(projects))
    return [dataclasses.replace(s, request=next(named)) if s.project is not None else s for s in read]


def questions(ask: ProjectCheck, found: Sequence[Side]) -> list[CheckQuestion]:
    """One question per model: the flags' model, or each one the project declares."""
    from harness.advisor import deps
    from harness.advisor.project import model_name, project_models

    models = [ask.model] if ask.model is not None else list(project_models(ask.folder, ask.python).models)
    projects = [s.project for s in found if s.project is not None]
    record = deps.record(projects) if projects else None
    return [CheckQuestion(source=found[0].label, targets=tuple(s.label for s in found[1:]), model=model,
                          tf_keras=ask.tf_keras, environments=tuple(s.request for s in found), dependencies=record,
                          migrate=ask.migrate if ask.migrate is None or ask.model is not None
                          else ask.migrate / model_name(model))  # each declared model hands over to its own folder
            for model in models]


def unchanged(found: Sequence[Side]) -> bool:
    """Whether every side comes from the project's files and they pin the same environment."""
    requests = [s.request for s in found]
    return all(s.project is not None for s in found) and len(set(requests)) == 1


def run_project_check(ask: ProjectCheck, settings: RunSettings, engine: RunEngine) -> int:
    """Check every model; one run directory each under --out when the project lists them; the worst exit code."""
    from harness.advisor import deps
    from harness.advisor.check import run_check
    from harness.advisor.project import model_name
    from harness.rundir import default_out

    found = sides(ask)
    for side in found:
        if side.project is not None:
            print("\n".join(deps.lines(side.project)))
    asked = questions(ask, found)
    if unchanged(found):
        print(f"nothing to check: {found[0].label} and {found[-1].label} pin the same environment for loading "
              f"models ({found[0].project.summary() if found[0].project else ''})")
        if settings.out is not None:
            _write_index(settings.out, found, [], asked)
        return EXIT_OK
    if ask.model is not None:
        return run_check(asked[0], settings, engine)
    out = Path(settings.out or default_out(f"check-{_slug(ask.folder.resolve().name)}"))
    codes: list[int] = []
    for question in asked:
        name = model_name(question.model)
        if len(asked) > 1:
            print(f"\n== {name}")
        code = run_check(question, dataclasses.replace(settings, out=out / name), engine)
        if code not in (EXIT_OK, EXIT_FAILURES):
            return code
        codes.append(code)
    index = _write_index(out, found, [model_name(q.model) for q in asked], asked)
    if len(asked) > 1:
        print("\n" + "\n".join(summary_table(index)))
    return max(codes)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "project"


def _write_index(out: Path, found: Sequence[Side], names: Sequence[str],
                 asked: Sequence[CheckQuestion]) -> dict[str, Any]:
    """checks.json: the models' run directories and what each one's report.json answers."""
    from harness.agent.protocol import write_json_atomic
    from harness.report.sarif import merge

    out.mkdir(parents=True, exist_ok=True)
    models = []
    for name in names:
        report = json.loads((out / name / "report.json").read_text(encoding="utf-8"))
        check = report["check"]
        models.append({"model": name, "run_dir": name, "verdict": check["verdict"], "exit_code": check["exit_code"],
                       "targets": [{"target": t["target"], "verdict": t["verdict"]} for t in check["targets"]]})
    index = {"schema_version": CHECKS_SCHEMA, "from": found[0].label, "to": [s.label for s in found[1:]],
             "dependencies": asked[0].dependencies if asked else None, "unchanged": not names,
             "models": models, "exit_code": max((m["exit_code"] for m in models), default=EXIT_OK)}
    write_json_atomic(out / CHECKS_JSON, index, strict=True)
    logs = [json.loads((out / name / "report.sarif").read_text(encoding="utf-8")) for name in names]
    (out / CHECK_SARIF).write_text(merge(logs), encoding="utf-8")  # every model's results, for one upload
    return index


def summary_table(index: dict[str, Any]) -> list[str]:
    """One line per model and target: its verdict, as its report says it; the exit code last."""
    rows = [(m["model"], t["target"], t["verdict"]) for m in index["models"] for t in m["targets"]]
    width = [max(len(r[i]) for r in [("model", "target", ""), *rows]) for i in range(2)]
    lines = [f"{'model':<{width[0]}}  {'target':<{width[1]}}  verdict"]
    lines += [f"{a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows]
    return [*lines, f"exit {index['exit_code']}"]
