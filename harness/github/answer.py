"""What a check says on a pull request: one comment, the job summary, annotations and one SARIF log.

Everything here is rendered from what the check wrote: checks.json (which run directory answers for
which model) and each run directory's report.json `check` (the verdict per target, the route that
breaks, its cause and fix, the route to take, the dependency lines that moved). Nothing is decided
again: the exit code is the check's own, or with --fail-on unsafe only the verdicts that say no route
works, or with never none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.advisor.answer import SAFE, SAFE_ELSEWHERE, UNSAFE, UNTESTED
from harness.errors import UsageError
from harness.report.schema import load_report

FAIL_ON = ("breaks", "unsafe", "never")  # the check's own exit code; only no route working; comment only
GATED = {"breaks": (SAFE_ELSEWHERE, UNSAFE, UNTESTED), "unsafe": (UNSAFE, UNTESTED), "never": ()}
MARKER = "<!-- harness check: {project} -->"  # finds the comment to update (one per project folder)
WORDS = {SAFE: "✅ safe", SAFE_ELSEWHERE: "❌ breaks (another route works)", UNSAFE: "❌ breaks",
         UNTESTED: "⚠️ untested"}
MAX_COMMENT = 60000  # GitHub refuses comments over 65,536 characters

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Answer:
    """A check's run directories, read back: per model its report.json; the project's dependency record."""

    out: Path
    reports: tuple[tuple[str, Json], ...]  # (model, report.json)
    dependencies: Json | None
    unchanged: bool
    exit_code: int  # the check's, as checks.json or report.json give it

    @property
    def project(self) -> str:
        """The project folder from the repository's root ('.' at the root)."""
        return str((self.dependencies or {}).get("project") or ".")


def read_answer(out: Path) -> Answer:
    """The answer in `out`: a check of the project's models (checks.json), or one run directory (report.json)."""
    index_path = out / "checks.json"
    if index_path.is_file():
        index = json.loads(index_path.read_text(encoding="utf-8"))
        reports = tuple((m["model"], load_report(out / m["run_dir"] / "report.json")) for m in index["models"])
        return Answer(out=out, reports=reports, dependencies=index.get("dependencies"),
                      unchanged=bool(index.get("unchanged")), exit_code=int(index["exit_code"]))
    if not (out / "report.json").is_file():
        raise UsageError(f"{out}: no checks.json or report.json: run harness check --out {out} first")
    report = load_report(out / "report.json")
    if report.get("check") is None:
        raise UsageError(f"{out}: not a check's run directory (report.json has no check)")
    check = report["check"]
    return Answer(out=out, reports=((check["model"], report),), dependencies=check.get("dependencies"),
                  unchanged=False, exit_code=int(check["exit_code"]))


def exit_code(answer: Answer, fail_on: str) -> int:
    """0 or 1: the check's own exit code (breaks), or whether any target says no route works (unsafe), or 0."""
    if fail_on == "breaks":
        return answer.exit_code
    gated = GATED[fail_on]
    return int(any(t["verdict"] in gated for _, r in answer.reports for t in r["check"]["targets"]))


# ---------------------------------------------------------------------------- the comment and the summary


def _first_clause(text: str | None) -> str:
    """'safe_mode refuses TFSMLayer' of a hint: its words up to the first colon or semicolon."""
    return re.split(r"[:;]\s", text or "", maxsplit=1)[0].strip()


def _cause(target: Json) -> tuple[str, str]:
    """(cause name, fix) of a target that does not survive: its own route's, else the home cause's."""
    yours = tuple(target["route"])
    route = next((r for r in target["breaks"] if (r["format"], r["loader"]) == yours), None) or target.get("current")
    if target["verdict"] == UNTESTED:
        cause = target.get("home_cause") or {}
        return str(cause.get("name") or "untested"), str(cause.get("fix") or cause.get("detail") or "")
    if route is None:
        return "", ""
    return str(route.get("cause") or route.get("status") or ""), str(route.get("hint") or route.get("detail") or "")


