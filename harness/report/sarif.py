"""report.sarif: the report as SARIF 2.1.0, for code scanning (GitHub, GitLab, Azure DevOps) and editors.

Rendered from report.json alone, like every other view: one result per breaking route, `ruleId`
its cause (the hint rule's name, else the error type), the fix as the rule's help text. A result
that decides the exit code is an `error`; a route that breaks without deciding it (another route
of a check whose own route survives, an expected break) is a `note`. So the SARIF has an error
exactly when the exit code is 1. Its location is the dependency line that moved the environment
(a check from the project's files), else the model file, else the matrix file; related locations
name the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.agent.protocol import artifact_source
from harness.matrix.problems import project_root
from harness.report.causes import cell_id

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
ROOT = "%SRCROOT%"  # the repository checkout: every location is relative to it when it can be
RUN_PROBLEM = "run-problem"  # a reason the run fails that is no route: an image that did not build, an unfinished run
UNTESTED = "untested"  # a check whose route does not work at home: nothing to compare

Json = Mapping[str, Any]


def render_sarif(report: Json, run_dir: Path | None = None) -> str:
    """The SARIF log of a report (a check's answer, or a run's failing and breaking cells)."""
    rules: dict[str, dict[str, Any]] = {}
    results = _check_results(report, rules) if report.get("check") else _run_results(report, rules)
    results += _reasons(report, rules)
    ids = list(rules)
    for result in results:
        result["ruleIndex"] = ids.index(result["ruleId"])
    log = {"$schema": SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "harness", "version": __version__,
                            "rules": list(rules.values())}},
        "automationDetails": {"id": f"harness/{report['matrix']['name']}/"},
        "invocations": [{"executionSuccessful": True, "exitCode": int(report["verdict"]["exit_code"])}],
        "results": results,
        "properties": {"verdict": report["verdict"].get("fail_on"), "exit_code": report["verdict"]["exit_code"],
                       **({"run_dir": str(run_dir)} if run_dir is not None else {})},
    }]}
    return json.dumps(log, indent=1, sort_keys=False) + "\n"


def _rule(rules: dict[str, dict[str, Any]], report: Json, name: str, fallback: str | None) -> str:
    """The rule of a cause, added once: the cause's fix (report.json causes[]) as its help text."""
    if name not in rules:
        cause: Json = next((c for c in report.get("causes") or [] if c["name"] == name), {})
        fix = cause.get("fix") or fallback or "no known fix: see the error in the report"
        rules[name] = {"id": name, "name": "".join(w.capitalize() for w in name.replace("_", "-").split("-"))[:100]
                       or "Unknown",
                       "shortDescription": {"text": _first_sentence(fix)},
                       "help": {"text": fix, "markdown": fix},
                       "defaultConfiguration": {"level": "error"},
                       "properties": {"tags": ["compatibility", "keras"]}}
    return name


def _first_sentence(text: str) -> str:
    head = text.split(": ", 1)[0]
    return head[:200] if head else text[:200]


# ---------------------------------------------------------------------------- a check


def _check_results(report: Json, rules: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    check = report["check"]
    where = _locations(report, check.get("model"), check.get("dependencies"))
    results = []
    for target in check["targets"]:
        yours = tuple(target["route"])
        if target["exit_code"] and target["verdict"] != UNTESTED and not any(
                (r["format"], r["loader"]) == yours for r in target["breaks"]):
            route = target.get("current") or {}  # the route fails there without being a break (unsupported)
            name = _rule(rules, report, str(route.get("cause") or route.get("status") or "breaks"), route.get("hint"))
            results.append(_result(name, "error", f"{check['model']}: {yours[0]}/{yours[1]} does not survive in "
                                   f"{target['target']}: {route.get('detail') or route.get('status') or 'not run'}",
                                   where, (check["model"], target["target"], *yours)))
        if target["verdict"] == UNTESTED:
            cause = target.get("home_cause") or {}
            name = _rule(rules, report, str(cause.get("name") or UNTESTED), cause.get("fix"))
            text = (f"{check['model']}: untested: its route {yours[0]}/{yours[1]} does not work in {check['home']} "
                    f"itself ({cause.get('detail') or cause.get('status')})")
            results.append(_result(name, "error", text, where, (check["model"], target["target"], *yours)))
        for route in target["breaks"]:
            mine = (route["format"], route["loader"]) == yours and target["exit_code"]
            name = _rule(rules, report, str(route.get("cause") or "breaks"), route.get("hint"))
            use = target.get("use")
            text = (f"{check['model']}: {route['words']} breaks in {target['target']}"
                    + (f" ({target['spec']})" if target.get("spec") else "")
                    + f": {route.get('detail') or route['status']}"
                    + (f". Fix: {route['hint']}" if route.get("hint") else "")
                    + (f". What works: {use['words']}" if mine and use else ""))
            results.append(_result(name, "error" if mine else "note", text, where,
                                   (check["model"], target["target"], route["format"], route["loader"])))
    return results


def _locations(report: Json, model: str | None, dependencies: Json | None) -> list[dict[str, Any]]:
    """Where a model's results point: the dependency lines that changed, the model file, the matrix file."""
    found: list[dict[str, Any]] = []
    for change in (dependencies or {}).get("changed") or []:
        if change.get("file"):
            found.append(_location(change["file"], change.get("line"),
                                   f"{change['package']} {change.get('from') or '(none)'} -> "
                                   f"{change.get('to') or '(none)'}"))
    env = next((e for e in report["environments"] if model and e["id"] == artifact_source(model)), None)
    artifact = ((env or {}).get("spec") or {}).get("artifact")
    if artifact:
        found.append(_file_location(Path(artifact), f"the model {model}"))
    matrix = Path(str(report["matrix"].get("path") or ""))
    if not found and matrix.is_file():
        found.append(_file_location(matrix, "the matrix"))
    return found


def _file_location(path: Path, words: str) -> dict[str, Any]:
    """A host file, relative to its repository's root when it is in one."""
    path = path.resolve()
    root = project_root(path.parent)
    if (root / ".git").exists() and path.is_relative_to(root):
        return _location(path.relative_to(root).as_posix(), None, words)
    return {"physicalLocation": {"artifactLocation": {"uri": path.as_uri()}}, "message": {"text": words}}


def _location(uri: str, line: int | None, words: str) -> dict[str, Any]:
    place: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": ROOT}}
    if line:
        place["region"] = {"startLine": int(line)}
    return {"physicalLocation": place, "message": {"text": words}}


def _result(rule: str, level: str, text: str, where: Sequence[dict[str, Any]], key: Sequence[str]) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": rule, "level": level, "message": {"text": text},
                              "partialFingerprints": {"harness/route/v1": hashlib.sha256(
                                  "\0".join([rule, *key]).encode()).hexdigest()[:32]}}
    if where:
        result["locations"] = [where[0]]
        if len(where) > 1:
            result["relatedLocations"] = [{**w, "id": i} for i, w in enumerate(where[1:], start=1)]
    return result


