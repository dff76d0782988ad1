"""The job script every scheduler shares; only its header (directives) differs between schedulers.

Each job is described by one line of shell that sets ``run_dir`` and the ``command`` array, both written
with :func:`shlex.quote`, so paths with spaces and quotes survive. A single job embeds its line; an array job
reads line ``index - first_index + 1`` of an argument file, or, when the scheduler hands each array job its
own parameters (:attr:`~mlxcore.schedulers.base.Scheduler.array_job_in_arguments`), takes the run directory
and the command words from its arguments. The body then:

- appends stdout/stderr to ``$run_dir/log.stdout`` / ``log.stderr``;
- runs the task in the background and forwards USR1, USR2, TERM and INT to it: with SLURM's
  ``--signal=B:USR1@grace`` only the batch shell is signalled, and a foreground child would block the trap;
- exits with the task's own exit code.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from .. import store
from ..store import layout
from .base import JobSpec, Scheduler, Submission

FORWARDED_SIGNALS = ("USR1", "USR2", "TERM", "INT")
#: ``metadata/job_ids``: one line per attempt of a run (see :attr:`Scheduler.restarts_under_new_id`)
JOB_IDS_FILE = layout.JOB_IDS
#: where the job script finds a run's files, relative to ``$run_dir``
_JOB_IDS = f"{layout.METADATA}/{layout.JOB_IDS}"
_INFO = f"{layout.METADATA}/{layout.INFO}"


def job_line(job: JobSpec) -> str:
    """One line of shell setting ``run_dir`` and ``command`` for ``job``."""
    command = " ".join(shlex.quote(part) for part in job.command)
    return f"run_dir={shlex.quote(str(job.run_dir))}; command=({command})"


def render_script(scheduler: Scheduler, submission: Submission, args_file: Path | None) -> str:
    """The full text of the job script for ``submission`` (``args_file`` is set for arrays)."""
    lines = ["#!/bin/bash", *scheduler.directives(submission), f"# job script written by mlxcore for scheduler {scheduler.name!r}", "set -u"]
    if submission.array and scheduler.array_job_in_arguments:  # the scheduler passes "RUN_DIR COMMAND..."
        lines += [
            'if [ "$#" -lt 2 ]; then echo "mlxcore: this array job got no run directory and command as arguments" >&2; exit 2; fi',
            'run_dir=$1; shift; command=("$@")',
        ]
    elif submission.array:
        index = scheduler.array_index_variable
        offset = scheduler.array_first_index - 1
        lines += [
            f"job_line=$(sed -n \"$(( ${{{index}}} - ({offset}) ))p\" {shlex.quote(str(args_file))})",
            'if [ -z "$job_line" ]; then echo "mlxcore: no job for array index ' + f"${{{index}}}" + '" >&2; exit 2; fi',
            'eval "$job_line"',
        ]
    else:
        lines.append(job_line(submission.jobs[0]))
    workdir = shlex.quote(str(submission.jobs[0].workdir))
    lines += [
        f'exec >>"$run_dir/{layout.STDOUT}" 2>>"$run_dir/{layout.STDERR}"',
    ]
    if scheduler.restarts_under_new_id and scheduler.job_id_variable:  # every attempt's job id, in order
        lines.append(f'echo "${{{scheduler.job_id_variable}:-}}" >>"$run_dir/{_JOB_IDS}"')
    lines += [
        f"cd {workdir} || exit 2",
        f"export MLXCORE_SCHEDULER={shlex.quote(scheduler.name)}",
    ]
    if submission.setup_lines:  # the user's own lines (module load, source venv, export): not under set -u,
        # and a `set -e` among them must not cut the signal forwarding and exit-code handling below short
        lines += ["set +u", *submission.setup_lines, "set +e +o pipefail -u"]
    lines += [
        '"${command[@]}" &',
        "child=$!",
        *(f"trap 'kill -{sig} \"$child\" 2>/dev/null' {sig}" for sig in FORWARDED_SIGNALS),
        '# wait returns early when a trapped signal arrives: keep waiting until the task is gone',
        'while kill -0 "$child" 2>/dev/null; do wait "$child"; done',
        'wait "$child"',
    ]
    preempted = scheduler.preempted_lines(submission)
    if preempted:
        # the exit code alone could be the task's own sys.exit(3): the run's info must say PREEMPTED too
        said_preempted = f'grep -qx "status: {store.PREEMPTED}" "$run_dir/{_INFO}" 2>/dev/null'
        lines += ["code=$?", f'if [ "$code" -eq {store.PREEMPTED_EXIT_CODE} ] && {said_preempted}; then',
                  *(f"  {line}" for line in preempted), "fi", 'exit "$code"']
    else:
        lines.append("exit $?")
    return "\n".join(lines) + "\n"


def args_file_text(jobs: list[JobSpec]) -> str:
    return "".join(job_line(job) + "\n" for job in jobs)
