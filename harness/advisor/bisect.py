"""`harness bisect`: which release between --from and --to broke your model's route, building only what it needs.

The releases come from the package index through the same settings as image builds (releases.py);
one run directory holds the search (search.py decides what to probe next); run.json and
report.json carry its answer under `bisect`.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.advisor.check import in_flag_terms
from harness.advisor.question import BisectQuestion, EnvRequest, RunSettings
from harness.advisor.search import ENDS, Bisection, budget, root_error, route_findings, search
from harness.console import Console
from harness.errors import EXIT_FAILURES, EXIT_OK, MatrixError, UsageError
from harness.matrix import Matrix, PipSettings
from harness.plan import Limits
from harness.untrusted import UnsafeFile
from harness.workflow import RunEngine, RunRequest, run_matrix


def _exact(spec: str | None, what: str, flag: str) -> str:
    """The exact release a spec pins ('2.16.2', '==2.16.2', 'keras==3.3.3'), else UsageError."""
    from packaging.version import InvalidVersion, Version

    text = (spec or "").removeprefix("==")
    try:
        if not text or any(c in text for c in "*<>=!~,"):
            raise InvalidVersion(text)
        return str(Version(text))
    except InvalidVersion:
        raise UsageError(f"{flag}: bisect needs an exact {what} release at each end (like 2.16.2), found "
                         f"{spec or 'none'}") from None


@dataclass(frozen=True)
class Walk:
    """The releases a bisection walks, and the environment of each (index 0: --from, the last: --to)."""

    axis: str
    package: str
    releases: tuple[str, ...]
    requests: tuple[EnvRequest, ...]
    skipped: tuple[str, ...] = ()
    index: str = ""


def _axis(question: BisectQuestion, source: EnvRequest, target: EnvRequest) -> str:
    if question.axis:
        return question.axis
    python = question.model.python
    return "keras" if source.key(python)[1] == target.key(python)[1] else "tensorflow"


def walk(question: BisectQuestion, environ: Mapping[str, str], index: Any = None) -> Walk:
    """The releases between the two ends, from the package index, and the environment of each."""
    from harness.advisor.question import parse_spec
    from harness.advisor.releases import listing
    from harness.images import effective_pip_settings
    from harness.wheelcache import PYPI, Upstream, redact

    source, target = parse_spec(question.source, "--from"), parse_spec(question.target, "--to")
    python = source.python or question.model.python
    if (target.python or question.model.python) != python:
        raise UsageError(f"--to: bisect keeps one Python; --from uses {python}, --to "
                         f"{target.python or question.model.python}")
    axis = _axis(question, source, target)
    pip = effective_pip_settings(PipSettings(), environ)
    upstream = index or Upstream(pip)
    if axis == "keras":
        if source.key(python)[1] != target.key(python)[1]:
            raise UsageError(f"--axis keras keeps TensorFlow fixed: --from has {source.tensorflow}, --to "
                             f"{target.tensorflow}")
        ends = [_exact((s.keras or "").removeprefix("keras"), "keras", f) for s, f in ((source, "--from"),
                                                                                        (target, "--to"))]
        found = listing(upstream, "keras", python, ends[0], ends[1], granularity=question.releases)
        requests = [EnvRequest(tensorflow=source.tensorflow, keras="==" + v, python=python) for v in found.releases]
    else:
        ends = [_exact(s.tensorflow, "TensorFlow", f) for s, f in ((source, "--from"), (target, "--to"))]
        found = listing(upstream, "tensorflow-cpu", python, ends[0], ends[1], granularity=question.releases)
        keras = source.keras if source.keras == target.keras else None
        requests = [EnvRequest(tensorflow="==" + v, keras=keras, python=python) for v in found.releases]
    if len(requests) < 2:
        raise UsageError(f"--to: the same {found.package} release as --from ({ends[0]}); nothing to bisect")
    # The ends are the environments asked for, as written; the releases between follow the axis.
    requests[0], requests[-1] = source, target
    return Walk(axis, found.package, found.releases, tuple(requests), found.skipped,
                redact(pip.index_url or PYPI))


def _ends(question: BisectQuestion) -> Walk:
    """The walk's two ends alone, as asked for: what the flags say before any release is listed."""
    from harness.advisor.question import parse_spec

    source, target = parse_spec(question.source, "--from"), parse_spec(question.target, "--to")
    python = question.model.python
    same = source.key(python) == target.key(python)
    return Walk(axis="", package="", releases=(question.source, *(() if same else (question.target,))),
                requests=(source, *(() if same else (target,))))


def bisect_matrix(question: BisectQuestion, steps: Walk, base_image: str | None) -> tuple[Matrix, list[str], str]:
    """The matrix of every release's environment (the model saved or staged once), their ids, and the model."""
    import yaml

    from harness.matrix import parse_matrix

    entry = question.model.entry()
    data = {"name": f"bisect-{entry['name']}",
            "environments": [r.entry(question.model.python) for r in steps.requests],
            "models": [entry]}
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        matrix = parse_matrix(data, path="bisect.yaml", sha256=hashlib.sha256(text.encode()).hexdigest(),
                              base_image=base_image)
    except MatrixError as exc:
        problem = exc.problems[0]
        for i, release in enumerate(steps.releases):
            problem = problem.replace(f"environments[{i}]", f"the {steps.axis} {release} environment")
        raise UsageError(in_flag_terms(problem, {})) from None
    return matrix, [e.id for e in matrix.environments], entry["name"]


