"""`harness bisect`: which release between --from and --to broke your model's route, building only what it needs.

The releases come from the package index through the same settings as image builds; one run directory
holds the search (see harness/bisect.py); run.json and report.json carry its answer under `bisect`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.cli.check import add_model_arguments, add_run_arguments, in_flag_terms
from harness.cli.options import default_jobs
from harness.console import Console
from harness.errors import EXIT_FAILURES, EXIT_OK, MatrixError, UsageError
from harness.matrix import Matrix, PipSettings
from harness.plan import Limits
from harness.releases import GRANULARITIES
from harness.upgrade import EnvRequest
from harness.workflow import RunEngine, RunRequest, run_matrix

AXES = ("tensorflow", "keras")


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


def _axis(args: argparse.Namespace, source: EnvRequest, target: EnvRequest) -> str:
    if args.axis:
        return str(args.axis)
    return "keras" if source.key(args.python)[1] == target.key(args.python)[1] else "tensorflow"


def walk(args: argparse.Namespace, environ: dict[str, str], index: Any = None) -> Walk:
    """The releases between the two ends, from the package index, and the environment of each."""
    from harness.images import effective_pip_settings
    from harness.releases import listing
    from harness.upgrade import parse_spec
    from harness.wheelcache import PYPI, Upstream, redact

    source, target = parse_spec(args.source, "--from"), parse_spec(args.target, "--to")
    python = source.python or args.python
    if (target.python or args.python) != python:
        raise UsageError(f"--to: bisect keeps one Python; --from uses {python}, --to {target.python or args.python}")
    axis = _axis(args, source, target)
    pip = effective_pip_settings(PipSettings(), environ)
    upstream = index or Upstream(pip)
    if axis == "keras":
        if source.key(python)[1] != target.key(python)[1]:
            raise UsageError(f"--axis keras keeps TensorFlow fixed: --from has {source.tensorflow}, --to "
                             f"{target.tensorflow}")
        ends = [_exact((s.keras or "").removeprefix("keras"), "keras", f) for s, f in ((source, "--from"),
                                                                                        (target, "--to"))]
        found = listing(upstream, "keras", python, ends[0], ends[1], granularity=args.releases)
        requests = [EnvRequest(tensorflow=source.tensorflow, keras="==" + v, python=python) for v in found.releases]
    else:
        ends = [_exact(s.tensorflow, "TensorFlow", f) for s, f in ((source, "--from"), (target, "--to"))]
        found = listing(upstream, "tensorflow-cpu", python, ends[0], ends[1], granularity=args.releases)
        keras = source.keras if source.keras == target.keras else None
        requests = [EnvRequest(tensorflow="==" + v, keras=keras, python=python) for v in found.releases]
    if len(requests) < 2:
        raise UsageError(f"--to: the same {found.package} release as --from ({ends[0]}); nothing to bisect")
    # The ends are the environments asked for, as written; the releases between follow the axis.
    requests[0], requests[-1] = source, target
    return Walk(axis, found.package, found.releases, tuple(requests), found.skipped,
                redact(pip.index_url or PYPI))


def _ends(args: argparse.Namespace) -> Walk:
    """The walk's two ends alone, as asked for: what the flags say before any release is listed."""
    from harness.upgrade import parse_spec

    source, target = parse_spec(args.source, "--from"), parse_spec(args.target, "--to")
    same = source.key(args.python) == target.key(args.python)
    return Walk(axis="", package="", releases=(args.source, *(() if same else (args.target,))),
                requests=(source, *(() if same else (target,))))


def bisect_matrix(args: argparse.Namespace, steps: Walk) -> tuple[Matrix, list[str], str]:
    """The matrix of every release's environment (the model saved or staged once), their ids, and the model."""
    import yaml

    from harness.matrix import parse_matrix
    from harness.upgrade import add_routes, user_model_entry

    entry = user_model_entry(args.model, custom_objects=args.custom_objects, factory=args.factory,
                             inputs=args.inputs, reference=args.reference)
    add_routes(entry, args.format, unsafe=args.unsafe)
    data = {"name": f"bisect-{entry['name']}", "environments": [r.entry(args.python) for r in steps.requests],
            "models": [entry]}
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        matrix = parse_matrix(data, path="bisect.yaml", sha256=hashlib.sha256(text.encode()).hexdigest(),
                              base_image=args.base_image)
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
        from harness.bisect import root_error
        from harness.rundir import RunDir
        from harness.untrusted import UnsafeFile

        # The report keeps a traceback's frames; the records keep its end, where a nested error names its root.
        try:
            records = RunDir(Path(self.request.out or ".")).read_records("load", env)
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


