"""The job script every scheduler shares; only its header (directives) and its job environment differ.

Each job is described by one line of shell that sets ``run_dir`` and the ``command`` array, both written
with :func:`shlex.quote`, so paths with spaces and quotes survive. A single job embeds its line; an array job
runs its job environment's :meth:`~mlxcore.schedulers.environment.JobEnvironment.array_job_lines` (by default:
line ``index - first_index + 1`` of an argument file). The body then:

- appends stdout/stderr to ``$run_dir/log.stdout`` / ``log.stderr`` and runs the environment's
  ``attempt_lines`` (OAR records each attempt's job id);
- exports ``MLXCORE_SCHEDULER`` and ``MLXCORE_JOB_ID`` (the task records its job id from them);
- when the task is run by an interpreter given by its absolute path (a launch records the one that launched
  it, so compute nodes need no venv on PATH) checks that the node has it: if not, it writes the store's job
  error marker (``metadata/job_error``, one line) and exits 127, and the run shows FAILED with that line; it
  exports ``MLXCORE_SUBMIT_PYTHON`` (the launching interpreter's version), which the task compares with its
  own (:func:`mlxcore.schedulers.environment.check_interpreter`);
- runs the task in the background and forwards USR1, USR2, TERM, INT and the environment's checkpoint signal
  to it: with SLURM's ``--signal=B:USR1@grace`` only the batch shell is signalled, and a foreground child
  would block the trap;
- when the task exits with :data:`mlxcore.store.PREEMPTED_EXIT_CODE` *and* the store marked its run
  preempted (``metadata/preempted``, written with the PREEMPTED status: a task's own ``sys.exit(3)`` leaves
  none), runs the environment's ``requeue_lines``, unless the stop came at the job's time limit
  (:meth:`~mlxcore.schedulers.environment.JobEnvironment.time_limit_lines`) and the marker says no checkpoint
  was saved since the attempt began: such a job would only reach its limit again, so it leaves a job error
  and the run shows FAILED;
- when the task failed (any other non-zero exit), runs the environment's ``failure_lines``: how a scheduler
  sends again an attempt it ended for a reason a new attempt can fix (SLURM: killed for its memory);
- exits with the task's own exit code.

The script reads no YAML: the marker file is what the store writes for it.
"""

from __future__ import annotations

import platform
import shlex
import sys
from pathlib import Path

from .. import store
from ..settings_checks import duration_seconds
from ..store import layout
from .base import JobSpec, Scheduler, Submission
from .environment import JOB_ERROR_PATH, SCHEDULER_VARIABLE, SUBMIT_PYTHON_VARIABLE

FORWARDED_SIGNALS = ("USR1", "USR2", "TERM", "INT")
#: where the job script finds the store's preemption marker, relative to ``$run_dir``
_PREEMPTED = f"{layout.METADATA}/{layout.PREEMPTED_MARKER}"
_NO_CHECKPOINT = ("mlxcore: stopped at its time limit with no checkpoint saved since this attempt began: not "
                  "requeued, as it would only reach the limit again (save checkpoints with log_checkpoint, or give "
                  "the job more time)")


def interpreter_lines() -> list[str]:
    """Refuse to start a task whose interpreter (an absolute path) the node lacks, in words the run keeps; tell
    a task run by this very interpreter's path which version submitted it."""
    missing = ('mlxcore: the interpreter ${command[0]} that submitted this job is missing on $(hostname) (or not '
               'executable): compute nodes must see the same path (a shared file system), or submit from where '
               'the job runs')
    return [
        f'if [ "${{command[0]}}" = {shlex.quote(sys.executable)} ]; then',
        f"  export {SUBMIT_PYTHON_VARIABLE}={shlex.quote(platform.python_version())}",
        "fi",
        'if [ "${command[0]:0:1}" = / ] && [ ! -x "${command[0]}" ]; then',
        f'  message="{missing}"',
        f'  echo "$message" >&2; echo "$message" >{JOB_ERROR_PATH}; exit 127',
        "fi",
    ]


