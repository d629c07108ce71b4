"""report.md: the grid and the failures that matter, rendered from report.json."""

from __future__ import annotations

from typing import Any

MAX_FAILURES = 50
SYMBOLS = {"pass": "✅", "unsupported": "➖", "skipped": "⏭️", "drift": "⚠️", "error": "❌", "timeout": "⏱️",
           "crash": "💥"}


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
        lines.append(f"| `{e['id']}` | {e['python']} | {e['tensorflow']} | {keras} | `{e.get('image') or ''}` "
                     f"| {status} |")
    return lines


def _failures(report: dict[str, Any]) -> list[str]:
    failing = [c for c in report["cells"] if c["status"] in ("drift", "error", "timeout", "crash")]
    if not failing:
        return ["No failing cells."]
    lines = []
    for c in failing[:MAX_FAILURES]:
        head = f"- **{c['status']}** `{c['source']}` → `{c['target']}` {c['model']}/{c['format']}/{c['loader']}"
        err = c.get("error")
        if err:
            head += f": `{_escape(err['type'])}`: {_escape(err['message'])[:300]}"
            if err.get("hint"):
                head += f"\n  - hint: {err['hint']}"
        elif c.get("reason"):
            head += f": {_escape(c['reason'])}"
        if c.get("expected"):
            head += " (expected)"
        lines.append(head)
    if len(failing) > MAX_FAILURES:
        lines.append(f"- … and {len(failing) - MAX_FAILURES} more in report.json")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report.md."""
    verdict = report["verdict"]
    counts = ", ".join(f"{n} {s}" for s, n in report["summary"]["counts"].items() if n)
    outcome = ("all cells as expected" if verdict["exit_code"] == 0
               else f"{len(verdict['unexpected'])} unexpected failure(s)")
    lines = [
        f"# Compatibility report: {report['matrix']['name']}",
        "",
        f"**{outcome}** (exit {verdict['exit_code']}). {report['summary']['total']} cells: {counts}.",
        f"Rows: the environment that saved the model; columns: the one that loaded it. "
        f"Tolerance rtol={report['tolerance']['rtol']:g}, atol={report['tolerance']['atol']:g}.",
        "",
        *render_grid(report),
        "",
        "## Environments",
        "",
        *_environments(report),
        "",
        "## Failures",
        "",
        *_failures(report),
        "",
        f"<sub>harness {report['harness_version']}, report schema {report['schema_version']}, "
        f"created {report['created']}</sub>",
        "",
    ]
    return "\n".join(lines)