def main(args: argparse.Namespace, engine: RunEngine) -> int:
    """Search, then print the boundary of each route; 0 when your route works at --to, 1 when it breaks."""
    from harness.agent.protocol import artifact_source
    from harness.bisect import ENDS, Bisection, budget, search
    from harness.rundir import default_out
    from harness.upgrade import route_of
    from harness.verdict import decide

    start = time.monotonic()
    ends = _ends(args)  # every flag is read, and the model's files checked, before the package index is asked
    route_of(bisect_matrix(args, ends)[0].models[0].artifact_format, args.format, args.factory is not None)
    steps = walk(args, dict(os.environ))
    matrix, ids, name = bisect_matrix(args, steps)
    model = matrix.models[0]
    route = route_of(model.artifact_format, args.format, model.code.factory is not None)
    out = Path(args.out or default_out(matrix.name))
    source = artifact_source(name) if model.kind == "artifact" else ids[0]
    console = Console(quiet=args.quiet)
    prober = Prober(matrix, ids, RunRequest(out=out, jobs=args.jobs or default_jobs(),
                                            limits=Limits(cell_timeout=args.cell_timeout)),
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
        verdict = decide(prober.report, model=name, source=source, target=ids[-1], home=ids[0], route=route)
        routes = [(verdict.current, True)] + [((b.format, b.loader), False) for b in verdict.breaks
                                              if (b.format, b.loader) != verdict.current]
        if args.every:
            rest = [i for i in range(len(ids)) if i not in bisection.probed]
            if rest:
                probe_all(rest)
        limit = None if args.every else budget(len(ids))
        searches = search(bisection, routes if verdict.status != "untested" else [], probe,
                          None if limit is None else limit - ENDS)
    except _Stopped as stop:
        return stop.code
    result = _result(steps, bisection, searches, ids=ids, limit=limit, home_works=verdict.status != "untested",
                     seconds=time.monotonic() - start)
    _record(out, result)
    print(_screen(result, prober.report, name=name, out=out), end="")
    yours = result["routes"][0] if result["routes"] else None
    at_to = dict(yours["history"]).get(result["to"]) if yours else None
    return EXIT_OK if at_to == "good" else EXIT_FAILURES  # your route works at --to (however the way there went)


def _result(steps: Walk, bisection: Any, searches: list[Any], *, ids: list[str], limit: int | None,
            home_works: bool, seconds: float) -> dict[str, Any]:
    """What report.json and run.json hold under `bisect`."""
    from harness.bisect import answer

    probed = list(dict.fromkeys(bisection.probed))
    return {
        "axis": steps.axis, "package": steps.package, "index": steps.index, "from": steps.releases[0],
        "to": steps.releases[-1], "releases": list(steps.releases), "skipped": list(steps.skipped),
        "environments": {steps.releases[i]: ids[i] for i in probed},
        "probed": [steps.releases[i] for i in probed],
        "unbuilt": [steps.releases[i] for i in sorted(bisection.unbuilt)],
        "budget": limit, "home_works": home_works, "routes": [answer(bisection, s) for s in searches],
        "seconds": round(seconds, 1),
    }


def _record(out: Path, result: dict[str, Any]) -> None:
    """The answer into run.json, then every report rebuilt with it."""
    from harness.report.writers import write_reports
    from harness.rundir import RunDir

    run_dir = RunDir(out)
    run_dir.write_run({**run_dir.read_run(), "bisect": result})
    write_reports(run_dir)


def _route_words(entry: dict[str, Any]) -> str:
    from harness.verdict import Route

    return Route(entry["format"], entry["loader"], "?").words()


def _boundary(entry: dict[str, Any], result: dict[str, Any]) -> list[str]:
    if entry["first_bad"] is None:
        last = entry["last_good"] or result["from"]
        return [f"  works at every probed release, {result['from']} to {last}"
                + ("" if last == result["to"] else f" ({result['to']} could not try it)")]
    lines = [f"  last good {entry['last_good']}, first bad {entry['first_bad']}"
             + ("" if entry["adjacent"] else " (releases between were not probed)")
             + (f": {entry['cause']}" if entry["cause"] else "")]
    if entry["error"]:
        detail = " ".join(str(entry["error"]).split())
        lines.append(f"      {detail[:150]}{'...' if len(detail) > 150 else ''}")
    if entry["root"]:
        lines.append(f"      at the root: {entry['root']}")
    if entry["hint"]:
        lines.append(f"      hint: {entry['hint']}")
    return lines


def _same_boundary(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in ("last_good", "first_bad", "cause", "history", "monotone", "note"))


def _screen(result: dict[str, Any], report: dict[str, Any], *, name: str, out: Path) -> str:
    """The answer on one screen: the walk, what was probed, each route's boundary and history."""
    model = next(m for m in report["models"] if m["name"] == name)
    lines = [f"model   {name}: {model['description']}",
             f"axis    {result['package']} {result['from']} -> {result['to']}: {len(result['releases'])} releases "
             f"({', '.join(result['releases'])}), listed by {result['index']}",
             f"probed  {len(result['probed'])} environment(s): {', '.join(result['probed'])}"
             + (f" (at most {result['budget']} per route)" if result["budget"] else " (every release)")]
    if result["unbuilt"]:
        lines.append(f"        did not build: {', '.join(result['unbuilt'])}")
    if not result["home_works"]:
        return "\n".join([*lines, "", f"UNTESTED: no route loads {name} with the same predictions at "
                                       f"{result['from']} itself", "", f"report: {out / 'report.html'}"]) + "\n"
    shown: list[dict[str, Any]] = []
    for entry in result["routes"]:
        same = next((s for s in shown if _same_boundary(s, entry)), None)
        if same is not None:  # the same boundary, cause and history as a route above: one line
            lines.append(f"  also breaks there: {_route_words(entry)}")
            continue
        shown.append(entry)
        lines += ["", ("your route  " if entry["yours"] else "also breaks ") + _route_words(entry)]
        lines += _boundary(entry, result)
        if not entry["monotone"]:
            lines.append("  NOT MONOTONE: the probed releases break and work again; the boundary shown is the first "
                         "one (--every probes them all)")
        elif entry["note"]:
            lines.append(f"  note: {entry['note']}")
        marks = {"good": "ok", "bad": "x", "unknown": "?", "unbuilt": "no image"}
        lines.append("  probed: " + " · ".join(f"{r} {marks[o]}" for r, o in entry["history"]))
    lines += ["", f"report: {out / 'report.html'}  ({result['seconds']:.0f} s)"]
    return "\n".join(lines) + "\n"