@dataclass
class Prober:
    """Runs the workflow for some releases' environments in the bisect's run directory, and records what they say."""

    matrix: Matrix
    ids: list[str]
    request: RunRequest
    engine: RunEngine
    console: Console
    model: str
    source: str
    started: bool = False
    report: dict[str, Any] = field(default_factory=dict)

    def run(self, indices: list[int]) -> dict[str, Any]:
        """The report after the environments of these releases built, saved and loaded."""
        request = replace(self.request, resume=self.started, only=tuple(self.ids[i] for i in indices))
        outcome = run_matrix(self.matrix, request, self.engine, self.console, os.environ)
        self.started = True
        if outcome.exit_code not in (EXIT_OK, EXIT_FAILURES) or outcome.report is None:
            raise _Stopped(outcome.exit_code)
        self.report = outcome.report
        return outcome.report

    def cells(self, index: int) -> tuple[dict[tuple[str, str], dict[str, Any]], bool]:
        """The model's cells from its source in this release's environment, and whether its image built."""
        env = self.ids[index]
        status = next((e.get("status") for e in self.report["environments"] if e["id"] == env), None)
        from harness.rundir import RunDir

        # The report keeps a traceback's frames; the records keep its end, where a nested error names its root.
        try:
            records = RunDir(Path(self.request.out or ".")).read_loads(env)
        except UnsafeFile:  # its cells are errors in the report already
            records = []
        roots = {(r.get("format"), r.get("loader")): root_error(str((r.get("error") or {}).get("traceback") or ""))
                 for r in records
                 if r.get("kind") == "load" and r.get("model") == self.model and r.get("source") == self.source}
        found = {(c["format"], c["loader"]): {**c, "root": roots.get((c["format"], c["loader"]))}
                 for c in self.report["cells"]
                 if c["target"] == env and c["model"] == self.model and c["source"] == self.source}
        return found, status == "ok"


class _Stopped(Exception):
    """A probe's run ended without a report (interrupted, no engine): the bisect stops with its exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def run_bisect(question: BisectQuestion, settings: RunSettings, engine: RunEngine) -> int:
    """Search, then print the boundary of each route; 0 when your route works at --to, 1 when it breaks."""
    from harness.advisor.answer import answer_target
    from harness.advisor.question import current_route
    from harness.advisor.screens import bisect_screen
    from harness.rundir import default_out

    start = time.monotonic()
    ends = _ends(question)  # every flag is read, and the model's files checked, before the package index is asked
    current_route(bisect_matrix(question, ends, settings.base_image)[0].models[0].artifact_format,
                  question.model.format, question.model.factory is not None)
    steps = walk(question, os.environ)
    matrix, ids, name = bisect_matrix(question, steps, settings.base_image)
    model = matrix.models[0]
    route = current_route(model.artifact_format, question.model.format, model.code.factory is not None)
    out = Path(settings.out or default_out(matrix.name))
    source = next(iter(model.homes(ids)))  # where its routes come from: the first release, or the file itself
    console = Console(quiet=settings.quiet)
    prober = Prober(matrix, ids, RunRequest(out=out, jobs=settings.jobs,
                                            limits=Limits(cell_timeout=settings.cell_timeout)),
                    engine, console, name, source)
    bisection = Bisection(walk=steps.releases)
    last = len(ids) - 1

    def probe_all(indices: list[int]) -> None:
        prober.run(indices)
        for index in indices:
            bisection.record(index, *prober.cells(index))

    def probe(index: int) -> None:
        console.step(f"bisect: probing {steps.package} {steps.releases[index]} ({ids[index]})")
        probe_all([index])

    try:
        console.step(f"bisect: {len(ids)} releases of {steps.package} from {steps.releases[0]} to "
                     f"{steps.releases[-1]}; probing both ends")
        probe_all(sorted({0, last}))
        verdict = answer_target(prober.report, model=name, source=source, target=ids[-1], home=ids[0], route=route)
        routes = [(verdict.current, True)] + [((b.format, b.loader), False) for b in verdict.breaks
                                              if (b.format, b.loader) != verdict.current]
        if question.every:
            rest = [i for i in range(len(ids)) if i not in bisection.probed]
            if rest:
                probe_all(rest)
        limit = None if question.every else budget(len(ids))
        searches = search(bisection, routes if verdict.status != "untested" else [], probe,
                          None if limit is None else limit - ENDS)
    except _Stopped as stop:
        return stop.code
    result = _result(steps, bisection, searches, ids=ids, limit=limit, home_works=verdict.status != "untested",
                     seconds=time.monotonic() - start)
    _record(out, result)
    print(bisect_screen(result, prober.report, name=name, out=out), end="")
    yours = result["routes"][0] if result["routes"] else None
    at_to = dict(yours["history"]).get(result["to"]) if yours else None
    return EXIT_OK if at_to == "good" else EXIT_FAILURES  # your route works at --to (however the way there went)


def _result(steps: Walk, bisection: Any, searches: list[Any], *, ids: list[str], limit: int | None,
            home_works: bool, seconds: float) -> dict[str, Any]:
    """What report.json and run.json hold under `bisect`."""
    probed = list(dict.fromkeys(bisection.probed))
    return {
        "axis": steps.axis, "package": steps.package, "index": steps.index, "from": steps.releases[0],
        "to": steps.releases[-1], "releases": list(steps.releases), "skipped": list(steps.skipped),
        "environments": {steps.releases[i]: ids[i] for i in probed},
        "probed": [steps.releases[i] for i in probed],
        "unbuilt": [steps.releases[i] for i in sorted(bisection.unbuilt)],
        "budget": limit, "home_works": home_works, "routes": [route_findings(bisection, s) for s in searches],
        "seconds": round(seconds, 1),
    }


def _record(out: Path, result: dict[str, Any]) -> None:
    """The answer into run.json, then every report rebuilt with it."""
    from harness.report.writers import write_reports
    from harness.rundir import RunDir

    run_dir = RunDir(out)
    run_dir.write_run({**run_dir.read_run(), "bisect": result})
    write_reports(run_dir)
