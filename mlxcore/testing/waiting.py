"""``wait_until``: the one way tests wait for something another process does (no fixed sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """What was waited for did not happen in time; the message says what, and what was seen last."""


def wait_until(check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """Call ``check`` until it returns a true value, and return that value; after ``timeout`` seconds, raise
    :class:`WaitTimeout` naming ``what`` (or ``check``) and the last value seen. ``interval`` grows from its
    given value up to a second, so a long wait polls a slow command (``squeue``, ``oarstat``) rarely."""
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        value = check()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"waited {timeout:g} s for {what or getattr(check, '__name__', 'a condition')}; "
                              f"last seen: {value!r}")
        time.sleep(min(delay, left))
        delay = min(delay * 1.5, 1.0)
