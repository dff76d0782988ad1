"""A run's true state, from its own record, its cancel marker and its scheduler's answer.

The run's info says what its writer recorded (:mod:`mlxcore.store.liveness` corrects it for a writer that is
gone); the scheduler says where the job is. The rules, in order:

1. a run whose job script left a job error for its last attempt (the interpreter is missing on the node; a
   stop at the time limit with no checkpoint saved since the attempt began, so not requeued) is FAILED with
   that error, unless its job waits or runs again or a cancel was requested;
2. a PREEMPTED run whose job is back in the queue (it requeued itself to resume) shows the job's state;
3. COMPLETE, PRUNED, FAILED and PREEMPTED recorded by the run itself win;
4. a job the scheduler killed (TIMEOUT, CANCELLED, FAILED, PREEMPTED) while the run was interrupted or never
   recorded an end shows as the scheduler saw it;
5. a run whose cancel was requested and that was interrupted, never started or died is CANCELLED;
6. a SUBMITTED or RUNNING run whose job is queued or running shows the job's state (RUNNING wins), except
   that a run of a pack (``mlx.scheduler.pack``: its submission record names its ``pack``) that has not started
   while its pack's job runs waits for a worker of that job: PENDING;
7. a SUBMITTED run whose job the scheduler no longer knows (it answered, the job is not in the answer, and the
   submission is older than a grace period) never started and never will: DEAD, with the reason (an orphan:
   its launcher was killed, or the cluster forgot the job). ``rerun_failed`` picks it up.
8. a SUBMITTED run with no submission record whose submitter (``info.submitter``, this host) is gone was never
   submitted: its launcher died between making the run and sending its job (CANCELLED if a cancel was
   requested, else DEAD). A resumed search reruns it at once instead of waiting for it forever.

A job error of a pack's job (``metadata/job_error`` of its pack directory) counts for each of its runs (rule 1).

The scheduler's answer is duck-typed (``state``, ``reason``): the store does not import the schedulers.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from . import layout, lease, liveness
from .statuses import (
    CANCELLED,
    COMPLETE,
    DEAD,
    FAILED,
    INTERRUPTED,
    PENDING,
    PREEMPTED,
    PRUNED,
    RUNNING,
    SUBMITTED,
    TIMEOUT,
)

#: a job submitted less than this long ago may not be in the scheduler's answer yet
ORPHAN_GRACE_S = 30.0


def reconcile_detail(info: dict[str, Any] | None, run_dir: Path | str, live: Any | None, *, answered: bool = False,
                     record: dict[str, Any] | None = None, now: float | None = None) -> tuple[str, str | None]:
    """``(status, reason)`` of a run (see the module docstring).

    :param live: the scheduler's answer for the run's job (``None``: not in the answer).
    :param answered: the scheduler was asked and answered (so a missing job is truly unknown to it).
    :param record: the submission record (scheduler name, job id, submit time), for rule 7.
    """
    own, reason = liveness.judge(info, run_dir, now)
    state = getattr(live, "state", None)
    cancelled = layout.RunPaths(run_dir).cancel_marker.exists()
    pack = record.get("pack") if record else None
    job_error = None
    if own in (SUBMITTED, INTERRUPTED, DEAD, PREEMPTED):
        job_error = _job_error(run_dir) or (_job_error(pack) if pack else None)
    if job_error and state not in (PENDING, RUNNING) and not cancelled:
        return FAILED, job_error
    if pack and state == RUNNING and own in (SUBMITTED, PREEMPTED) and not cancelled:
        # its pack's job runs, but not this run (yet): a pack runs its points a few at a time
        return PENDING, f"waiting for a worker of its pack's job {record.get('job_id') if record else ''}".strip()
    if own == PREEMPTED and state in (PENDING, RUNNING) and not cancelled:
        return state, getattr(live, "reason", None)
    if own in (COMPLETE, PRUNED, FAILED, PREEMPTED):
        return own, reason
    if state in (TIMEOUT, CANCELLED, FAILED, PREEMPTED):
        return state, getattr(live, "reason", None)
    if own == SUBMITTED and live is None and _never_submitted(info, run_dir, record):
        submitter = (info or {}).get("submitter") or {}
        return (CANCELLED if cancelled else DEAD), (f"never submitted: its launcher (pid {submitter.get('pid')} on "
                                                    f"{submitter.get('host')}) ended before submitting it")
    if cancelled and own in (INTERRUPTED, SUBMITTED, DEAD):
        return CANCELLED, None if own == SUBMITTED else reason
    if own in (SUBMITTED, RUNNING) and state in (PENDING, RUNNING):
        return (RUNNING if own == RUNNING else state), getattr(live, "reason", None)
    if own == SUBMITTED and live is None and answered and record and _older_than(record, ORPHAN_GRACE_S, now):
        name, job = record.get("name", "its scheduler"), record.get("job_id")
        return DEAD, f"never started: job {job} is no longer known to {name}"
    return own, reason


def reconcile(info: dict[str, Any] | None, run_dir: Path | str, live: Any | None, **kwargs: Any) -> str:
    """The status of :func:`reconcile_detail`."""
    return reconcile_detail(info, run_dir, live, **kwargs)[0]


def _never_submitted(info: dict[str, Any] | None, run_dir: Path | str, record: dict[str, Any] | None) -> bool:
    """No submission record (given, or on disk: a caller may not have read it) and the submitter is gone."""
    return (not record and info is not None and lease.process_gone(info.get("submitter"))
            and not layout.RunPaths(run_dir).scheduler.exists())


def _job_error(run_dir: Path | str) -> str | None:
    """The line a job script left when it could not start the task (:data:`layout.JOB_ERROR_MARKER`)."""
    try:
        text = layout.RunPaths(run_dir).job_error_marker.read_text(errors="replace").strip()
    except OSError:
        return None
    return text.splitlines()[0][:500] if text else "the job script could not start the task"


def _older_than(record: dict[str, Any], seconds: float, now: float | None) -> bool:
    submitted = record.get("submit_time")
    try:
        when = datetime.fromisoformat(str(submitted)).timestamp()
    except ValueError:
        return True  # no time recorded: not a submission made a moment ago
    return (now if now is not None else time.time()) - when > seconds
