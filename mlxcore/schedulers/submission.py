"""Submitting prepared jobs, and reading their state back: the scheduler machinery every plugin shares.

Ownership of a run's files: ``metadata/info.yaml`` is written at submission (status SUBMITTED) and from then
on only by the running task; the submitter writes ``metadata/scheduler.yaml`` (job id, script, submit time)
and a cancel writes the marker ``metadata/cancel_requested``. No two processes ever rewrite the same file.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import runs
from .base import JobSpec, JobStatus, Scheduler, Submission
from .script import JOB_IDS_FILE, args_file_text, render_script

log = logging.getLogger(__name__)

SCHEDULER_FILE = "scheduler.yaml"
CANCEL_MARKER = "cancel_requested"
#: in an array's submission directory: ``tasks/<array index>`` is a symlink to that task's run directory
TASKS_DIR = "tasks"


def chunks(jobs: list[JobSpec], scheduler: Scheduler) -> list[list[JobSpec]]:
    """Split ``jobs`` into submissions: one array (split at ``max_array_size``) or one job each."""
    if not scheduler.use_array or len(jobs) == 1:
        return [[job] for job in jobs]
    size = scheduler.max_array_size or len(jobs)
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def submit_jobs(scheduler: Scheduler, jobs: list[JobSpec], parent: Path, setup_lines: Sequence[str] = ()) -> list[str]:
    """Write the scripts, submit, record each job id; return the ids in ``jobs`` order.

    ``setup_lines`` are shell lines every job runs before its task (see :attr:`Submission.setup_lines`).

    On failure every run directory of ``jobs`` not yet submitted is removed (no run is left SUBMITTED for a
    job that does not exist) and the error propagates.
    """
    scheduler.check_available()
    job_ids: list[str] = []
    pending = list(jobs)
    try:
        for group in chunks(jobs, scheduler):
            submission = _prepare(scheduler, group, parent, setup_lines)
            ids = scheduler.submit(submission)
            submitted_at = runs.now_iso()
            for job, job_id in zip(group, ids):
                runs.write_yaml(job.run_dir / "metadata" / SCHEDULER_FILE, {
                    "name": scheduler.name, "job_id": job_id, "submit_time": submitted_at,
                    "script": str(submission.script), "array": submission.array,
                })
            job_ids.extend(ids)
            del pending[: len(group)]
            log.debug("submitted %d job(s) to %s: %s", len(group), scheduler.name, ", ".join(ids[:5]))
    except BaseException:
        for job in pending:
            shutil.rmtree(job.run_dir, ignore_errors=True)
        raise
    return job_ids


def _prepare(scheduler: Scheduler, group: list[JobSpec], parent: Path, setup_lines: Sequence[str] = ()) -> Submission:
    array = len(group) > 1
    if array:
        directory = parent / runs.STATE_DIR / "submissions" / f"{group[0].log_id}-{group[-1].log_id}"
        directory.mkdir(parents=True, exist_ok=True)
        script = directory / "job.sh"
        args_file: Path | None = directory / "jobs.args"
        runs.write_atomic(args_file, args_file_text(group))
        link_array_tasks(directory / TASKS_DIR, group, scheduler.array_first_index)
    else:
        script, args_file = group[0].run_dir / "script.sh", None
    submission = Submission(jobs=group, script=script, array=array, setup_lines=list(setup_lines))
    runs.write_atomic(script, render_script(scheduler, submission, args_file))
    script.chmod(0o755)
    return submission


def link_array_tasks(tasks: Path, group: list[JobSpec], first_index: int) -> None:
    """``tasks/<index>`` -> run directory, for each task of an array.

    A scheduler writes its own messages (``CANCELLED ... DUE TO TIME LIMIT``) to an output file named by a
    pattern in which only the array index varies (SLURM's ``%a``): pointed at
    ``<submission>/tasks/<index>/log.stderr``, they land in the task's run directory. Cheap (one symlink a
    task), so made for every array; a scheduler whose pattern names job ids instead links those itself.
    """
    tasks.mkdir(parents=True, exist_ok=True)
    for offset, job in enumerate(group):
        link = tasks / str(first_index + offset)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(job.run_dir, link)


def array_tasks_dir(submission: Submission) -> Path:
    """Where :func:`link_array_tasks` put the links of ``submission`` (an array)."""
    return submission.script.parent / TASKS_DIR


def read_scheduler_record(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "metadata" / SCHEDULER_FILE
    return runs.read_yaml(path) if path.exists() else None


def current_job_id(run_dir: Path, record: dict[str, Any]) -> str:
    """The job to ask the scheduler about for this run: the submitted one, or, when the scheduler restarted it
    under a new id (:attr:`Scheduler.restarts_under_new_id`), the latest id in ``metadata/job_ids``."""
    try:
        attempts = (run_dir / "metadata" / JOB_IDS_FILE).read_text().split()
    except OSError:
        attempts = []
    return attempts[-1] if attempts else str(record["job_id"])


def reconcile(info: dict[str, Any], run_dir: Path, live: JobStatus | None) -> str:
    """A run's true state from its own info, the cancel marker and the scheduler's live answer.

    A final status written by the run itself wins, except that a job the scheduler killed (TIMEOUT,
    CANCELLED, or PREEMPTED: OAR kills a best-effort job outright) while the run was interrupted is reported
    as the scheduler saw it. When the scheduler has forgotten the job, the run's info decides.
    """
    own = runs.effective_status(info, run_dir)
    cancelled = (run_dir / "metadata" / CANCEL_MARKER).exists()
    if own == runs.PREEMPTED and live is not None and live.state in (runs.PENDING, runs.RUNNING) and not cancelled:
        return live.state  # the job requeued itself after the stop: it waits (or restarts) to resume the run
    if own in (runs.COMPLETE, runs.FAILED, runs.PREEMPTED):
        return own
    if live is not None and live.state in (runs.TIMEOUT, runs.CANCELLED, runs.FAILED, runs.PREEMPTED):
        return live.state
    if cancelled and own in (runs.INTERRUPTED, runs.SUBMITTED, runs.DEAD):
        return runs.CANCELLED
    if live is not None and own in (runs.SUBMITTED, runs.RUNNING) and live.state in (runs.PENDING, runs.RUNNING):
        return runs.RUNNING if own == runs.RUNNING else live.state
    return own


def cancel_runs(scheduler: Scheduler, run_dirs: list[Path]) -> list[str]:
    """Mark the runs as cancel-requested, then cancel their jobs in one call; returns the job ids."""
    job_ids = []
    for run_dir in run_dirs:
        record = read_scheduler_record(run_dir)
        if record and record.get("name") == scheduler.name:
            (run_dir / "metadata" / CANCEL_MARKER).touch()
            job_ids.append(current_job_id(run_dir, record))
    if job_ids:
        scheduler.cancel(job_ids)
    return job_ids
