"""A deadline for calls that must not block: a FIFO read would never return, and the test would hang with it."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any


class Hung(BaseException):
    """Raised in a call that ran out of time: no OSError (TimeoutError is one), which the code under test may catch."""


def within(seconds: float, work: Callable[[], Any]) -> Any:
    """work()'s result, failing the test if it takes longer than `seconds`."""
    def stop(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return work()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
