"""The job environment: what a job of one scheduler knows about itself, and how it comes back.

The job script (:mod:`mlxcore.schedulers.script`) is the same for every scheduler, and the core names no
cluster. What differs between clusters is gathered in the object each scheduler returns from
:meth:`~mlxcore.schedulers.base.Scheduler.job_environment` (as submitit's ``JobEnvironment`` does):

========================  ==============================================  ====================================
piece                     default                                         examples
========================  ==============================================  ====================================
``job_id_variable``       none: a job does not know its id                ``SLURM_JOB_ID``, ``OAR_JOB_ID``
``array_index_variable``  none: no arrays, one job per sweep point        ``SLURM_ARRAY_TASK_ID``
``array_first_index``     0                                               1 (OAR)
``checkpoint_signal``     none                                            ``USR1`` (SLURM's ``--signal``)
``cpus_variable``         none: the run's CPU-hours are not known         ``SLURM_CPUS_ON_NODE``
``array_job_lines``       line ``index - first + 1`` of the argument file  :func:`arguments_array_job` (OAR)
``attempt_lines``         nothing                                         :func:`record_attempt` (OAR)
``requeue_lines``         nothing: a preempted run stays PREEMPTED        ``scontrol requeue`` (SLURM)
``time_limit_lines``      ran at least limit - grace - 60 s               (a query of the time left)
``failure_lines``         nothing: a failed attempt stays failed          resubmit after an OOM kill (SLURM)
========================  ==============================================  ====================================

The shell lines a job environment returns run inside the job script, where ``run_dir`` (the run directory)
and ``command`` (a bash array: the task's argv) are set; in ``requeue_lines``, ``code`` is the task's exit
code, and the lines may ``exit`` with another one (OAR's idempotent jobs exit 99 to be resubmitted).

Inside every job the script exports ``MLXCORE_SCHEDULER`` (the scheduler's name), ``MLXCORE_JOB_ID`` (copied
from ``job_id_variable``) and ``MLXCORE_CPUS`` (from ``cpus_variable``): the task's process records its job id
and allocation without loading any plugin.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import JobEnvironmentError, PluginError
from ..store import layout

if TYPE_CHECKING:
    from .base import Submission

#: set by the job script in every job: the scheduler's name, and the job's id
SCHEDULER_VARIABLE = "MLXCORE_SCHEDULER"
JOB_ID_VARIABLE = "MLXCORE_JOB_ID"
#: how the attempt before this one ended, in the scheduler's words, exported by a restarted job's attempt lines
STARTED_BECAUSE_VARIABLE = "MLXCORE_STARTED_BECAUSE"
#: the number of CPUs the job was allocated on its node, exported by its job script (``cpus_variable``)
CPUS_VARIABLE = "MLXCORE_CPUS"
#: the version of the interpreter that submitted a job, exported by its job script (:func:`check_interpreter`)
SUBMIT_PYTHON_VARIABLE = "MLXCORE_SUBMIT_PYTHON"
#: the run's job ids (one line per attempt, :meth:`mlxcore.store.Run.job_ids`) as the job script spells it
JOB_IDS_PATH = f'"$run_dir/{layout.METADATA}/{layout.JOB_IDS}"'
#: the store's job error marker as the job script spells it: one line from a job that could not start its task
#: or was not requeued; the run then shows FAILED with it (:mod:`mlxcore.store.reconcile`)
JOB_ERROR_PATH = f'"$run_dir/{layout.METADATA}/{layout.JOB_ERROR_MARKER}"'

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIGNAL = re.compile(r"[A-Z][A-Z0-9]*|[0-9]+")


@dataclass
class JobEnvironment:
    """How a job learns its id and array index, finds its work, and is brought back after a preemption.

    Subclass it to change the shell pieces (``array_job_lines``, ``attempt_lines``, ``requeue_lines``); the
    data fields cover the rest. See the module docstring for the defaults.
    """

    #: environment variable holding the job's id inside a job (recorded in the run's info)
    job_id_variable: str | None = None
    #: environment variable holding the array index inside an array job; ``None``: the scheduler has no arrays
    array_index_variable: str | None = None
    #: the first array index (SLURM starts at 0, OAR at 1)
    array_first_index: int = 0
    #: the signal (``USR1``, no ``SIG``) the scheduler sends before a time limit or a preemption: "checkpoint
    #: now". The job script forwards it to the task, whose ``mlx.stop_signals`` must include it
    checkpoint_signal: str | None = None
    #: environment variable holding the number of CPUs allocated to the job on its node (recorded in the run's
    #: info as its allocation, for its CPU-hours); ``None``: not known
    cpus_variable: str | None = None

    def __post_init__(self) -> None:
        """A malformed piece would break every job script: refuse it when the plugin builds it."""
        for field_name in ("job_id_variable", "array_index_variable", "cpus_variable"):
            value = getattr(self, field_name)
            if value is not None and not (isinstance(value, str) and _VARIABLE.fullmatch(value)):
                raise PluginError(f"JobEnvironment.{field_name} must be an environment variable name, got {value!r}")
        if isinstance(self.array_first_index, bool) or not isinstance(self.array_first_index, int):
            raise PluginError(f"JobEnvironment.array_first_index must be an integer, got {self.array_first_index!r}")
        signal = self.checkpoint_signal
        if signal is not None and not (isinstance(signal, str) and _SIGNAL.fullmatch(signal)
                                       and not signal.startswith("SIG")):
            raise PluginError(f"JobEnvironment.checkpoint_signal must be a signal name without SIG (USR1) or "
                              f"number, got {signal!r}")

    @property
    def supports_arrays(self) -> bool:
        return self.array_index_variable is not None

    # -- inside the job's process ------------------------------------------------------------------------
    def job_id(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The job's id, inside a job (``None`` outside one, or when the scheduler does not say)."""
        env = os.environ if environ is None else environ
        native = env.get(self.job_id_variable) if self.job_id_variable else None
        return env.get(JOB_ID_VARIABLE) or native or None

    def array_index(self, environ: Mapping[str, str] | None = None) -> int | None:
        """The array index, inside an array job (``None`` otherwise)."""
        env = os.environ if environ is None else environ
        raw = env.get(self.array_index_variable) if self.array_index_variable else None
        return int(raw) if raw is not None and raw.strip().lstrip("-").isdigit() else None

    # -- inside the job script ---------------------------------------------------------------------------
    def export_lines(self) -> list[str]:
        """Lines that copy the scheduler's job id variable to ``MLXCORE_JOB_ID`` and its CPU count to
        ``MLXCORE_CPUS`` (the task records both without loading any plugin)."""
        lines = []
        variable = self.job_id_variable
        if variable is not None and variable != JOB_ID_VARIABLE:
            lines.append(f'export {JOB_ID_VARIABLE}="${{{variable}:-}}"')
        if self.cpus_variable is not None and self.cpus_variable != CPUS_VARIABLE:
            lines.append(f'export {CPUS_VARIABLE}="${{{self.cpus_variable}:-}}"')
        return lines

    def array_job_lines(self, args_file: Path | None) -> list[str]:
        """Lines of an array job's script that set ``run_dir`` and ``command``.

        The default protocol: the core writes one line of shell per task to ``args_file`` (the argument file,
        :func:`mlxcore.schedulers.script.job_line`) and task ``i`` evaluates line ``i - first_index + 1``.

        :raises PluginError: the environment has no array index variable, or no argument file was written.
        """
        index = self.array_index_variable
        if index is None or args_file is None:
            raise PluginError("an array job needs JobEnvironment.array_index_variable and an argument file")
        offset = self.array_first_index - 1
        return [
            f"job_line=$(sed -n \"$(( ${{{index}}} - ({offset}) ))p\" {shlex.quote(str(args_file))})",
            f'if [ -z "$job_line" ]; then echo "mlxcore: no job for array index ${{{index}}}" >&2; exit 2; fi',
            'eval "$job_line"',
        ]

    def attempt_lines(self) -> list[str]:
        """Lines run at the start of every attempt of a job, output already in the run directory. A scheduler
        that restarts a job under a NEW id returns :func:`record_attempt` here. Default: none."""
        return []

    def time_limit_lines(self, limit_s: int | None, grace_s: int) -> list[str]:
        """Lines, run after a stop, that set ``at_time_limit=1`` when the stop came at the job's time limit
        rather than from a preemption. Default: the job has run (bash's ``$SECONDS``) at least ``limit_s -
        grace_s - 60`` seconds (schedulers send the stop signal up to half a minute early); with no known
        limit, never."""
        if limit_s is None:
            return []
        return [f'if [ "$SECONDS" -ge {limit_s - grace_s - 60} ]; then at_time_limit=1; fi']

    def requeue_lines(self, submission: Submission) -> list[str]:
        """Lines run when the task's run ended PREEMPTED (it got the stop signal, saved and returned), before
        the script exits with ``code``: how the scheduler brings the job back. Default: none."""
        return []

    def failure_lines(self, submission: Submission) -> list[str]:
        """Lines run when the task exited with a non-zero ``code`` other than the preempted one, before the
        script exits with it: a scheduler that can tell a failure a new attempt may fix (killed for its memory)
        sends the attempt again here, in the same run directory. Default: none."""
        return []


