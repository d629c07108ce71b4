"""What every surface of a run directory says, read back from the files: one answer, or the differences.

Used by unit tests (fake engine) and by the integration tests on every run and check they make: the
exit code in report.json, `harness report`'s exit code, JUnit's failures and errors, report.html's
banner, report.md's first line, check.json, and each path's verdict in report.md and report.html.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema

from harness.cli import main
from harness.report.gate import FAIL_ON
from harness.report.schema import load_report
from harness.report.statuses import FAILING


def exit_codes(run: Path) -> dict[str, int]:
    """Each surface's answer to 'does this run fail?', as 0 or 1."""
    report = load_report(run / "report.json")
    junit = ET.parse(run / "junit.xml").getroot()
    page = (run / "report.html").read_text(encoding="utf-8")
    first = next(line for line in (run / "report.md").read_text(encoding="utf-8").splitlines()
                 if line.startswith("**exit "))
    found = {"report.json": int(report["verdict"]["exit_code"]),
             "junit.xml": int(int(junit.get("failures", -1)) + int(junit.get("errors", -1)) > 0),
             "report.html": int('class="verdict bad"' in page), "report.md": int(not first.startswith("**exit 0")),
             "report.sarif": int(any(r["level"] == "error" for r in sarif(run)["runs"][0]["results"]))}
    if report.get("check") is not None:
        found["check.json"] = int(load_report(run / "report.json")["check"]["exit_code"])
    return found


SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "sarif-schema-2.1.0.json"


def sarif(run: Path) -> Any:
    """report.sarif, validated against the SARIF 2.1.0 schema (jsonschema.ValidationError when it is not)."""
    log = json.loads((run / "report.sarif").read_text(encoding="utf-8"))
    jsonschema.validate(log, json.loads(SARIF_SCHEMA.read_text(encoding="utf-8")))
    return log


def path_differences(run: Path) -> list[str]:
    """Paths whose verdict report.md or report.html states otherwise than report.json."""
    report = load_report(run / "report.json")
    markdown = (run / "report.md").read_text(encoding="utf-8")
    page = (run / "report.html").read_text(encoding="utf-8")
    problems = []
    for path in report["paths"]:
        if path["source"] == path["target"]:
            continue
        pair, verdict = f"`{path['source']}` → `{path['target']}`", path["verdict"]
        row = next((line for line in markdown.splitlines() if line.startswith(f"| {pair} |")), "")
        if f" {verdict} |" not in row:
            problems.append(f"report.md: {pair} is not {verdict}: {row!r}")
        cell = f"{html.escape(path['source'])} → {html.escape(path['target'])}</td>\n    <td><span class=\"badge v-"
        at = page.find(cell)
        if at < 0 or not page[at + len(cell):].startswith(f"{verdict}\">{verdict}</span>"):
            problems.append(f"report.html: {pair} is not {verdict}")
    return problems


def counted_cells(run: Path) -> tuple[set[str], set[str]]:
    """(the cells the gate counts against the run, the testcases JUnit marks failed or in error)."""
    report = load_report(run / "report.json")
    junit = ET.parse(run / "junit.xml").getroot()
    marked = {f"{case.get('classname')} {case.get('name')}" for case in junit.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None}
    return set(report["verdict"]["failing"]), marked


def assert_one_answer(run: Path) -> None:
    """Every surface of `run` gives the same answer, a later `harness report` exits with it, and JUnit fails
    exactly the cells and reasons the gate counts."""
    codes = exit_codes(run)
    assert len(set(codes.values())) == 1, codes
    assert path_differences(run) == []
    failing, marked = counted_cells(run)
    report = load_report(run / "report.json")
    assert len(marked) == len(failing) + len(report["verdict"]["reasons"]), (failing, marked)
    assert all(c["status"] in FAILING or c["status"] in ("skipped", "pass") for c in report["cells"]
               if f"{c['source']} -> {c['target']} {c['model']}/{c['format']}/{c['loader']}" in failing)
    gate = report["verdict"]["fail_on"]  # report's flags apply to one invocation: give it the same gate
    assert main(["report", str(run), *(["--fail-on", gate] if gate in FAIL_ON else [])]) == codes["report.json"]


def run_directories(root: Path) -> list[Path]:
    """Every run directory below `root` that holds a finished report."""
    found: list[Any] = sorted(p.parent for p in root.rglob("report.json") if (p.parent / "run.json").is_file())
    return found
