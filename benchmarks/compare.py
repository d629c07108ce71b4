"""This checkout against another commit of the harness, in one run on one machine, and a row of history.

    python benchmarks/compare.py [--ref 66ab5a9] [--matrix FILE] [--jobs 2] [--rounds 2] [--wait-quiet 45]
                                 [--default] [--results benchmarks/RESULTS.md]

Both commits run the same cells warm, with the same images, alternately (--rounds times each): the matrix
is the other commit's matrices/default.yaml unless --matrix says otherwise, so a matrix that grew since
(more loaders) is not counted as a slowdown, and it names the models the other commit runs by default (a
matrix without `models:` runs each commit's own default models, and this checkout's include two
keras.applications networks that take most of its load time). The other commit is checked out in a temporary worktree;
where its image tags differ from this checkout's for the same environments (its Dockerfile template
changed), this checkout's images are tagged under its tags for the measurement and untagged afterwards:
the harness code is mounted, not baked in, so the comparison is of the harness alone. This checkout runs with
--no-cache: every cell is computed (and kept, as any run keeps what it computed), as the other commit, which has
no cell cache, computes them; without it a warm run restores what earlier runs on the host computed. Each run is
measured from the outside: wall time, the containers' time (run.json), and their CPU time (from the
cgroups, which other work on the machine moves far less than wall time). --default also measures this
checkout on its own current default matrix. --wait-quiet waits (up to that many minutes) for a load
average under 1 and no other harness container first, and RESULTS.md says the load measured.

Writes the comparison between the compare markers of RESULTS.md and adds a row for this checkout to the
history table (warm wall, in-container time and CPU, their ratio, per harness version and commit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Measured, jobs_of, phases, run_harness, wait_for_quiet  # noqa: E402

COMPARE = ("<!-- compare -->", "<!-- /compare -->")
HISTORY = ("<!-- history -->", "<!-- /history -->")
HISTORY_HEAD = ["| date (UTC) | harness | commit | matrix | cells | jobs | warm wall s | in-container s | "
                "in-container CPU s | wall / (in-container / jobs) | load |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
TAGS_OF = """
import json, os, sys
from pathlib import Path
from harness.matrix import load_matrix
from harness.plan import plan_environments
matrix = load_matrix(Path(sys.argv[1]), base_image=sys.argv[2])
print(json.dumps({p.env.id: p.image.tag for p in plan_environments(matrix, os.environ)}))
"""
MODELS_OF = """
import json, sys
from pathlib import Path
from harness.matrix import load_matrix
print(json.dumps([getattr(m, "name", m) for m in load_matrix(Path(sys.argv[1])).models]))
"""


def git(*args: str) -> str:
    """A git command in this checkout."""
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    """A docker command."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def tags_of(tree: Path, matrix: Path) -> dict[str, str]:
    """Environment id -> image tag as a checkout plans it, on the local base images."""
    found = subprocess.run([sys.executable, "-c", TAGS_OF, str(matrix), "harness-base:{python}"], cwd=tree,
                           env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                           check=True)
    return dict(json.loads(found.stdout.splitlines()[-1]))


def models_of(tree: Path, matrix: Path) -> list[str]:
    """The models a checkout runs for a matrix (its defaults when the matrix names none)."""
    found = subprocess.run([sys.executable, "-c", MODELS_OF, str(matrix)], cwd=tree,
                           env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                           check=True)
    return [str(name) for name in json.loads(found.stdout.splitlines()[-1])]


def pin_models(matrix: Path, names: list[str]) -> None:
    """Name the models in a matrix file that names none, so every checkout runs the same ones."""
    import yaml

    data = yaml.safe_load(matrix.read_text())
    if isinstance(data, dict) and "models" not in data:
        matrix.write_text(yaml.safe_dump({**data, "models": names}, sort_keys=False))


def lend_images(ours: Measured, theirs: dict[str, str]) -> list[str]:
    """Tag this checkout's images under the other commit's tags where those are missing; the tags made."""
    made = []
    for env in ours.run["environments"]:
        tag = theirs.get(env["id"])
        if (tag and env.get("image") and docker("image", "inspect", tag).returncode != 0
                and docker("tag", env["image"], tag).returncode == 0):
            made.append(tag)
    return made


def row(m: Measured, *, commit: str, matrix: str, jobs: int) -> str:
    """A history row."""
    ratio = m.wall / (m.in_container() / jobs) if m.in_container() else 0.0
    return (f"| {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} | {m.run.get('harness_version', '?')} | {commit} "
            f"| {matrix} | {m.cells()} | {jobs} | {m.wall:.1f} | {m.in_container():.1f} | {m.cpu_total():.1f} "
            f"| {ratio:.2f} | {m.load[0]:.2f}..{m.load[1]:.2f} |")


def median(runs: list[Measured], figure: str) -> float:
    """The median of one figure over repeated runs."""
    values = {"wall": [m.wall for m in runs], "container": [m.in_container() for m in runs],
              "cpu": [m.cpu_total() for m in runs]}[figure]
    return statistics.median(values)


