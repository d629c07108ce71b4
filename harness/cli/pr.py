"""`harness pr RUN_DIR`: a check's answer on its pull request: the job summary, annotations on the dependency lines
that moved, one comment (created, then updated), one SARIF file; exit with the check's code. What action.yml runs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import EXIT_FAILURES, EXIT_OK, UsageError


def add_parser(sub: Any) -> None:
    """The `pr` subcommand's arguments."""
    from harness.github.answer import FAIL_ON

    pr = sub.add_parser("pr", help="put a check's answer on its pull request: job summary, annotations, one comment, "
                                   "SARIF (GitHub Actions)",
                        description="Render the answer of `harness check --out RUN_DIR` where the pull request is "
                                    "reviewed: the job summary ($GITHUB_STEP_SUMMARY), ::error annotations on the "
                                    "dependency lines that moved, one comment on the pull request (found by its "
                                    "marker and updated, else created; needs GITHUB_TOKEN), and a SARIF file. "
                                    "Everything is read from the run directory; nothing is run again.")
    pr.add_argument("run_dir", type=Path, help="the check's --out: a run directory, or the folder holding checks.json")
    pr.add_argument("--fail-on", choices=FAIL_ON, default="breaks",
                    help="what fails (exit 1): breaks (default: the check's own exit code; any model whose route "
                         "does not survive), unsafe (only where no route works, or the model is untested), never")
    pr.add_argument("--sarif", type=Path, metavar="FILE", help="where the SARIF goes (default RUN_DIR/check.sarif)")
    pr.add_argument("--no-comment", dest="comment", action="store_false",
                    help="do not post or update the pull request comment")
    pr.add_argument("--event", type=Path, metavar="FILE",
                    help="the event payload (default $GITHUB_EVENT_PATH): the pull request to comment on")
    pr.add_argument("--check-exit", type=int, metavar="CODE",
                    help="check's exit code, when it may have stopped before answering (2: bad input, 3: no engine)")
    pr.add_argument("--check-log", type=Path, metavar="FILE",
                    help="check's standard error, whose last line says why it stopped")


def main(args: argparse.Namespace, engine: object) -> int:
    """Summary, annotations, comment and SARIF of the check's answer; the exit code --fail-on gives it."""
    from harness.github import answer as render
    from harness.github.event import actions

    context = actions(os.environ, args.event)
    if args.check_exit not in (None, EXIT_OK, EXIT_FAILURES):
        return _stopped(args, context)
    found = render.read_answer(args.run_dir)
    code = render.exit_code(found, args.fail_on)
    body = render.comment(found, args.fail_on)
    sarif = args.sarif or args.run_dir / "check.sarif"
    sarif.parent.mkdir(parents=True, exist_ok=True)
    sarif.write_text(render.sarif(found), encoding="utf-8")
    _append(os.environ.get("GITHUB_STEP_SUMMARY"), body)
    for line in render.workflow_commands(found, args.fail_on):
        print(line)
    url = _comment(args, context, body) if args.comment else ""
    _outputs(os.environ, {"exit-code": str(code), "check-exit-code": str(found.exit_code), "sarif": str(sarif),
                          "images": " ".join(render.images(found)), "comment-url": url})
    print(f"harness pr: exit {code} (fail-on {args.fail_on}); sarif {sarif}" + (f"; comment {url}" if url else ""))
    return code


def _stopped(args: argparse.Namespace, context: Any) -> int:
    """The check stopped before answering: say why in the summary, the log and the comment; keep its exit code."""
    from harness.github.answer import MARKER

    why = _last_line(args.check_log) or "see the step's log"
    body = (f"{MARKER.format(project='.')}\n### harness check: could not answer (exit {args.check_exit})\n\n{why}\n")
    _append(os.environ.get("GITHUB_STEP_SUMMARY"), body)
    print(f"::error title=harness check stopped::exit {args.check_exit}: {why}")
    if args.comment:
        _comment(args, context, body)
    _outputs(os.environ, {"exit-code": str(args.check_exit), "check-exit-code": str(args.check_exit)})
    return int(args.check_exit)


def _last_line(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def _comment(args: argparse.Namespace, context: Any, body: str) -> str:
    """The comment's URL; '' with a warning when there is no pull request or token, or GitHub refuses (a fork's
    pull request gets a read-only token)."""
    from harness.github.api import ApiError, upsert_comment

    pr = context.pull_request
    if pr is None:
        print("harness pr: no pull request in this event: no comment", file=sys.stderr)
        return ""
    if not context.token:
        print("::warning title=harness pr::no GITHUB_TOKEN: the pull request gets no comment")
        return ""
    marker = body.splitlines()[0]
    try:
        how, url = upsert_comment(context.api, context.token, pr, marker, body)
    except ApiError as exc:
        why = " (a pull request from a fork gets a read-only token)" if pr.fork else ""
        print(f"::warning title=harness pr::the comment was not posted{why}: {exc}")
        return ""
    print(f"harness pr: comment {how}: {url}")
    return url


def _append(path: str | None, text: str) -> None:
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(text + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write the job summary {path}: {exc.strerror or exc}") from None


def _outputs(environ: Mapping[str, str], values: Mapping[str, str]) -> None:
    """Step outputs ($GITHUB_OUTPUT), one name=value a line."""
    _append(environ.get("GITHUB_OUTPUT"), "\n".join(f"{k}={v}" for k, v in values.items()))
