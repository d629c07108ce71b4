"""report.md (also the CI job summary): the upgrade paths and the causes first, then the details.

Rendered from report.json; nothing here decides anything.
"""

from __future__ import annotations

import re
from typing import Any

from harness.report import advice, summary
from harness.report.statuses import FAILING, SYMBOLS

MAX_CELLS = 40  # failing cells listed in full; every one is in report.json and report.html


# Characters that can start Markdown in the middle of a line: emphasis, a link or an image (one fetched from
# anywhere when the job summary is shown), a code span, raw HTML (an unclosed <!-- hides the rest of the
# report), an entity, a table cell's end. Error messages quote files and code: each is shown as written.
_ACTIVE = re.compile(r"([\\`*_\[\]<>!|~&#])")


def _escape(text: object) -> str:
    """Text from a run (an error message, a cause, a reason) shown literally in Markdown, on one line."""
    return _ACTIVE.sub(r"\\\1", " ".join(str(text).splitlines()))


def _code(text: object) -> str:
    """Text from a run as an inline code span: a backtick would end it early (escapes do not work inside), so it is
    shown as a quote; a table cell's '|' is escaped, which a table reads before the span."""
    return "`" + " ".join(str(text).splitlines()).replace("`", "'").replace("|", "\\|") + "`"


def _verdict(verdict: str) -> str:
    return f"{summary.VERDICT_SYMBOLS.get(verdict, '')} {verdict}"


def _paths(report: dict[str, Any]) -> list[str]:
    lines = ["| from → to | verdict | routes that break | top causes | what still works |", "|---|---|---|---|---|"]
    for p in summary.upgrade_paths(report):
        broken = f"{p['routes_breaks']} of {p['routes_breaks'] + p['routes_portable']}"
        causes = ", ".join(_code(c) for c in p["causes"][:3]) + (" …" if len(p["causes"]) > 3 else "")
        works = summary.works_words(p, limit=1) if p["verdict"] != "safe" else "every route"
        lines.append(f"| `{p['source']}` → `{p['target']}` | {_verdict(p['verdict'])} | {broken} | {causes or '–'} "
                     f"| {_escape(works)} |")
    return lines


def _causes(report: dict[str, Any]) -> list[str]:
    causes = report["causes"]
    if not causes:
        return ["No failing cells."]
    lines = ["| cause | cells | break (unexpected) | never work | pairs | fix |", "|---|---|---|---|---|---|"]
    for c in causes:  # unexpected breaks first: report.json keeps them in that order
        lines.append(f"| {_code(c['name'])} | {c['cells']} | {c['breaks']} ({c['breaks_unexpected']}) | "
                     f"{c['never_works']} | {len(c['pairs'])} | {_escape(c.get('fix') or c.get('message'))} |")
    return lines


def _home(report: dict[str, Any]) -> list[str]:
    ids = {e["id"]: f"`{e['id']}`" for e in report["environments"]}
    lines = [f"- {line}" for line in summary.at_home(report, ids)]
    lines += [f"- hazard: {summary.hazard_words(h, ids)}" + (f" — {h['hint']}" if h.get("hint") else "")
              for h in report.get("hazards", [])]
    return lines


def render_grid(report: dict[str, Any]) -> list[str]:
    """The source x target grid of path verdicts, as Markdown table lines (the diagonal: each environment's home)."""
    ids = [e["id"] for e in report["environments"]]
    targets = [i for i in ids if any(c["target"] == i for c in report["cells"])]
    verdicts = {(p["source"], p["target"]): p for p in report["paths"]}
    lines = ["| saved in \\ loaded in | " + " | ".join(f"`{i}`" for i in targets) + " |",
             "|---|" + "---|" * len(targets)]
    for source in ids:
        row = []
        for target in targets:
            p = verdicts.get((source, target))
            if p is None:
                row.append("")
            elif source == target:
                row.append(f"home: {p['routes_portable']} work, {p['routes_never_works']} never")
            else:
                row.append(_verdict(p["verdict"]) + (f" {summary.broken_of(p)}" if p["routes_breaks"] else ""))
        lines.append(f"| `{source}` | " + " | ".join(row) + " |")
    return lines


def _environments(report: dict[str, Any]) -> list[str]:
    lines = ["| environment | Python | TensorFlow | Keras | image | status |", "|---|---|---|---|---|---|"]
    for e in report["environments"]:
        keras = f"{e['keras']} ({e['keras_package']})" if e.get("keras_package") else (e.get("keras") or "bundled")
        status = e["status"] if not e.get("error") else f"{e['status']}: {_escape(e['error'])}"
        python, tensorflow = e["python"] or "unknown", e["tensorflow"] or "unknown"
        lines.append(f"| `{e['id']}` | {python} | {tensorflow} | {keras} | `{e.get('image') or ''}` | {status} |")
    return lines