def section(ours: list[Measured], theirs: list[Measured], *, ref: str, head: str, matrix: str, jobs: int,
            quiet: float, default: list[Measured]) -> list[str]:
    """The comparison block of RESULTS.md."""
    lines = [COMPARE[0], f"## This checkout ({head}) against {ref}, one run on one machine", "",
             f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with `python benchmarks/compare.py "
             f"--ref {ref}`: the same cells (`{matrix}`) warm, `--jobs {jobs}`, the same images, alternately; load "
             f"average {quiet:.2f} when it began.", "",
             "| run | wall s | in-container s | in-container CPU s | wall / (in-container / jobs) | phases | load |",
             "|---|---|---|---|---|---|---|"]
    for m in [*theirs, *ours, *default]:
        ratio = m.wall / (m.in_container() / jobs) if m.in_container() else 0.0
        lines.append(f"| {m.label} | {m.wall:.1f} | {m.in_container():.1f} | {m.cpu_total():.1f} | {ratio:.2f} "
                     f"| {phases(m)} | {m.load[0]:.2f}..{m.load[1]:.2f} |")
    lines += ["", "| figure (medians) | " + ref + " | " + head + " | change |", "|---|---|---|---|"]
    for name, figure in (("warm wall s", "wall"), ("in-container s", "container"), ("in-container CPU s", "cpu")):
        a, b = median(theirs, figure), median(ours, figure)
        lines.append(f"| {name} | {a:.1f} | {b:.1f} | {(b / a - 1) * 100 if a else 0:+.0f} % |")
    return [*lines, "", COMPARE[1]]


def replace_block(text: str, marks: tuple[str, str], block: list[str]) -> str:
    """text with the block between marks replaced (or appended)."""
    if marks[0] in text and marks[1] in text:
        return text[:text.index(marks[0])] + "\n".join(block) + text[text.index(marks[1]) + len(marks[1]):]
    return text.rstrip("\n") + "\n\n" + "\n".join(block) + "\n"


def add_history(text: str, rows: list[str]) -> str:
    """The history table with rows added (kept across runs)."""
    old: list[str] = []
    if HISTORY[0] in text and HISTORY[1] in text:
        inside = text[text.index(HISTORY[0]) + len(HISTORY[0]):text.index(HISTORY[1])].splitlines()
        old = [line for line in inside if line.startswith("| 20")]
    block = [HISTORY[0], "## History: the warm run per release of the harness", "", *HISTORY_HEAD, *old, *rows, "",
             HISTORY[1]]
    return replace_block(text, HISTORY, block)


def main() -> int:
    """Measure both commits alternately and write RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="66ab5a9", help="the commit to compare with")
    parser.add_argument("--matrix", type=Path, default=None, help="default: the other commit's default matrix")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="MINUTES")
    parser.add_argument("--default", action="store_true", help="also run this checkout's own default matrix")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "harness-compare")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    quiet = wait_for_quiet(args.wait_quiet) if args.wait_quiet else 0.0
    work = args.out / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work.mkdir(parents=True)
    other = work / "tree"
    git("worktree", "add", "--detach", str(other), args.ref)
    extra = ("--jobs", str(args.jobs), "--base-image", "harness-base:{python}")
    # Every cell computed, as the other commit computes them: not restored from what earlier runs kept.
    computed = (*extra, "--no-cache")
    lent: list[str] = []
    try:
        matrix = args.matrix or work / "matrix.yaml"
        if args.matrix is None:
            shutil.copy(other / "matrices" / "default.yaml", matrix)
            pin_models(matrix, models_of(other, matrix))
        head = git("rev-parse", "--short", "HEAD")
        ours: list[Measured] = []
        theirs: list[Measured] = []
        for n in range(args.rounds):
            ours.append(run_harness(f"{head} (this checkout), round {n + 1}", ROOT, matrix, work / f"ours{n}",
                                    *computed))
            if not lent:
                lent = lend_images(ours[0], tags_of(other, matrix))
            theirs.append(run_harness(f"{args.ref}, round {n + 1}", other, matrix, work / f"theirs{n}", *extra))
        default = ([run_harness(f"{head}, its own default matrix", ROOT, ROOT / "matrices" / "default.yaml",
                                work / "default", *computed)] if args.default else [])
    finally:
        for tag in lent:
            docker("image", "rm", tag)  # the tag only: the image keeps this checkout's tag
        git("worktree", "remove", "--force", str(other))
    text = args.results.read_text() if args.results.is_file() else "# Benchmark results\n"
    text = replace_block(text, COMPARE, section(ours, theirs, ref=args.ref, head=head, matrix=matrix.name,
                                                jobs=jobs_of(extra), quiet=quiet, default=default))
    rows = [row(m, commit=head, matrix="default" if m in default else f"{args.ref}'s default", jobs=args.jobs)
            for m in [*ours[-1:], *default]]
    args.results.write_text(add_history(text, rows))
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
