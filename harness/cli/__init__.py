"""Command line: python -m harness COMMAND ...; one thin module per subcommand, main(argv) -> exit code."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType, ModuleType
from typing import Any

from harness import __version__
from harness.cli import check, diff, doctor, plan, report, run, validate
from harness.errors import EXIT_INTERRUPTED, EXIT_USAGE, HarnessError

log = logging.getLogger("harness")
# Subcommand -> its module: each has add_parser(sub) and main(args, engine) -> exit code.
COMMANDS: dict[str, ModuleType] = {"run": run, "validate": validate, "plan": plan, "report": report, "diff": diff,
                                   "doctor": doctor, "check": check}
# Storage failures are the user's to fix (a full disk, a read-only or foreign folder): one line, exit 2.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="harness", description="Cross-version reproducibility of Keras models.")
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _docker() -> Any:
    from harness.engine import DockerCLI

    return DockerCLI()


def main(argv: Sequence[str] | None = None, engine: Callable[[], Any] = _docker) -> int:
    """Parse arguments, run one command with the container engine `engine()` makes, map errors to exit codes."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="harness: %(levelname)s: %(message)s")
    # SIGTERM (CI cancelling a job) cleans up exactly like Ctrl-C.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        code: int = COMMANDS[args.command].main(args, engine())
        return code
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"harness: error: {exc.strerror}{where}; free space or choose another --out, then --resume",
              file=sys.stderr)
        return EXIT_USAGE
    finally:
        signal.signal(signal.SIGTERM, previous)