def _failing_cells(report: dict[str, Any]) -> list[str]:
    """Unexpected breaks first, then other failures; message and hint each on a full line."""
    order = {"breaks": 0, "never_works": 1, "hazard": 2}
    failing = sorted((c for c in report["cells"] if c["status"] in FAILING),
                     key=lambda c: (bool(c.get("expected")), order.get(c.get("route_status") or "", 3)))
    if not failing:
        return ["No failing cells."]
    lines = []
    for c in failing[:MAX_CELLS]:
        head = (f"- {SYMBOLS.get(c['status'], '')} **{c['status']}** ({c.get('route_status')}) `{c['source']}` → "
                f"`{c['target']}` {c['model']}/{c['format']}/{c['loader']}"
                + (f" — expected: {_escape(c['expectation'])}" if c.get("expected") else ""))
        err = c.get("error") or {}
        detail = f"{_code(err.get('type'))}: {_escape(err.get('message'))}" if err else _escape(c.get("reason"))
        lines += [head, f"  - {detail}"]
        hint = err.get("hint") or c.get("hint")
        if hint:
            lines.append(f"  - hint: {_escape(hint)}")
    if len(failing) > MAX_CELLS:
        lines.append(f"- … and {len(failing) - MAX_CELLS} more in report.json and report.html")
    return lines


def outcome(verdict: dict[str, Any]) -> str:
    """One phrase for the verdict: 'all as expected', or what broke it."""
    parts = []
    if verdict["unexpected"]:
        parts.append(f"{len(verdict['unexpected'])} unexpected")
    if verdict["regressions"]:
        parts.append(f"{len(verdict['regressions'])} regression(s)")
    return ", ".join(parts) or "nothing new breaks"


def _regressions(report: dict[str, Any]) -> list[str]:
    regressions = report["verdict"]["regressions"]
    if not regressions:
        return []
    lines = ["## Regressions against the baseline", ""]
    for r in regressions:
        lines.append(f"- `{r['source']}` → `{r['target']}` {r['model']}/{r['format']}/{r['loader']}: "
                     f"{r['kind'].replace('_', ' ')}: {_escape(r['old'])} → {_escape(r['new'])}")
    return [*lines, ""]


def _unexpected(report: dict[str, Any]) -> list[str]:
    unexpected = report["verdict"]["unexpected"]
    if not unexpected:
        return []
    return ["## What fails the run", "", *(f"- {_escape(u)}" for u in unexpected[:MAX_CELLS]),
            *([f"- … and {len(unexpected) - MAX_CELLS} more"] if len(unexpected) > MAX_CELLS else []), ""]


def _unused(report: dict[str, Any]) -> list[str]:
    unused = report["verdict"]["unused_expectations"]
    if not unused:
        return []
    lines = ["## Expectations that matched no cell", ""]
    lines += [f"- `expect[{u['index']}]`: {_escape(u['reason'])}" for u in unused]
    return [*lines, ""]


def _isolation(report: dict[str, Any]) -> list[str]:
    """What the load phase's isolation level promises, and what it does not (run --isolation)."""
    isolation = report.get("isolation")
    return [f"Isolation `{isolation['level']}`: {_escape(isolation['promise'])}.", ""] if isolation else []


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report.md."""
    verdict = report["verdict"]
    counts = ", ".join(f"{n} {s}" for s, n in report["summary"]["counts"].items() if n)
    lines = [
        f"# Compatibility report: {report['matrix']['name']}",
        "",
        f"**exit {verdict['exit_code']}: {outcome(verdict)}** (fail on {verdict.get('fail_on', 'breaks')}). "
        f"{_escape(summary.headline(report).split(': ', 1)[1].split(' · ')[0])}; "
        f"{report['summary']['total']} cells: {counts}.",
        "",
        "A route (model, format, loader) *breaks* on a path when it works where the model was saved and fails where "
        "it is loaded; routes that fail at home too never count against an upgrade.",
        "",
        *_isolation(report),
        "## Upgrade paths",
        "",
        *_paths(report),
        "",
        *advice.markdown(report, _escape),
        "## Causes",
        "",
        *_causes(report),
        "",
        *_unexpected(report),
        *_regressions(report),
        "## At home and hazards",
        "",
        *_home(report),
        "",
        "## Grid (rows saved in, columns loaded in)",
        "",
        *render_grid(report),
        "",
        "## Environments",
        "",
        *_environments(report),
        "",
        "## Failing cells (unexpected breaks first)",
        "",
        *_failing_cells(report),
        "",
        *_unused(report),
        f"<sub>harness {report['harness_version']}, report schema {report['schema_version']}, "
        f"created {report['created']}, tolerance rtol={report['tolerance']['rtol']:g} "
        f"atol={report['tolerance']['atol']:g}</sub>",
        "",
    ]
    return "\n".join(lines)