def record_attempt(variable: str) -> list[str]:
    """Lines that append this attempt's job id (``$variable``) to the run's job ids.

    For a scheduler that restarts a job under a NEW id (OAR resubmits an idempotent job as a new job): status
    and cancel then follow the latest id (:func:`mlxcore.schedulers.submission.current_job_id`), and the count
    of lines is the count of attempts.
    """
    return [f'echo "${{{variable}:-}}" >>{JOB_IDS_PATH}']


def arguments_array_job() -> list[str]:
    """Lines of an array job that the scheduler hands ``RUN_DIR COMMAND...`` as its arguments.

    For a scheduler that starts each array job with its own parameters (OAR's ``--array-param-file`` appends
    one line of a parameter file, which the plugin writes, to the job's command): the job then carries what it
    runs, and a job the scheduler resubmits runs the same point. The core's argument file is not read.
    """
    missing = "mlxcore: this array job got no run directory and command as arguments"
    return [f'if [ "$#" -lt 2 ]; then echo "{missing}" >&2; exit 2; fi', 'run_dir=$1; shift; command=("$@")']


def check_interpreter(environ: Mapping[str, str] | None = None) -> None:
    """Inside a job, refuse to run the task with another Python than the one that submitted it (the same path
    on a node with another Python installed there): a task silently run by another version, with other
    packages, gives results that cannot be compared.

    :raises JobEnvironmentError: naming both versions and this interpreter's path.
    """
    import platform
    import sys

    env = os.environ if environ is None else environ
    submitted = env.get(SUBMIT_PYTHON_VARIABLE)
    if submitted and submitted != platform.python_version():
        raise JobEnvironmentError(
            f"this job runs Python {platform.python_version()} ({sys.executable}) on {platform.node()}, but it was "
            f"submitted with Python {submitted}: compute nodes must have the same interpreter at the same path")
