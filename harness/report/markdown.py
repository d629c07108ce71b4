"""report.md: the grid and the failures that matter, rendered from report.json."""

from __future__ import annotations

from typing import Any

from harness.report.statuses import FAILING, SYMBOLS

MAX_FAILURES = 50


def _escape(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _grid_cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return ""
    counts = ", ".join(f"{n} {s}" for s, n in entry["counts"].items())
    return f"{SYMBOLS.get(entry['worst'], '')} {entry['worst']} ({counts})"


def render_grid(report: dict[str, Any]) -> list[str]:
    """The source x target grid of worst statuses, as Markdown table lines."""
    ids = [e["id"] for e in report["environments"]]
    lines = ["| saved in \\ loaded in | " + " | ".join(f"`{i}`" for i in ids) + " |",
             "|---|" + "---|" * len(ids)]
    grid = report["summary"]["grid"]
    for source in ids:
        row = [_grid_cell(grid[source][target]) for target in ids]
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


def _failures(report: dict[str, Any]) -> list[str]:
    failing = [c for c in report["cells"] if c["status"] in FAILING]
    if not failing:
        return ["No failing cells."]
    lines = []
    for c in failing[:MAX_FAILURES]:
        head = f"- **{c['status']}** `{c['source']}` → `{c['target']}` {c['model']}/{c['format']}/{c['loader']}"
        err = c.get("error")
        if err:
            head += f": `{_escape(err['type'])}`: {_escape(err['message'])[:300]}"
        elif c.get("reason"):
            head += f": {_escape(c['reason'])}"
        if c.get("expected"):
            head += f" (expected: {_escape(c['expectation'])})"
        hint = (err or {}).get("hint") or c.get("hint")
        if hint:
            head += f"\n  - hint: {hint}"
        lines.append(head)
    if len(failing) > MAX_FAILURES:
        lines.append(f"- … and {len(failing) - MAX_FAILURES} more in report.json")
    return lines


def outcome(verdict: dict[str, Any]) -> str:
    """One phrase for the verdict: 'all cells as expected', or what broke it."""
    parts = []
    if verdict["unexpected"]:
        parts.append(f"{len(verdict['unexpected'])} unexpected failure(s)")
    if verdict["regressions"]:
        parts.append(f"{len(verdict['regressions'])} regression(s)")
    return ", ".join(parts) or "all cells as expected"


def _regressions(report: dict[str, Any]) -> list[str]:
    regressions = report["verdict"]["regressions"]
    if not regressions:
        return []
    lines = ["## Regressions against the baseline", ""]
    for r in regressions:
        lines.append(f"- `{r['source']}` → `{r['target']}` {r['model']}/{r['format']}/{r['loader']}: "
                     f"{r['kind'].replace('_', ' ')}: {_escape(r['old'])} → {_escape(r['new'])}")
    return [*lines, ""]


def _unused(report: dict[str, Any]) -> list[str]:
    unused = report["verdict"]["unused_expectations"]
    if not unused:
        return []
    lines = ["## Expectations that matched no cell", ""]
    lines += [f"- `expect[{u['index']}]`: {_escape(u['reason'])}" for u in unused]
    return [*lines, ""]


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report.md."""
    verdict = report["verdict"]
    counts = ", ".join(f"{n} {s}" for s, n in report["summary"]["counts"].items() if n)
    expected = sum(1 for c in report["cells"] if c.get("expected"))
    lines = [
        f"# Compatibility report: {report['matrix']['name']}",
        "",
        f"**{outcome(verdict)}** (exit {verdict['exit_code']}). {report['summary']['total']} cells: {counts}"
        + (f"; {expected} expected failure(s)." if expected else "."),
        f"Rows: the environment that saved the model; columns: the one that loaded it. "
        f"Tolerance rtol={report['tolerance']['rtol']:g}, atol={report['tolerance']['atol']:g}.",
        "",
        *render_grid(report),
        "",
        *_regressions(report),
        "## Environments",
        "",
        *_environments(report),
        "",
        "## Failures",
        "",
        *_failures(report),
        "",
        *_unused(report),
        f"<sub>harness {report['harness_version']}, report schema {report['schema_version']}, "
        f"created {report['created']}</sub>",
        "",
    ]
    return "\n".join(lines)
