"""junit.xml for CI test views: a testcase per route and path (a cell) that ran, rendered from report.json.

One testsuite per *target* environment rather than per (source, target) pair: the load, which is
the test, runs in the target, so each suite's <properties> describe the environment its tests ran
in, which is what JUnit consumers show them as; suites grow with the environments (n) rather than
the pairs (n²). Each testcase's classname names the pair with no dot in it (Jenkins and others
split a classname at its last dot into package and class): `py3_11-tf2_15_1 to py3_11-tf2_16_2`.

A cell is a failure (drift) or an error exactly when the report's gate counts it against the run
(`verdict.failing`); what fails the run without being a cell (an image that did not build, an
unfinished run, a check target nothing works at home for) is an error testcase of its own in a
`harness` suite. So failures + errors are zero exactly when the exit code is. Every other cell that
did not pass (a route that never works, a hazard probe, an expected failure, a route that breaks
under a gate that does not count it, unsupported or never run) is skipped with a one-line reason and no
traceback; skipped cells of one pair that share a reason are one testcase named by it ("expected error:
keras3-file-in-keras2", "14 route(s)"), so a CI view lists what passed and what failed cell by cell, and
what was left out once per reason (the default run's file stays small; report.html lists every cell).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from harness.report.causes import cell_label
from harness.report.statuses import NOT_RUN
from harness.report.summary import labels

PROPERTIES = ("python", "tensorflow", "keras", "keras_package", "keras_major", "image", "image_id", "status", "error")
MAX_FAILURE_MESSAGE = 500
# XML 1.0 cannot carry most control characters at all (not even escaped); tracebacks can hold them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _message(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= MAX_FAILURE_MESSAGE else first[: MAX_FAILURE_MESSAGE - 1] + "…"


def _details(cell: dict[str, Any], tracebacks: dict[str, str]) -> str:
    """Everything a reader of the CI log needs about one cell, as plain lines."""
    lines = [f"status: {cell['status']}", f"route: {cell.get('route_status')}", f"cause: {cell.get('cause')}"]
    lines += [f"{name}: {cell[name]}" for name in ("max_abs_diff", "max_rel_diff", "max_ulp", "bit_exact",
                                                   "argmax_agreement", "reason") if cell.get(name) is not None]
    lines += [f"hint: {cell['hint']}"] if cell.get("hint") else []
    error = cell.get("error") or {}
    if error:
        lines.append(f"error: {error.get('type')}: {error.get('message')}")
        lines += [f"hint: {error['hint']}"] if error.get("hint") else []
        if error.get("traceback"):
            lines += ["", tracebacks.get(str(error["traceback"]), str(error["traceback"]))]
    return "\n".join(lines)


def classname(source: str, target: str) -> str:
    """A testcase classname for a path (the environments' labels), without dots."""
    return f"{source} to {target}".replace(".", "_")


def _skip_reason(cell: dict[str, Any]) -> str:
    """Why a cell that did not pass does not count against the run: a few words (the whole reason, message and
    traceback are in the report, one click away)."""
    status, route = cell["status"], cell.get("route_status")
    if cell.get("expected"):
        return f"expected {status}: {cell.get('cause') or cell.get('expectation')}"
    if status in NOT_RUN:
        reason = str(cell.get("reason") or "")
        return str(status) + (f": {reason.split(' ', 1)[1]}" if " cannot " in reason else
                              f": {reason}" if reason else "")
    if route in ("never_works", "hazard"):
        return f"{route.replace('_', ' ')}: {cell.get('cause') or status}"
    return f"{status}, not counted ({route}): {cell.get('cause') or status}"


def _outcome(cell: dict[str, Any], failing: set[str]) -> tuple[str, str] | None:
    """(element, message) of a cell that did not simply pass: failure or error when the gate counts it, else
    skipped."""
    status, error = cell["status"], cell.get("error") or {}
    if cell_label(cell) not in failing:
        return None if status == "pass" else ("skipped", _skip_reason(cell))
    if status == "drift":
        return "failure", str(cell.get("reason") or "drift beyond tolerance")
    if status == "pass":  # counted all the same: a regression against the baseline
        return "failure", "regressed against the baseline"
    return "error", f"{error.get('type') or status}: {error.get('message') or cell.get('reason') or status}"


def _testcase(suite: ET.Element, cell: dict[str, Any], outcome: tuple[str, str] | None, tracebacks: dict[str, str],
              names: dict[str, str]) -> None:
    """A cell that passed, failed or is in error: a testcase of its own."""
    case = ET.SubElement(suite, "testcase", classname=classname(names.get(cell["source"], cell["source"]),
                                                                names.get(cell["target"], cell["target"])),
                         name=f"{cell['model']}/{cell['format']}/{cell['loader']}")
    if cell.get("seconds"):  # optional in JUnit
        case.set("time", f"{cell['seconds']:.2f}")
    if outcome is None:
        return
    tag, message = outcome
    element = ET.SubElement(case, tag, message=_text(_message(message)))
    element.set("type", _text(cell["status"] if tag == "failure" else (cell.get("error") or {}).get("type")
                              or cell["status"]))
    element.text = _text(_details(cell, tracebacks))


def _skipped_case(suite: ET.Element, pair: str, name: str, message: str) -> None:
    """Skipped cells of one pair that share a reason: one testcase named by the reason."""
    case = ET.SubElement(suite, "testcase", classname=pair, name=_text(_message(name)))
    ET.SubElement(case, "skipped", message=_text(_message(message)))


def _suite(parent: ET.Element, report: dict[str, Any], env: dict[str, Any], failing: set[str],
           names: dict[str, str]) -> dict[str, int]:
    cells = [c for c in report["cells"] if c["target"] == env["id"]]
    suite = ET.SubElement(parent, "testsuite", name=env["id"])
    properties = ET.SubElement(suite, "properties")
    for name in PROPERTIES:
        if env.get(name) is not None:
            ET.SubElement(properties, "property", name=name, value=_text(env[name]))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    skipped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in cells:
        pair = classname(names.get(cell["source"], cell["source"]), names.get(env["id"], env["id"]))
        if cell["status"] == "unsupported" and cell.get("stage") == "save":  # no file to load: the source's format
            skipped.setdefault((pair, "formats the source cannot write"), []).append(cell)
            continue
        outcome = _outcome(cell, failing)
        if outcome is not None and outcome[0] == "skipped":
            skipped.setdefault((pair, outcome[1]), []).append(cell)
            continue
        _testcase(suite, cell, outcome, report.get("tracebacks", {}), names)
        counts["tests"] += 1
        if outcome is not None:
            counts["failures" if outcome[0] == "failure" else "errors"] += 1
    for (pair, reason), group in skipped.items():
        if reason == "formats the source cannot write":
            formats = ", ".join(sorted({c["format"] for c in group}))
            _skipped_case(suite, pair, reason, f"unsupported: {len(group)} route(s) of {formats}")
        else:
            _skipped_case(suite, pair, reason, f"{reason}: {len(group)} route(s)")
        counts["tests"] += 1
        counts["skipped"] += 1
    seconds = sum(c.get("seconds") or 0 for c in cells)
    for key, value in {**counts, "time": f"{seconds:.3f}", "timestamp": report["created"]}.items():
        suite.set(key, str(value))
    return counts


def _reasons_suite(parent: ET.Element, report: dict[str, Any]) -> dict[str, int]:
    """What fails the run without being a cell: one error testcase each."""
    reasons = report["verdict"].get("reasons") or []
    suite = ET.SubElement(parent, "testsuite", name="harness")
    for reason in reasons:
        case = ET.SubElement(suite, "testcase", classname="harness", name=_text(_message(reason)), time="0.000")
        error = ET.SubElement(case, "error", message=_text(_message(reason)), type="run")
        error.text = _text(reason)
    counts = {"tests": len(reasons), "failures": 0, "errors": len(reasons), "skipped": 0}
    for key, value in {**counts, "time": "0.000", "timestamp": report["created"]}.items():
        suite.set(key, str(value))
    return counts


def render_junit(report: dict[str, Any]) -> str:
    """The whole junit.xml, deterministic for the same report."""
    root = ET.Element("testsuites", name=f"harness: {_text(report['matrix']['name'])}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failing = set(report["verdict"].get("failing") or [])
    names = labels(report)  # short and readable, as every view names environments; suites keep the full ids
    suites = [_suite(root, report, env, failing, names) for env in report["environments"]]
    if report["verdict"].get("reasons"):
        suites.append(_reasons_suite(root, report))
    for counts in suites:
        for key, value in counts.items():
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root, space="")  # one element a line; indentation would be a sixth of the file
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
