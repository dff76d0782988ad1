"""Run statuses, and the moves between them the store allows.

::

    (new) ──> SUBMITTED ──> RUNNING ──> COMPLETE | PRUNED | FAILED | INTERRUPTED | PREEMPTED | TIMEOUT | CANCELLED
                  │  ^          ^                              │
                  │  └──────────┼──────── resubmitted ─────────┤
                  │             └──────── resumed ─────────────┘
                  └──> CANCELLED | FAILED (the job ended before its task started)

DEAD is never written: it is what a RUNNING run whose writer is gone, or a SUBMITTED run whose job no longer
exists, is shown as (:mod:`mlxcore.store.liveness`); a dead run may be resumed or resubmitted like a final one.
PENDING is a scheduler's word for a SUBMITTED run whose job waits in the queue. PRUNED is a search trial that its
task stopped early because its sweeper judged it hopeless (:class:`mlxcore.TrialPruned`): final, its rows kept, an
ending as deliberate as COMPLETE (never rerun by ``rerun_failed``).
"""

from __future__ import annotations

from ..errors import RunError

SUBMITTED = "SUBMITTED"
PENDING = "PENDING"
RUNNING = "RUNNING"
COMPLETE = "COMPLETE"
PRUNED = "PRUNED"
FAILED = "FAILED"
INTERRUPTED = "INTERRUPTED"
PREEMPTED = "PREEMPTED"
TIMEOUT = "TIMEOUT"
CANCELLED = "CANCELLED"
#: derived, never written: the writer of a RUNNING run is gone, or the job of a SUBMITTED run vanished
DEAD = "DEAD"
UNKNOWN = "UNKNOWN"

FINAL_STATUSES = frozenset({COMPLETE, PRUNED, FAILED, INTERRUPTED, PREEMPTED, TIMEOUT, CANCELLED})
ACTIVE_STATUSES = frozenset({SUBMITTED, PENDING, RUNNING})
WRITTEN_STATUSES = frozenset({SUBMITTED, RUNNING, *FINAL_STATUSES})

#: exit code of a process whose last run ended PREEMPTED (a scheduler plugin may choose another)
PREEMPTED_EXIT_CODE = 3

_ALLOWED: dict[str | None, frozenset[str]] = {
    None: frozenset({SUBMITTED, RUNNING}),
    SUBMITTED: frozenset({SUBMITTED, RUNNING, CANCELLED, FAILED}),
    RUNNING: FINAL_STATUSES,
    **{final: frozenset({SUBMITTED, RUNNING}) for final in FINAL_STATUSES},
}


class StatusError(RunError):
    """A status change the store does not allow (a bug in the caller, or a run changed under it)."""


def check_transition(log_id: int, old: str | None, new: str) -> None:
    """Raise :class:`StatusError` unless a run may go from ``old`` (``None``: no status yet) to ``new``.

    A RUNNING run goes to RUNNING again only through a takeover of its lease (its writer died), which the
    writer records as a DEAD attempt first: that path calls this with ``old`` DEAD.
    """
    if new not in WRITTEN_STATUSES:
        valid = ", ".join(sorted(WRITTEN_STATUSES))
        raise StatusError(f"run {log_id}: {new!r} is not a status a run records; valid: {valid}")
    allowed = _ALLOWED.get(old, frozenset({SUBMITTED, RUNNING}))  # DEAD, UNKNOWN: start again
    if new not in allowed:
        raise StatusError(f"run {log_id}: cannot go from {old} to {new}")
