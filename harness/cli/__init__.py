"""Command line: python -m harness COMMAND ...; one thin module per subcommand, main(argv) -> exit code."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType, ModuleType
from typing import Any

from harness import __version__
from harness.cli import (
    adapt,
    base_images,
    bisect,
    check,
    corpus,
    diff,
    doctor,
    inspect,
    plan,
    pr,
    report,
    run,
    site,
    validate,
)
from harness.engine import ENGINE_VARIABLE, ENGINES
from harness.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, HarnessError

log = logging.getLogger("harness")
# Subcommand -> its module: each has add_parser(sub) and main(args, engine) -> exit code.
COMMANDS: dict[str, ModuleType] = {"run": run, "validate": validate, "plan": plan, "report": report, "diff": diff,
                                   "doctor": doctor, "check": check, "bisect": bisect, "adapt": adapt,
                                   "base-images": base_images, "pr": pr, "corpus": corpus, "site": site,
                                   "inspect": inspect}
# Storage failures are the user's to fix (a full disk, a read-only or foreign folder): one line, exit 2.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


EPILOG = """\
examples:
  harness run matrices/default.yaml                  build, save, load, compare and report a matrix
  harness validate matrices/default.yaml             check a matrix and list its environments; builds nothing
  harness doctor                                     is this machine ready (engine, base images, disk, index)
  harness base-images 3.11                           build harness-base:3.11 from Debian packages (no registry)
  harness --engine podman run matrices/smoke.yaml    the same with Podman (or HARNESS_ENGINE=podman)
  harness inspect model.h5 --to 2.16.2+keras3.3.3     which routes fail where, from the file alone, in a second
  harness check --from 2.15.1 --to 2.16.2+keras3.3.3 --model model.keras --inputs 8x28x28:float32
  harness check --from-ref origin/main --to-ref HEAD the project's files at two commits, its declared models
  harness pr runs/check-svc                          a check's answer on its pull request (GitHub Actions)
  harness bisect --from 2.15.1 --to 2.20.0 --model model.h5 --inputs 8x28x28:float32
  harness adapt model.h5 --to 2.21.0+keras3.15.1 --inputs 8x28x28:float32 --out model.keras
  harness report runs/default-20250101T000000Z --format md
  harness diff old/report.json new/report.json
  harness corpus fetch corpus/manifest.yaml          download the pinned public model files once, verified
  harness site runs/observatory-* --out site         a compatibility table, a page per path, history, badges

exit codes:
  0    every cell as expected (doctor: ready)
  1    unexpected incompatibilities, regressions, a failed build or container (doctor: a check failed)
  2    bad input or usage: one line naming the file, key or flag; nothing is built
  3    the container engine is unavailable, or a base image can be neither pulled nor built here
  130  interrupted; containers removed (continue with run --resume --out DIR)
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="harness", description="Cross-version reproducibility of Keras models.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help=f"container engine (env {ENGINE_VARIABLE}; default docker)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do; each has --help")
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None, engine: Callable[[], Any] | None = None) -> int:
    """Parse arguments, run one command with the container engine `engine()` makes (default: --engine's),
    map errors to exit codes."""
    args = build_parser().parse_args(argv)
    if engine is None:
        from harness.engine import engine_for

        def engine() -> Any:
            return engine_for(args.engine)

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
    except BrokenPipeError:
        # The reader went away (`harness report DIR --format json | head`): nothing more to say to it. Python's
        # own flush of stdout at exit would raise again, so stdout is pointed at /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"harness: error: {exc.strerror}{where}; free space or choose another --out, then --resume",
              file=sys.stderr)
        return EXIT_USAGE
    finally:
        signal.signal(signal.SIGTERM, previous)
