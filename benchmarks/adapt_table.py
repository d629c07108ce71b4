"""What the adapters make of the routes that break: a table of causes x outcome, from a run's report.

    python benchmarks/adapt_table.py RUN_DIR [--write]

RUN_DIR is a run of matrices/adapt.yaml (the default matrix's environments and TF 2.16 + Keras 3.3,
every built-in and hazard probe, the default loaders and the two adapting ones). Its report is built
again from the records with this checkout's rules, then every route that works at home and breaks
with a plain loader (source, target, model, format, cause) is counted by what the adapting loaders
made of it in the same target: adapted and verified (a copy passed), adapter exists but verification
failed (an adapter ran or could not adapt, and no copy passed), or no adapter. --write puts the table
into benchmarks/RESULTS.md between its markers (docs/adapt.md carries a short version).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKERS = ("<!-- adapt-table -->", "<!-- /adapt-table -->")
sys.path.insert(0, str(ROOT))

from harness.advisor.adaptation import OUTCOMES, adaptation_table, adapts  # noqa: E402
from harness.report.build import build_report  # noqa: E402
from harness.rundir import RunDir  # noqa: E402


def markdown(report: dict[str, Any]) -> str:
    """The table, a total row, and what was verified per probe and format."""
    counts = adaptation_table(report["cells"])
    lines = ["| cause | routes that break | " + " | ".join(OUTCOMES) + " |", "|---|---:|" + "---:|" * len(OUTCOMES)]
    total: Counter[str] = Counter()
    for cause, row in counts.items():
        total.update(row)
        lines.append(f"| `{cause}` | {sum(row.values())} | " + " | ".join(str(row[o]) for o in OUTCOMES) + " |")
    lines.append(f"| all | {sum(total.values())} | " + " | ".join(str(total[o]) for o in OUTCOMES) + " |")
    verified = sorted({(c["model"], c["format"]) for c in report["cells"]
                       if adapts(c["loader"]) and c.get("route_status") in ("portable", "target_only")})
    envs = [e["id"] for e in report["environments"] if e.get("image")]
    return "\n".join([
        f"Run of `{report['matrix']['name']}`: {len(envs)} environments ({', '.join(envs)}), "
        f"{len(report['cells'])} cells.", "", *lines, "",
        "Probe / format pairs with a verified adapted copy somewhere: "
        + (", ".join(f"{m} {f}" for m, f in verified) or "none") + "."])


def main(argv: list[str] | None = None) -> int:
    """Print the table (and write it into RESULTS.md with --write)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--write", action="store_true", help="put the table into benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    text = markdown(build_report(RunDir.open_existing(args.run_dir)))
    print(text)
    if args.write:
        results = ROOT / "benchmarks" / "RESULTS.md"
        old = results.read_text(encoding="utf-8")
        block = f"{MARKERS[0]}\n{text}\n{MARKERS[1]}"
        pattern = re.escape(MARKERS[0]) + r".*?" + re.escape(MARKERS[1])
        new = re.sub(pattern, lambda _: block, old, flags=re.DOTALL) if MARKERS[0] in old else old + "\n" + block + "\n"
        results.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
