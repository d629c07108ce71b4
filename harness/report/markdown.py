"""report.md (also the CI job summary): the upgrade paths and the causes first, then the details.

Rendered from report.json; nothing here decides anything.
"""

from __future__ import annotations

import re
from typing import Any

from harness.advisor import words
from harness.report import crater, summary
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


def _path_rows(report: dict[str, Any], paths: list[dict[str, Any]]) -> list[str]:
    lines = ["| from → to | verdict | what works | routes that break | top causes |", "|---|---|---|---|---|"]
    for p in paths:
        broken = f"{p['routes_breaks']} of {p['routes_breaks'] + p['routes_portable']}"
        causes = ", ".join(_code(c) for c in p["causes"][:3]) + (" …" if len(p["causes"]) > 3 else "")
        lines.append(f"| `{p['source']}` → `{p['target']}` | {_verdict(p['verdict'])} | "
                     f"{_escape(summary.formats_sentence(p))} | {broken} | {causes or '–'} |")
    return lines


def _caniuse(report: dict[str, Any], path: dict[str, Any]) -> list[str]:
    """One path's format x loader table: models that survive per route, causes as numbered notes."""
    fixes = {c["name"]: c.get("fix") for c in report["causes"]}
    table = summary.caniuse(path, fixes)
    if not table["rows"]:
        return []
    shade = {"all": "🟩", "some": "🟨", "none": "🟥"}
    lines = [f"### `{path['source']}` → `{path['target']}`: {path['verdict']}", "",
             f"{_escape(summary.formats_sentence(path))}.", "",
             "| format | " + " | ".join(_escape(x["words"]) for x in table["loaders"]) + " |",
             "|---|" + "---|" * len(table["loaders"])]
    for row in table["rows"]:
        cells = [("" if c is None else f"{shade[c['shade']]} {c['text']}" + "".join(f" [{n}]" for n in c["notes"])
                  + (" (target only)" if c["target_only"] else "")) for c in row["cells"]]
        lines.append(f"| {_escape(row['words'])} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"{n['n']}. {_code(n['cause'])}" + (f": {_escape(n['fix'])}" if n["fix"] else "") for n in table["notes"]]
    return [*lines, ""] if table["notes"] else lines


def _paths(report: dict[str, Any]) -> list[str]:
    """Upgrades first, each non-safe one with its table; downgrades (rollbacks) folded below."""
    ups, downs = summary.split_paths(report)
    lines = [*_path_rows(report, ups), ""]
    for path in summary.by_interest(report, [p for p in ups if p["verdict"] in ("partial", "broken")]):
        lines += _caniuse(report, path)
    if downs:
        lines += [f"<details><summary>Downgrades (rollbacks): {len(downs)} path(s)</summary>", "",
                  *_path_rows(report, downs), "", "</details>", ""]
    return lines


def _check(report: dict[str, Any]) -> list[str]:
    """A check run's answer, first: per target, the verdict and the route to take."""
    from harness.advisor.screens import targets_table

    check = report.get("check")
    if not check:
        return []
    lines = [f"## Check: `{check['model']}` from `{check['home']}`", "", "```", *targets_table(check["targets"]), "```",
             ""]
    for target in check["targets"]:
        cause = target.get("home_cause")
        if target["verdict"] == "untested" and cause:
            lines.append(f"- `{target['target']}`: does not load at home: `{cause.get('name')}`"
                         + (f"; fix: rerun with `{cause['flag']}`" if cause.get("flag") else "")
                         + (f" ({_escape(cause['fix'])})" if cause.get("fix") else ""))
    return [*lines, ""]


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
    """Routes that break (unexpected first), then other unexpected failures; cells that fail by design (at home too,
    hazard probes) are counted, not listed. Message and hint each on a full line."""
    failing = [c for c in report["cells"] if c["status"] in FAILING]
    shown = sorted((c for c in failing if c.get("route_status") == "breaks" or c.get("expected") is False),
                   key=lambda c: (bool(c.get("expected")), c.get("route_status") != "breaks"))
    by_design = len(failing) - len(shown)
    if not shown:
        return ["No route breaks." + (f" {by_design} cell(s) fail by design (at home too, or hazard probes): see "
                                      "report.html." if by_design else "")]
    lines = []
    for c in shown[:MAX_CELLS]:
        head = (f"- {SYMBOLS.get(c['status'], '')} **{c['status']}** ({c.get('route_status')}) `{c['source']}` → "
                f"`{c['target']}` {c['model']}/{c['format']}/{c['loader']}"
                + (f" — expected: {_escape(c['expectation'])}" if c.get("expected") else ""))
        err = c.get("error") or {}
        detail = f"{_code(err.get('type'))}: {_escape(err.get('message'))}" if err else _escape(c.get("reason"))
        lines += [head, f"  - {detail}"]
        hint = err.get("hint") or c.get("hint")
        if hint:
            lines.append(f"  - hint: {_escape(hint)}")
    if len(shown) > MAX_CELLS:
        lines.append(f"- … and {len(shown) - MAX_CELLS} more in report.json and report.html")
    if by_design:
        lines.append(f"- and {by_design} cell(s) that fail by design (at home too, or hazard probes): see report.html")
    return lines


def _regressions(report: dict[str, Any]) -> list[str]:
    regressions = report["verdict"]["regressions"]
    if not regressions:
        return []
    lines = ["## Regressions against the baseline", ""]
    for r in regressions:
        lines.append(f"- `{r['source']}` → `{r['target']}` {r['model']}/{r['format']}/{r['loader']}: "
                     f"{r['kind'].replace('_', ' ')}: {_escape(r['old'])} → {_escape(r['new'])}")
    return [*lines, ""]


def _releases(report: dict[str, Any]) -> list[str]:
    """What is new since the baseline: first, before the paths (report/releases.py)."""
    if not report.get("releases"):
        return []
    lines = ["## New since the baseline", "", *(f"- {_escape(line)}" for line in summary.release_lines(report))]
    for change in report["releases"]["changes"]:
        for kind, title in (("regressed", "newly broken"), ("fixed", "fixed"), ("spurious", "spurious")):
            entries = change[kind]
            if entries:
                lines += ["", f"{_escape(change['words'])}: {title}", ""]
                lines += [f"- `{e['source']}` → `{e['target']}` {e['model']}/{e['format']}/{e['loader']}: "
                          f"{e['old']} → {e['status']}" for e in entries[:MAX_CELLS]]
                lines += [f"- … and {len(entries) - MAX_CELLS} more"] if len(entries) > MAX_CELLS else []
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


def _corpus(report: dict[str, Any]) -> list[str]:
    """A corpus run's files x environments, crater-style, with their causes (harness/report/crater.py)."""
    section = report.get("corpus")
    if not section:
        return []
    return [f"## Corpus `{section['name']}`: real files, crater-style", "",
            crater.render_crater_markdown(section, _escape, summary.labels(report)), ""]


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report.md."""
    verdict = report["verdict"]
    counts = ", ".join(f"{n} {s}" for s, n in report["summary"]["counts"].items() if n)
    lines = [
        f"# Compatibility report: {report['matrix']['name']}",
        "",
        f"**exit {verdict['exit_code']}: {summary.outcome(verdict)}** ({summary.gate_words(verdict)}). "
        f"{_escape(summary.headline(report).split(': ', 1)[1].split(' · ')[0])}; "
        f"{report['summary']['total']} cells: {counts}.",
        "",
        "A route (model, format, loader) *breaks* on a path when it works where the model was saved and fails where "
        "it is loaded; routes that fail at home too never count against an upgrade.",
        "",
        *_isolation(report),
        *_releases(report),
        *_check(report),
        *_corpus(report),
        "## Upgrade paths",
        "",
        *_paths(report),
        "",
        *words.markdown(report, _escape),
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
        "## Routes that break (unexpected first)",
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
