"""Keeping SIGINT and SIGTERM where they can be handled safely: the main thread, outside critical sections.

Python runs signal handlers in the main thread, between two bytecodes; the kernel, though, hands a signal sent
to the process to any thread that does not block it. Two consequences, both handled here:

- a signal delivered to a background thread (mlxcore's flush, heartbeat or tee threads) is still run by the
  main thread, so blocking signals in the main thread alone (:func:`deferred`) would not hold them back. Every
  mlxcore thread therefore blocks them first (:func:`block_in_this_thread`): the kernel then delivers them to
  the main thread;
- a record written in several steps (a run's final status, a run starting) must not be cut in the middle:
  :func:`deferred` holds the signals while it runs and they are delivered right after.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: what stops a run: Ctrl-C, a scheduler's TERM, and the usual stop signals
HELD = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2})


def block_in_this_thread() -> None:
    """Called first by every background thread of mlxcore: the process's signals go to the main thread."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM (and the stop signals) while the block runs; they are delivered right after. Only the
    main thread defers (elsewhere the block just runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