def _row(model: str, target: Json) -> str:
    verdict = target["verdict"]
    cause, fix = ("", "") if verdict == SAFE else _cause(target)
    use = target.get("use")
    words = WORDS[verdict] + (f": {_first_clause(fix)}" if _first_clause(fix) else "")
    take = use["short"] + (" (yours)" if verdict == SAFE else "") if use else "none works"
    return f"| `{model}` | `{target['target']}` | {_cell(words)} | {_cell(cause) or '-'} | {_cell(take)} |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _moves(dependencies: Json | None) -> list[str]:
    if not dependencies:
        return []
    sides = dependencies.get("sides") or []
    lines = [f"from `{sides[0]['label']}` to `{sides[-1]['label']}`" if len(sides) > 1 else ""]
    for change in dependencies.get("changed") or []:
        where = f" ({change['file']}:{change['line']})" if change.get("file") and change.get("line") else ""
        lines.append(f"- `{change['package']}` {change.get('from') or '(none)'} → {change.get('to') or '(none)'}"
                     f"{where}")
    ignored = sorted({name for side in sides for name in side.get("ignored") or []})
    if ignored:
        lines.append(f"- not pinned in the check (they do not decide how a model loads): {', '.join(ignored[:12])}"
                     + (f" and {len(ignored) - 12} more" if len(ignored) > 12 else ""))
    return [line for line in lines if line]


def comment(answer: Answer, fail_on: str, *, details: str | None = None) -> str:
    """The pull request comment (and the job summary): a verdict per model and target, the causes and fixes, what
    moved; the exit code last."""
    code = exit_code(answer, fail_on)
    lines = [MARKER.format(project=answer.project)]
    if answer.unchanged:
        lines += ["### harness check: nothing to check", "",
                  "No package that decides how a model loads (TensorFlow, Keras, tf-keras, NumPy, h5py, protobuf, "
                  "Python) changed.", *_moves(answer.dependencies)]
    else:
        failing = sum(1 for _, r in answer.reports if r["check"]["exit_code"])
        title = (f"❌ {failing} of {len(answer.reports)} model(s) break" if failing
                 else f"✅ {len(answer.reports)} model(s) safe")
        lines += [f"### harness check: {title}", "", *_moves(answer.dependencies), "",
                  "| model | target | verdict | cause | route to take |", "|---|---|---|---|---|"]
        lines += [_row(model, t) for model, report in answer.reports for t in report["check"]["targets"]]
        fixes = _fixes(answer)
        if fixes:
            lines += ["", "<details><summary>causes and fixes</summary>", ""]
            lines += [f"- **{name}**: {fix}" for name, fix in fixes.items()]
            lines += ["", "</details>"]
    lines += ["", f"exit {code} (fail-on: {fail_on}; the check's own exit code: {answer.exit_code})"
              + (f" · {details}" if details else "")]
    text = "\n".join(lines) + "\n"
    return text if len(text) <= MAX_COMMENT else text[:MAX_COMMENT] + "\n\n(cut: see the job summary)\n"


def _fixes(answer: Answer) -> dict[str, str]:
    found: dict[str, str] = {}
    for _, report in answer.reports:
        for target in report["check"]["targets"]:
            if target["verdict"] != SAFE:
                name, fix = _cause(target)
                if name and fix:
                    found.setdefault(name, fix)
    return found


# ---------------------------------------------------------------------------- annotations and SARIF


def workflow_commands(answer: Answer, fail_on: str) -> list[str]:
    """One workflow command per failing model and target, on each dependency line that moved (else the log):
    ::error when the step fails for it, ::warning when --fail-on lets it pass."""
    level = "error" if exit_code(answer, fail_on) else "warning"
    changed = [c for c in (answer.dependencies or {}).get("changed") or [] if c.get("file")]
    found = []
    for model, report in answer.reports:
        for target in report["check"]["targets"]:
            if not target["exit_code"]:
                continue
            cause, fix = _cause(target)
            text = f"{model}: {target['verdict']} in {target['target']}" + (f" ({cause})" if cause else "") + (
                f": {fix}" if fix else "")
            title = f"harness: {model} {WORDS[target['verdict']].split(' ', 1)[1]}"
            places = [f"file={_escape(c['file'], True)}" + (f",line={c['line']}" if c.get("line") else "")
                      for c in changed] or [""]
            for place in places:
                props = ",".join(p for p in (place, f"title={_escape(title, True)}") if p)
                found.append(f"::{level} {props}::{_escape(text, False)}")
    return found


def _escape(text: str, property_value: bool) -> str:
    """Workflow command escaping (actions/toolkit: escapeData and escapeProperty)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def sarif(answer: Answer) -> str:
    """One SARIF log of every model's report.sarif (their results and rules merged into one run)."""
    from harness.report.sarif import merge, render_sarif

    return merge([json.loads(render_sarif(report)) for _, report in answer.reports])


def images(answer: Sequence[Json] | Answer) -> list[str]:
    """The image tags the check's environments ran in (what a CI cache keeps)."""
    reports = [r for _, r in answer.reports] if isinstance(answer, Answer) else list(answer)
    return sorted({str(e["image"]) for r in reports for e in r["environments"] if e.get("image")})
