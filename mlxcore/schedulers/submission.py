"""Submitting prepared jobs, and cancelling them: the scheduler machinery every plugin shares.

Ownership of a run's files: the run store (:mod:`mlxcore.store`) writes a run's info at submission (status
SUBMITTED) and from then on only the job running the task writes it; the submitter records the submission
(:meth:`mlxcore.store.Run.record_submission`: job id, script, submit time) and a cancel marks the run
(:meth:`~mlxcore.store.Run.request_cancel`). No two processes ever rewrite the same file.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import SchedulerError
from ..store import Run, layout, now_iso, open_run_dir, write_atomic
from .base import JobSpec, Scheduler, Submission
from .pack import nothing_left, plan_packs
from .script import args_file_text, render_script

log = logging.getLogger(__name__)

#: in an array's submission directory: ``tasks/<array index>`` is a symlink to that task's run directory
TASKS_DIR = "tasks"


def chunks(jobs: list[JobSpec], scheduler: Scheduler) -> list[list[JobSpec]]:
    """Split ``jobs`` into submissions: one array (split at ``max_array_size``) or one job each."""
    if not scheduler.use_array or len(jobs) == 1:
        return [[job] for job in jobs]
    size = scheduler.max_array_size or len(jobs)
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def point_groups(jobs: list[JobSpec], scheduler: Scheduler) -> list[list[JobSpec]]:
    """The points of each submission: :func:`chunks`, or with ``pack`` K > 1, K points per job: an array of
    packs takes K * ``max_array_size`` points (one pack per submission without arrays)."""
    if scheduler.pack <= 1:
        return chunks(jobs, scheduler)
    size = scheduler.pack * ((scheduler.max_array_size or len(jobs)) if scheduler.use_array else 1)
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def submit_jobs(scheduler: Scheduler, jobs: list[JobSpec], parent: Path, setup_lines: Sequence[str] = (),
                abandon: Callable[[list[Path]], None] | None = None, resources: dict[str, Any] | None = None
                ) -> list[str]:
    """Write the scripts, submit, record each job id; return the ids in ``jobs`` order (with packing, each
    point's pack job, :mod:`.pack`).

    ``setup_lines`` are shell lines every job runs before its task (see :attr:`Submission.setup_lines`);
    ``resources`` (the per-point options these jobs were given) go into each run's submission record.

    On failure, ``abandon`` is called with the run directories whose jobs were not submitted (the caller's
    :meth:`~mlxcore.store.batch.SubmissionBatch.abandon`: no run is left SUBMITTED for a job that does not
    exist), the failed submission's script directory is removed, and the error propagates.
    """
    scheduler.check_available()
    job_ids: list[str] = []
    pending = list(jobs)
    pace = _Pace(scheduler.submit_rate)
    packed = scheduler.pack > 1
    try:
        for points in point_groups(jobs, scheduler):
            directory = pack_directory(parent, points) if packed else None
            submission: Submission | None = None
            try:
                group = plan_packs(scheduler, points, directory) if directory else points
                submission = _prepare(scheduler, group, parent, setup_lines, directory)
                pace.wait()
                ids = submit_patiently(scheduler, submission)
            except BaseException:
                if submission is not None and submission.array:
                    shutil.rmtree(submission.script.parent, ignore_errors=True)
                if directory is not None:
                    shutil.rmtree(directory, ignore_errors=True)
                raise
            submitted_at = now_iso()
            record = {"name": scheduler.name, "submit_time": submitted_at, "script": str(submission.script),
                      "array": submission.array, **({"resources": resources} if resources else {})}
            if packed:  # point i is in pack i // K, whose job is ids[i // K]
                ids = [ids[i // scheduler.pack] for i in range(len(points))]
            for i, (job, job_id) in enumerate(zip(points, ids)):
                extra = {"pack": str(group[i // scheduler.pack].run_dir)} if packed else {}
                open_run_dir(job.run_dir).record_submission({**record, "job_id": job_id, **extra})
            job_ids.extend(ids)
            del pending[: len(points)]
            log.debug("submitted %d job(s) to %s: %s", len(group), scheduler.name, ", ".join(ids[:5]))
    except BaseException:
        if abandon is not None:
            abandon([job.run_dir for job in pending])
        raise
    return job_ids


def pack_directory(parent: Path, points: list[JobSpec]) -> Path:
    """The submission directory of packed ``points``: named after their first and last ids, made unique (a
    pack re-reads its pack file when it is requeued: a later submission of the same ids must not replace it)."""
    directory = layout.submission_dir(parent, points[0].log_id, points[-1].log_id)
    return directory.with_name(f"{directory.name}-{uuid.uuid4().hex[:8]}")


class _Pace:
    """Waits so that submissions start at most ``rate`` a second (no wait when ``rate`` is ``None``)."""

    def __init__(self, rate: float | None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.sleep = sleep
        self.last: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self.last is not None and self.interval:
            delay = self.last + self.interval - now
            if delay > 0:
                self.sleep(delay)
                now = time.monotonic()  # the real time: a sleep that overslept must not shorten the next gap
        self.last = now


def submit_patiently(scheduler: Scheduler, submission: Submission, sleep: Callable[[float], None] = time.sleep
                     ) -> list[str]:
    """``scheduler.submit``, tried again after a transient error (a busy controller, a reply that timed out)
    with doubling waits from ``submit_backoff`` (at most 60 s each), ``submit_retries`` times; before each new
    try the scheduler is asked whether it has the submission after all, so a lost reply makes no duplicate.
    Any other error, or the last one, propagates at once (reported once, by the caller)."""
    attempt = 0
    while True:
        try:
            return scheduler.submit(submission)
        except SchedulerError as exc:
            if attempt >= scheduler.submit_retries or not scheduler.is_transient(exc):
                raise
            error = exc
        found = scheduler.find_submitted(submission)
        if found:
            log.warning("%s said %s, but it has the submission: job ids %s", scheduler.name, error,
                        ", ".join(found[:3]) + (" ..." if len(found) > 3 else ""))
            return found
        wait = min(scheduler.submit_backoff * 2 ** attempt, 60.0)
        log.warning("%s did not take the submission (%s); trying again in %.1f s (%d of %d)", scheduler.name,
                    error, wait, attempt + 1, scheduler.submit_retries)
        sleep(wait)
        attempt += 1


def _prepare(scheduler: Scheduler, group: list[JobSpec], parent: Path, setup_lines: Sequence[str] = (),
             directory: Path | None = None) -> Submission:
    array = len(group) > 1
    if array:
        directory = directory or layout.submission_dir(parent, group[0].log_id, group[-1].log_id)
        directory.mkdir(parents=True, exist_ok=True)
        script = directory / "job.sh"
        args_path = directory / "jobs.args"
        write_atomic(args_path, args_file_text(group))
        args_file: Path | None = args_path
        link_array_tasks(directory / TASKS_DIR, group, scheduler.job_environment().array_first_index)
    else:
        script, args_file = layout.RunPaths(group[0].run_dir).job_script, None
    submission = Submission(jobs=group, script=script, array=array, setup_lines=list(setup_lines))
    write_atomic(script, render_script(scheduler, submission, args_file))
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
    return open_run_dir(run_dir).scheduler_record()


def current_job_id(run_dir: Path, record: dict[str, Any]) -> str:
    """The job to ask the scheduler about for this run: the submitted one, or, when the scheduler restarted it
    under a new id (its job environment records each attempt:
    :func:`~mlxcore.schedulers.environment.record_attempt`), the latest id in the run's job ids (its pack's,
    for a point of a pack: the pack's job script records them)."""
    pack = record.get("pack")
    attempts = layout.RunPaths(pack).job_ids if pack else layout.RunPaths(run_dir).job_ids
    try:
        latest = attempts.read_text().split()
    except OSError:
        latest = []
    return latest[-1] if latest else str(record["job_id"])


def cancel_runs(scheduler: Scheduler, run_dirs: list[Path]) -> list[str]:
    """Mark the runs as cancel-requested, then cancel their jobs in one call; returns the job ids.

    A pack's job (:mod:`.pack`) is cancelled only once none of its points is left to run: until then its runner
    stops the marked points itself (never starts them, or sends them SIGTERM) and runs the others.
    """
    job_ids: list[str] = []
    packs: dict[str, str] = {}  # pack directory -> its job id
    for run_dir in run_dirs:
        run: Run = open_run_dir(run_dir)
        record = run.scheduler_record()
        if record and record.get("name") == scheduler.name:
            run.request_cancel()
            job_id = current_job_id(run_dir, record)
            if record.get("pack"):
                packs[str(record["pack"])] = job_id
            else:
                job_ids.append(job_id)
    whole = [job_id for pack, job_id in packs.items() if nothing_left(Path(pack))]
    if job_ids or whole:
        scheduler.cancel(job_ids + whole)
    return list(dict.fromkeys(job_ids + list(packs.values())))
