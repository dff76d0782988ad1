"""The scheduler interface (version :data:`INTERFACE_VERSION`).

A scheduler plugin fills in a few small pieces; everything else (run directories, the job script's body,
signal forwarding, array argument files, recording job ids, reconciling statuses) is the core's, in
:mod:`mlxcore.schedulers.script` and :mod:`mlxcore.schedulers.submission`.

=====================  ===========================================================================
piece                  what it does
=====================  ===========================================================================
``directives``         the header lines of a job script (``#SBATCH --time=...``); default: none
``job_environment``    what a job knows of itself and how it comes back (:class:`JobEnvironment`):
                       its id and array index variables, the array protocol, the checkpoint
                       signal, the lines that record an attempt and requeue a preempted job
``submit``             submit one :class:`Submission`, return one job id per job; by default it
                       runs ``submit_argv`` (a list, never a shell string) and ``parse_job_ids``
                       (raises quoting the raw output): implement those two, or ``submit`` alone
``check_capacity``     refuse a sweep the cluster's per-user limits would refuse part way; default: none
``find_submitted``     after a submit error that may hide an accepted job (a lost reply), the job ids
                       of this submission if the scheduler has it; default: cannot tell (``None``)
``status``             one batched query for many job ids, in the status words below (required)
``cancel``             cancel many job ids (required)
=====================  ===========================================================================

**Status words** ``status()`` may return (:class:`JobStatus` ``state``), and what each does to the status
``mlxcore status`` shows (:func:`mlxcore.store.reconcile_detail`, applied in :mod:`.observe`):

- ``PENDING``, ``RUNNING``: the job waits or runs. A run that recorded SUBMITTED shows the job's word (CANCELLED
  once a cancel was requested); a run that recorded RUNNING stays RUNNING (DEAD when its writer is gone); a
  PREEMPTED run whose job is back in the queue (it requeued itself) shows the job's word, unless a cancel was
  requested.
- ``COMPLETE``: the job ended well. It never overrides the run's own record: only the task says a run is
  COMPLETE.
- ``FAILED``, ``TIMEOUT``, ``CANCELLED``, ``PREEMPTED``: the scheduler ended the job. They win over every
  record except the run's own COMPLETE, FAILED or PREEMPTED, *and over the cancel marker*: after
  :meth:`cancel`, answer CANCELLED (or forget the job), never FAILED, or a cancelled run shows FAILED.
- a job id left out of the answer: the scheduler does not know it. The run's own record decides; a cancel
  marker turns an INTERRUPTED, SUBMITTED or dead run into CANCELLED; a run still SUBMITTED more than
  :data:`mlxcore.store.reconcile.ORPHAN_GRACE_S` seconds after its submission is DEAD (never started). So
  never leave out a job that waits: an answer that is always empty turns every queued run DEAD.

No other word is expected (SUBMITTED, INTERRUPTED and DEAD are the run's, never a scheduler's); an unknown one
leaves the decision to the run's record and the cancel marker, as a job left out does, but never makes a run
DEAD. ``reason`` is shown as the run's detail; ``exit_code`` once the job's word is final and the run shows
FAILED, TIMEOUT or CANCELLED. ``native_state`` keeps the scheduler's own word (SLURM's ``NODE_FAIL`` and
``OUT_OF_MEMORY`` are both FAILED in mlxcore's words) and ``usage`` what the job used, where the scheduler
keeps accounting (:class:`JobUsage`); both are optional.

**Array protocol.** A sweep of several points is one :class:`Submission` with ``array=True`` when the user
keeps ``mlx.scheduler.array`` on and the job environment has an ``array_index_variable`` (split at
:attr:`Scheduler.max_array_size`). Task ``i`` of ``n`` is ``submission.jobs[i]``; ``submit`` returns the ``n``
job ids in that order (each one a job ``status`` and ``cancel`` accept, ``J_i`` for SLURM). The core writes an
argument file, one line per task, and links ``<submission dir>/tasks/<first_index + i>`` to each task's run
directory; by default the job with array index ``first_index + i`` reads line ``i + 1`` of the argument file.
A scheduler without a submit command of its own (a pool, a pid-file runner) starts one job per task and sets
``array_index_variable`` in each task's environment, or leaves ``array_index_variable`` unset and gets one
:class:`Submission` per point. A scheduler that hands each array job its parameters (OAR) overrides
:meth:`JobEnvironment.array_job_lines` with :func:`~mlxcore.schedulers.environment.arguments_array_job`.

**Packing** (``mlx.scheduler.pack`` K > 1, :mod:`mlxcore.schedulers.pack`) needs nothing from a plugin: each job
of a submission is then a pack of K points whose "run directory" is its pack directory and whose command runs
the pack; ``status`` and ``cancel`` see one job per pack. A scheduler that runs points itself on this machine
sets :attr:`Scheduler.supports_packing` to ``False``.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError, SchedulerError, SubmissionError, UnknownChoiceError
from ..settings_checks import check_bool, check_duration, check_memory, check_non_negative_int, check_positive_int
from .compat import check_subclass, legacy_environment
from .environment import JobEnvironment

#: the version of this interface a scheduler class implements (``Scheduler.interface_version``; shown by
#: ``mlxcore plugins``). 0.2: the job environment replaced five class flags; submit_argv/parse_job_ids optional
INTERFACE_VERSION = "0.2"


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
    #: unique to this submission: a plugin may tag its jobs with it to find them again (:meth:`find_submitted`)
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:16])


@dataclass
class JobStatus:
    """The scheduler's view of one job, in mlxcore's status words (:mod:`mlxcore.runs`)."""

    job_id: str
    state: str
    exit_code: int | None = None
    reason: str | None = None
    #: the scheduler's own word for the state (``NODE_FAIL``, ``OUT_OF_MEMORY``, ``Error``), when it has one
    native_state: str | None = None
    #: what the job used and was given, from the scheduler's accounting (``None``: not known)
    usage: JobUsage | None = None


@dataclass
class JobUsage:
    """What a job was given and used, from the scheduler's accounting (SLURM's ``sacct``, OAR's job record).

    Every field may be ``None`` (not known): a job that never started has no elapsed time, a cluster without
    GPUs no GPU count. The hours are elapsed time times what was allocated, what a cluster bills.
    """

    elapsed_s: float | None = None
    cpus: int | None = None
    gpus: int | None = None
    mem_bytes: int | None = None  #: memory allocated
    max_rss_bytes: int | None = None  #: the largest resident set any step of the job reached
    nodes: str | None = None

    @property
    def cpu_hours(self) -> float | None:
        return None if self.elapsed_s is None or self.cpus is None else self.elapsed_s * self.cpus / 3600

    @property
    def gpu_hours(self) -> float | None:
        return None if self.elapsed_s is None or self.gpus is None else self.elapsed_s * self.gpus / 3600


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
    #: the interface this class implements (a class written for 0.1 is translated and marked "0.1")
    interface_version: ClassVar[str] = INTERFACE_VERSION
    #: the prefix of script directives (``#SBATCH``); empty for schedulers without directives
    directive_prefix: ClassVar[str] = ""
    #: extra options of this plugin beyond :class:`GenericOptions` and ``options``, with defaults
    extra_options: ClassVar[dict[str, Any]] = {}
    #: largest array the scheduler accepts (bigger sweeps are split), ``None`` for no limit
    max_array_size: int | None = None
    #: commands that must be on PATH, and what to tell a user who lacks them
    required_commands: ClassVar[tuple[str, ...]] = ()
    missing_commands_hint: ClassVar[str] = ""
    #: words of submit errors that pass (the controller is busy or a reply timed out): such a submission is
    #: tried again, ``mlx.scheduler.submit_retries`` times with doubling waits; any other error is final
    transient_submit_errors: ClassVar[tuple[str, ...]] = ()
    #: whether ``mlx.scheduler.pack`` means something here: a scheduler that runs every point itself on this
    #: machine (the builtin ``local`` pool) has no allocation to share between points
    supports_packing: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Translate a class written for interface 0.1, or refuse one that cannot work (:mod:`.compat`)."""
        super().__init_subclass__(**kwargs)
        check_subclass(cls, Scheduler)

    def __init__(self, **options: Any) -> None:
        generic_names = {f.name for f in dataclasses.fields(GenericOptions)}
        valid = {"options", "array", "signal_grace", "submit_retries", "submit_backoff", "submit_rate", "pack",
                 "pack_cpus", *generic_names, *self.extra_options}
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
        #: the user's ``mlx.scheduler.array``: submit a sweep as one array job when the scheduler has arrays
        self.array_requested: bool = check_bool(options.get("array", True), "mlx.scheduler.array")
        #: seconds of warning before the time limit or preemption (the stop signal is sent then)
        self.signal_grace: int = check_non_negative_int(options.get("signal_grace", 120),
                                                        "mlx.scheduler.signal_grace")
        #: how many times a submission that failed for a passing reason is tried again, and the first wait (s)
        self.submit_retries: int = check_non_negative_int(options.get("submit_retries", 5),
                                                          "mlx.scheduler.submit_retries")
        backoff = options.get("submit_backoff", 2.0)
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or not 0 <= backoff <= 600:
            raise ConfigError(f"mlx.scheduler.submit_backoff must be seconds between 0 and 600, got {backoff!r}")
        self.submit_backoff = float(backoff)
        #: at most this many submit commands a second (a sweep of one job per point on a shared login node)
        rate = options.get("submit_rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0):
            raise ConfigError(f"mlx.scheduler.submit_rate must be a positive number of submissions a second, "
                              f"got {rate!r}")
        self.submit_rate: float | None = None if rate is None else float(rate)
        #: sweep points run by one job, through a pool inside it (:mod:`mlxcore.schedulers.pack`); 1: no packing
        self.pack: int = check_positive_int(options.get("pack", 1), "mlx.scheduler.pack")
        #: CPUs each point of a pack needs: a pack job runs its allocation's CPUs // pack_cpus points at once
        self.pack_cpus: int = check_positive_int(options.get("pack_cpus", 1), "mlx.scheduler.pack_cpus")
        if self.pack > 1 and not self.supports_packing:
            raise ConfigError(f"mlx.scheduler.pack shares a cluster job between points; the {self.name} scheduler "
                              f"runs each point itself on this machine, got pack={self.pack} (remove it)")
        own = {k: v for k, v in options.items() if k in self.extra_options}
        self.options: dict[str, Any] = {**self.extra_options, **own}

    @property
    def use_array(self) -> bool:
        """Submit a sweep of several points as one array job: asked for, and the job environment has arrays."""
        return self.array_requested and self.job_environment().supports_arrays

    @use_array.setter
    def use_array(self, value: bool) -> None:
        self.array_requested = bool(value)

    @classmethod
    def from_settings(cls, options: dict[str, Any]) -> Scheduler:
        return cls(**options)

    def check_available(self) -> None:
        """Raise :class:`SchedulerError` when a required command is missing from PATH."""
        for command in self.required_commands:
            if shutil.which(command) is None:
                raise SchedulerError(f"{command!r} not found on PATH: {self.missing_commands_hint or 'install it'}")

    # -- the pieces a plugin provides ----------------------------------------------------------------------
    def directives(self, submission: Submission) -> list[str]:
        """Header lines (with :attr:`directive_prefix`) for this submission's script. Default: none."""
        return []

    def job_environment(self) -> JobEnvironment:
        """What a job of this scheduler knows of itself and how it comes back (see :class:`JobEnvironment`).

        Called when a job script is written, so it may depend on the options (SLURM requeues only with
        ``requeue``). Default: the flags of a 0.1 class translated, else a job that knows nothing and has no
        arrays.
        """
        return legacy_environment(self) or JobEnvironment()

    def submit_argv(self, submission: Submission) -> list[str]:
        """The argv that submits ``submission.script`` (used by the default :meth:`submit`)."""
        raise SchedulerError(f"scheduler {self.name!r} has no submit_argv(): it must override submit()")

    def parse_job_ids(self, output: str, submission: Submission) -> list[str]:
        """One job id per job of ``submission`` (array tasks included), from the submit command's stdout (used by
        the default :meth:`submit`).

        :raises SubmissionError: quoting ``output`` when it holds no job id.
        """
        raise SchedulerError(f"scheduler {self.name!r} has no parse_job_ids(): it must override submit()")

    def is_transient(self, error: SchedulerError) -> bool:
        """Whether a submit error passes (see :attr:`transient_submit_errors`)."""
        text = str(error).lower()
        return any(word.lower() in text for word in self.transient_submit_errors)

    def jobs_for(self, points: int) -> int:
        """How many jobs ``points`` sweep points take (array tasks counted one by one): one per ``pack`` points.
        What a submitter passes to :meth:`check_capacity`."""
        return -(-points // self.pack)

    def check_capacity(self, jobs: int) -> None:
        """Refuse, before anything is submitted, a sweep of ``jobs`` jobs (array tasks counted one by one) that
        the cluster's limits for this user would refuse part way (SLURM's MaxSubmitJobs): the arrays before
        the refused one would run while the rest never would. Default: no limit known.

        :raises SubmissionError: naming the limit, what is queued already and how many jobs fit.
        """
        return None

    def find_submitted(self, submission: Submission) -> list[str] | None:
        """The job ids of ``submission`` if the scheduler accepted it although its submit command failed (a
        reply lost to a time-out), ``[]`` if it surely did not, ``None`` if it cannot tell. Asked before a
        transient error is retried, so that a lost reply never makes a duplicate job; a scheduler that cannot
        tell gets its transient errors retried all the same."""
        return None

    @abstractmethod
    def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
        """The state of each known job, in ONE query; ids the scheduler has forgotten are left out. The states
        are the status words of the module docstring."""

    @abstractmethod
    def cancel(self, job_ids: list[str]) -> None:
        """Cancel these jobs (no error for ids that already ended); ``status`` then answers CANCELLED for them,
        or leaves them out."""

    # -- default submission: run the argv, parse its output --------------------------------------------------
    def submit(self, submission: Submission) -> list[str]:
        """Submit and return one job id per job, in ``submission.jobs`` order. Override it when there is no
        submit command whose output names the jobs (then ``submit_argv`` and ``parse_job_ids`` are not needed)."""
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

