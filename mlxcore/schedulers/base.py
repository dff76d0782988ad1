"""The scheduler interface.

A scheduler plugin fills in a few small pieces; everything else (run directories, the job script's body,
signal forwarding, array argument files, recording job ids, reconciling statuses) is the core's, in
:mod:`mlxcore.schedulers.script` and :mod:`mlxcore.schedulers.submission`.

=====================  ===========================================================================
piece                  what it does
=====================  ===========================================================================
``directives``         the header lines of a job script (``#SBATCH --time=...``)
``submit_argv``        the argv that submits a script (a list, never a shell string)
``parse_job_ids``      job ids from the submit command's output; raises quoting the raw output
``status``             one batched query for many job ids
``cancel``             cancel many job ids
=====================  ===========================================================================
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError, SchedulerError, SubmissionError, UnknownChoiceError
from ..settings_checks import check_bool, check_duration, check_memory, check_non_negative_int, check_positive_int


@dataclass
class JobSpec:
    """One sweep point ready to be submitted: its run directory already exists."""

    log_id: int
    run_dir: Path
    command: list[str]  #: argv that runs this point (forced to ``log_id``)
    workdir: Path  #: the job ``cd``s here first (the project, or the version manager's snapshot)
    name: str  #: job name shown by the scheduler


@dataclass
class Submission:
    """What a batch of jobs was submitted as."""

    jobs: list[JobSpec]
    script: Path
    array: bool
    env: dict[str, str] = field(default_factory=dict)
    #: shell lines run by every job after ``cd`` into the work directory, before the task (``mlxcore sub``)
    setup_lines: list[str] = field(default_factory=list)


@dataclass
class JobStatus:
    """The scheduler's view of one job, in mlxcore's status words (:mod:`mlxcore.runs`)."""

    job_id: str
    state: str
    exit_code: int | None = None
    reason: str | None = None


@dataclass
class GenericOptions:
    """Resources every scheduler understands; each plugin translates them to its own directives."""

    time: int | str | None = None  #: wall time: minutes, or ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``
    cpus_per_task: int | None = None
    gpus: int | None = None
    mem: int | str | None = None  #: e.g. ``16G``, ``512M``, ``1024`` (megabytes)
    partition: str | None = None  #: partition (SLURM) or queue (OAR)

    def __post_init__(self) -> None:
        """Check the values each scheduler would otherwise pass on blindly (a plugin may refuse more)."""
        if self.time is not None:
            check_duration(self.time, "mlx.scheduler.time")
        for key in ("cpus_per_task", "gpus"):
            if getattr(self, key) is not None:
                check_positive_int(getattr(self, key), f"mlx.scheduler.{key}")
        if self.mem is not None:
            check_memory(self.mem, "mlx.scheduler.mem")


class Scheduler(ABC):
    """Base class of scheduler plugins. Subclasses set :attr:`name` and implement the abstract pieces."""

    name: ClassVar[str]
    #: the prefix of script directives (``#SBATCH``); empty for schedulers without directives
    directive_prefix: ClassVar[str] = ""
    #: environment variable holding the array index inside a job, or ``None`` without array support
    array_index_variable: ClassVar[str | None] = None
    #: the first array index (SLURM starts at 0, OAR at 1)
    array_first_index: ClassVar[int] = 0
    #: extra options of this plugin beyond :class:`GenericOptions` and ``options``, with defaults
    extra_options: ClassVar[dict[str, Any]] = {}
    #: largest array the scheduler accepts (bigger sweeps are split), ``None`` for no limit
    max_array_size: ClassVar[int | None] = None
    #: environment variable holding the job id inside a job (recorded in the run's info)
    job_id_variable: ClassVar[str | None] = None
    #: True when each array job receives its run directory and command as its ARGUMENTS (OAR's
    #: ``--array-param-file`` appends one line of a parameter file to each array job's command), instead of
    #: reading them from the argument file by array index; the plugin writes that parameter file itself
    array_job_in_arguments: ClassVar[bool] = False
    #: True when the scheduler may restart a job under a NEW job id (OAR resubmits an idempotent job as a new
    #: job): every job then appends its ``job_id_variable`` to the run's ``metadata/job_ids``, and status and
    #: cancel follow the latest id (:func:`mlxcore.schedulers.submission.current_job_id`)
    restarts_under_new_id: ClassVar[bool] = False
    #: commands that must be on PATH, and what to tell a user who lacks them
    required_commands: ClassVar[tuple[str, ...]] = ()
    missing_commands_hint: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        generic_names = {f.name for f in dataclasses.fields(GenericOptions)}
        valid = {"options", "array", "signal_grace", *generic_names, *self.extra_options}
        for key in options:
            if key not in valid:
                raise UnknownChoiceError(f"{self.name} scheduler option", key, valid)
        # an extra option named like a generic one is the plugin's (the local scheduler's ``gpus`` is a list of ids)
        self.generic = GenericOptions(**{k: v for k, v in options.items()
                                         if k in generic_names and k not in self.extra_options})
        native = options.get("options", [])
        if isinstance(native, str):
            native = [native]
        if not isinstance(native, (list, tuple)) or not all(isinstance(o, str) for o in native):
            raise ConfigError(f"mlx.scheduler.options must be a list of strings, got {native!r}")
        self.native_options: list[str] = list(native)
        #: submit a sweep of several points as one array job (when the scheduler supports arrays)
        self.use_array: bool = check_bool(options.get("array", True), "mlx.scheduler.array") \
            and self.array_index_variable is not None
        #: seconds of warning before the time limit or preemption (the stop signal is sent then)
        self.signal_grace: int = check_non_negative_int(options.get("signal_grace", 120), "mlx.scheduler.signal_grace")
        self.options: dict[str, Any] = {**self.extra_options, **{k: v for k, v in options.items() if k in self.extra_options}}

    @classmethod
    def from_settings(cls, options: dict[str, Any]) -> Scheduler:
        return cls(**options)

    def check_available(self) -> None:
        """Raise :class:`SchedulerError` when a required command is missing from PATH."""
        for command in self.required_commands:
            if shutil.which(command) is None:
                raise SchedulerError(f"{command!r} not found on PATH: {self.missing_commands_hint or 'install it'}")

    # -- the pieces a plugin provides ----------------------------------------------------------------------
    @abstractmethod
    def directives(self, submission: Submission) -> list[str]:
        """Header lines (with :attr:`directive_prefix`) for this submission's script."""

    @abstractmethod
    def submit_argv(self, submission: Submission) -> list[str]:
        """The argv that submits ``submission.script``."""

    @abstractmethod
    def parse_job_ids(self, output: str, submission: Submission) -> list[str]:
        """One job id per job of ``submission`` (array tasks included), from the submit command's stdout.

        :raises SubmissionError: quoting ``output`` when it holds no job id.
        """

    @abstractmethod
    def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
        """The state of each known job, in ONE query; ids the scheduler has forgotten are left out."""

    @abstractmethod
    def cancel(self, job_ids: list[str]) -> None:
        """Cancel these jobs (no error for ids that already ended)."""

    def preempted_lines(self, submission: Submission) -> list[str]:
        """Shell lines the job script runs when the task exits with ``PREEMPTED_EXIT_CODE`` (its run ended
        PREEMPTED after a stop signal), before the script exits with that code: e.g. SLURM requeues the job
        (``scontrol requeue``), OAR turns the code into 99 for an idempotent job. Default: none.
        """
        return []

    # -- default submission: run the argv, parse its output --------------------------------------------------
    def submit(self, submission: Submission) -> list[str]:
        """Submit and return one job id per job. Plugins rarely override this."""
        argv = self.submit_argv(submission)
        output = run_command(argv, error=SubmissionError, env_extra=submission.env)
        return self.parse_job_ids(output, submission)

    def wait(self) -> int | None:
        """Called once after every submission of a launch. A scheduler that runs jobs in the foreground (the
        builtin ``local`` pool) runs them here and returns the launch's exit code; others return ``None``
        (the launch returns at once)."""
        return None

    def translate_time(self) -> str | None:
        """``generic.time`` as ``H:MM:SS`` (an int is minutes)."""
        value = self.generic.time
        if value is None:
            return None
        if isinstance(value, int) or str(value).isdigit():
            minutes = int(value)
            return f"{minutes // 60}:{minutes % 60:02d}:00"
        return str(value)


def run_command(argv: list[str], *, error: type[SchedulerError] = SchedulerError, env_extra: dict | None = None,
                timeout: float = 120, cwd: Path | None = None, hint: str = "") -> str:
    """Run a scheduler command; return stdout, or raise ``error`` quoting its stderr (one line).

    ``hint`` is added to the error when the command is not on PATH (how to get it: a plugin's
    :attr:`Scheduler.missing_commands_hint`).
    """
    import os

    env = {**os.environ, **(env_extra or {})}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except FileNotFoundError:
        raise SchedulerError(f"{argv[0]!r} not found on PATH" + (f": {hint}" if hint else "")) from None
    except subprocess.TimeoutExpired:
        raise error(f"{argv[0]} did not answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        message = " | ".join(line.strip() for line in (proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise error(f"{argv[0]} failed (exit {proc.returncode}): {message or 'no output'}")
    return proc.stdout