def job_line(job: JobSpec) -> str:
    """One line of shell setting ``run_dir`` and ``command`` for ``job``."""
    command = " ".join(shlex.quote(part) for part in job.command)
    return f"run_dir={shlex.quote(str(job.run_dir))}; command=({command})"


def render_script(scheduler: Scheduler, submission: Submission, args_file: Path | None) -> str:
    """The full text of the job script for ``submission`` (``args_file`` is set for arrays)."""
    environment = scheduler.job_environment()
    lines = ["#!/bin/bash", *scheduler.directives(submission),
             f"# job script written by mlxcore for scheduler {scheduler.name!r}", "set -u"]
    if submission.array:
        lines += environment.array_job_lines(args_file)
    else:
        lines.append(job_line(submission.jobs[0]))
    workdir = shlex.quote(str(submission.jobs[0].workdir))
    lines += [
        f'exec >>"$run_dir/{layout.STDOUT}" 2>>"$run_dir/{layout.STDERR}"',
        *environment.attempt_lines(),
        f"cd {workdir} || exit 2",
        f"export {SCHEDULER_VARIABLE}={shlex.quote(scheduler.name)}",
        *environment.export_lines(),
        f'rm -f {JOB_ERROR_PATH}',
        *interpreter_lines(),
    ]
    if submission.setup_lines:  # the user's own lines (module load, source venv, export): not under set -u,
        # and a `set -e` among them must not cut the signal forwarding and exit-code handling below short
        lines += ["set +u", *submission.setup_lines, "set +e +o pipefail -u"]
    signals = [*FORWARDED_SIGNALS, *[s for s in [environment.checkpoint_signal] if s and s not in FORWARDED_SIGNALS]]
    lines += [
        '"${command[@]}" &',
        "child=$!",
        *(f"trap 'kill -{sig} \"$child\" 2>/dev/null' {sig}" for sig in signals),
        '# wait returns early when a trapped signal arrives: keep waiting until the task is gone',
        'while kill -0 "$child" 2>/dev/null; do wait "$child"; done',
        'wait "$child"',
    ]
    requeue = environment.requeue_lines(submission)
    if requeue:
        # the exit code alone could be the task's own sys.exit(3): the store must have marked the run preempted
        marked = f'[ -e "$run_dir/{_PREEMPTED}" ]'
        time = scheduler.generic.time
        limit = duration_seconds(time) if time is not None else None
        lines += ["code=$?", f'if [ "$code" -eq {store.PREEMPTED_EXIT_CODE} ] && {marked}; then',
                  "  at_time_limit=",
                  *(f"  {line}" for line in environment.time_limit_lines(limit, scheduler.signal_grace)),
                  # a stop at the time limit with nothing saved since the attempt began would only come back to
                  # the same limit: not requeued, and the run shows FAILED with this line (mlxcore.store.reconcile)
                  f'  if [ -n "$at_time_limit" ] && ! grep -qx {layout.CHECKPOINTED} "$run_dir/{_PREEMPTED}"; then',
                  f'    message="{_NO_CHECKPOINT}"',
                  f'    echo "$message" >&2; echo "$message" >{JOB_ERROR_PATH}',
                  "  else",
                  *(f"    {line}" for line in requeue),
                  "  fi",
                  "fi"]
    else:
        lines.append("code=$?")
    failure = environment.failure_lines(submission)
    if failure:  # a failed attempt the scheduler may send again (SLURM, after an out-of-memory kill)
        lines += [f'if [ "$code" -ne 0 ] && [ "$code" -ne {store.PREEMPTED_EXIT_CODE} ]; then',
                  *(f"  {line}" for line in failure), "fi"]
    lines.append('exit "$code"')
    return "\n".join(lines) + "\n"


def args_file_text(jobs: list[JobSpec]) -> str:
    return "".join(job_line(job) + "\n" for job in jobs)
