"""The project's own errors, each carrying the exit code the CLI returns for it."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_ENGINE = 3
EXIT_INTERRUPTED = 130


def printable(text: str) -> str:
    """Text with control characters escaped, so a message from user input stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class HarnessError(Exception):
    """Base class: a failure the CLI reports in one line, with an exit code."""

    exit_code = EXIT_USAGE


class UsageError(HarnessError):
    """Bad command-line usage or a bad input file."""

    exit_code = EXIT_USAGE


class MatrixError(UsageError):
    """A matrix file that cannot be used; carries every problem found in it."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = [printable(p) for p in problems]
        problems = self.problems
        first = problems[0] if problems else "invalid matrix"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{path}: {first}{more}")


class EngineUnavailable(HarnessError):
    """The container engine cannot be reached."""

    exit_code = EXIT_ENGINE


class RunDirError(UsageError):
    """The output directory cannot be used (unwritable, not a run, full disk)."""


class BaseImageUnavailable(HarnessError):
    """A base image can be neither found, pulled nor built here; the message names the command that makes it."""

    exit_code = EXIT_ENGINE