# ---------------------------------------------------------------------------- a matrix run


def _run_results(report: Json, rules: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    failing = set(report["verdict"].get("failing") or [])
    results = []
    for cell in report["cells"]:
        counted = cell_id(cell) in failing
        if cell.get("route_status") != "breaks" and not counted:
            continue
        error = cell.get("error") or {}
        name = _rule(rules, report, str(cell.get("cause") or error.get("type") or cell["status"]),
                     error.get("hint") or cell.get("hint"))
        detail = f"{error.get('type')}: {error.get('message')}" if error else cell.get("reason") or cell["status"]
        text = (f"{cell['model']} {cell['format']}/{cell['loader']} breaks from {cell['source']} to "
                f"{cell['target']}: {detail}" + (" (expected)" if cell.get("expected") else ""))
        results.append(_result(name, "error" if counted else "note", text, _locations(report, cell["model"], None),
                               (cell["source"], cell["target"], cell["model"], cell["format"], cell["loader"])))
    return results


def _reasons(report: Json, rules: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The reasons the run fails that no route carries (a check's untested target is a result of its own)."""
    check = report.get("check") or {}
    covered = [t["target"] + ":" for t in check.get("targets", [])]
    found = []
    for reason in report["verdict"].get("reasons") or []:
        if any(reason.startswith(prefix) for prefix in covered):
            continue
        name = _rule(rules, report, RUN_PROBLEM, "the run did not complete: see the reason, fix it and run again")
        found.append(_result(name, "error", str(reason), _locations(report, check.get("model"),
                                                                     check.get("dependencies")), (reason,)))
    return found


def merge(logs: Sequence[Json]) -> str:
    """Several reports' SARIF logs as one run (code scanning takes one run per tool and category): their rules
    once each, every result with its rule's new index, the worst exit code."""
    if not logs:
        return render_empty()
    run = json.loads(json.dumps(logs[0]["runs"][0]))
    rules: dict[str, Any] = {}
    results: list[dict[str, Any]] = []
    for log in logs:
        for rule in log["runs"][0]["tool"]["driver"]["rules"]:
            rules.setdefault(rule["id"], rule)
        results += log["runs"][0]["results"]
    ids = list(rules)
    for result in results:
        result["ruleIndex"] = ids.index(result["ruleId"])
    exit_code = max(int(log["runs"][0]["invocations"][0]["exitCode"]) for log in logs)
    run["tool"]["driver"]["rules"] = list(rules.values())
    run["results"] = results
    run["invocations"] = [{"executionSuccessful": True, "exitCode": exit_code}]
    run["properties"] = {"exit_code": exit_code}
    return json.dumps({**logs[0], "runs": [run]}, indent=1) + "\n"


def render_empty() -> str:
    """A SARIF log with no result: nothing was checked (no dependency that decides loading changed)."""
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "harness", "version": __version__, "rules": []}},
        "automationDetails": {"id": "harness/check/"}, "results": [],
        "invocations": [{"executionSuccessful": True, "exitCode": 0}]}]}, indent=1) + "\n"
