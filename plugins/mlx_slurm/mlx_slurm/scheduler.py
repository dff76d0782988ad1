"""The ``slurm`` scheduler: the pieces of :class:`mlxcore.schedulers.base.Scheduler` for SLURM.

Everything else (run directories, the job script's body, the argument file of arrays, signal forwarding,
recording job ids) is the core's. Here:

- **directives**: job name, ``--output``/``--error`` into the run directory (``--open-mode=append``, so a
  requeued job keeps what it printed), ``--array=0-N[%throttle]``, the generic resources translated, the
  stop signal ``--signal=B:USR1@<grace>`` and ``--requeue``, then the user's native options verbatim.
  Array tasks write into their run directories through the core's symlinks ``<submission>/tasks/<index>``
  (SLURM's ``%a`` is the only per-task part of a filename pattern).
- **submission**: ``sbatch --parsable SCRIPT`` (argv, never a shell string); the id is parsed from its
  output or an error quotes the output. Array task ``i`` of job ``J`` is recorded as ``J_i``. A busy
  controller ("Socket timed out", "temporarily unable to accept job") is tried again by the core with
  doubling waits; each job carries ``--comment=mlxcore:<submission token>``, so that when sbatch's reply was
  lost after the job was accepted, one ``squeue`` finds the job (:meth:`SlurmScheduler.find_submitted`)
  instead of submitting it twice.
- **status**: ONE ``squeue -h -r -t all -j J1,J2,... -O ...`` call for any number of jobs (beyond
  :data:`MAX_LISTED_JOBS` distinct jobs, one ``squeue`` of every job, filtered here), then ONE ``sacct`` call
  (:mod:`mlx_slurm.accounting`) for the jobs that ended or left the queue: their final state in SLURM's words,
  exit code and what they used. Jobs neither knows (forgotten by ``squeue`` after ``MinJobAge`` on a cluster
  without accounting, or pending array tasks cancelled one by one, which SLURM drops at once) are left out;
  the run's info and the cancel marker decide.
- **cancel**: ONE ``scancel`` with the tasks of an array folded into ``J_[0-3,7]``.
- **job environment** (:mod:`mlx_slurm.environment`): ``SLURM_JOB_ID``, ``SLURM_ARRAY_TASK_ID`` from 0, the
  checkpoint signal, and the requeue: when the task's run ended PREEMPTED (it got the stop signal and
  returned), the job script requeues its own job, which resumes in the same run directory, where
  ``load_checkpoint`` finds what the preempted attempt saved.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from mlxcore import store
from mlxcore.errors import ConfigError, SchedulerError, SubmissionError
from mlxcore.schedulers.base import JobStatus, Scheduler, Submission, run_command
from mlxcore.schedulers.submission import array_tasks_dir

from . import accounting, limits
from .environment import SlurmJobEnvironment
from .retry import RetryPolicy

log = logging.getLogger(__name__)

#: SLURM job states (``squeue %T``) in mlxcore's words
STATES: dict[str, str] = {
    "PENDING": store.PENDING, "CONFIGURING": store.PENDING, "REQUEUED": store.PENDING, "REQUEUE_HOLD": store.PENDING,
    "REQUEUE_FED": store.PENDING, "RESV_DEL_HOLD": store.PENDING, "SUSPENDED": store.PENDING,
    "RUNNING": store.RUNNING, "COMPLETING": store.RUNNING, "STAGE_OUT": store.RUNNING, "SIGNALING": store.RUNNING,
    "RESIZING": store.RUNNING,
    "COMPLETED": store.COMPLETE,
    "FAILED": store.FAILED, "NODE_FAIL": store.FAILED, "OUT_OF_MEMORY": store.FAILED, "BOOT_FAIL": store.FAILED,
    "DEADLINE": store.FAILED, "SPECIAL_EXIT": store.FAILED, "REVOKED": store.CANCELLED,
    "TIMEOUT": store.TIMEOUT,
    "CANCELLED": store.CANCELLED,
    "PREEMPTED": store.PREEMPTED,
}

#: ``squeue -O`` fields, ``|``-terminated; the reason last, as it is free text
SQUEUE_FORMAT = "JobArrayID:|,JobID:|,State:|,exit_code:|,RestartCnt:|,Reason:|"

#: options mlxcore sets itself: a native option setting them is ignored (``mlxcore sub`` scripts have them)
MANAGED_LONG = ("--output", "--error", "--array", "--open-mode", "--parsable")
MANAGED_SHORT = ("-o", "-e", "-a")

HINT = ("the slurm scheduler (plugin mlxcore-slurm) needs SLURM's client tools (sbatch, squeue, scancel, "
        "scontrol) on PATH: run on a SLURM login node, or install them (Debian: apt-get install slurm-client)")

#: the comment every job carries, followed by its submission's token (:meth:`SlurmScheduler.find_submitted`)
COMMENT_PREFIX = "mlxcore:"

#: SLURM's default MaxArraySize, used when the cluster's cannot be read
DEFAULT_MAX_ARRAY_SIZE = 1001

#: above this many distinct jobs, ``squeue`` is asked about every job instead of a ``-j`` list (the list would
#: near the kernel's 128 KiB limit on one argument)
MAX_LISTED_JOBS = 2000


def cluster_answers(timeout: float = 15) -> bool:
    """True when a SLURM controller answers ``sinfo`` and has a node that can run jobs (the tests and the
    benchmark use it to find out whether there is a cluster here)."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return False
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    usable = {"idle", "mixed", "allocated", "completing"}
    return result.returncode == 0 and any(state.strip("*~#") in usable for state in result.stdout.split())


def quote_directive(value: str) -> str:
    """``value`` for an ``#SBATCH`` line: sbatch splits on blanks, honours ``"..."`` and backslash escapes."""
    if value and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filename_pattern(path: Path | str) -> str | None:
    """``path`` as a SLURM filename pattern (``%`` doubled), or ``None`` when SLURM cannot express it: the job
    step drops every backslash of a pattern, and a directive cannot hold a newline."""
    text = str(path)
    if "\\" in text or "\n" in text:
        return None
    return text.replace("%", "%%")


def is_managed(option: str) -> bool:
    head = option.strip().split(None, 1)[0] if option.strip() else ""
    if head.startswith("--"):
        return head.split("=", 1)[0] in MANAGED_LONG
    return any(head == short or (head.startswith(short) and len(head) > 2) for short in MANAGED_SHORT)


def decode_exit(raw: str) -> int | None:
    """squeue's ``exit_code`` is a wait status: the exit code, or 128 + the signal that killed the job."""
    try:
        status = int(raw)
    except ValueError:
        return None
    signal = status & 0x7F
    return 128 + signal if signal else (status >> 8) & 0xFF


def parse_squeue(output: str) -> list[dict[str, Any]]:
    """Rows of ``squeue -h -O SQUEUE_FORMAT`` output."""
    rows = []
    for line in output.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", 5)
        if len(parts) < 6:
            raise SchedulerError(f"unexpected squeue output line {line!r}")
        array_id, raw_id, state, exit_code, restarts, reason = (p.strip() for p in parts)
        rows.append({"array_id": array_id, "raw_id": raw_id, "state": state, "exit_code": decode_exit(exit_code),
                     "restarts": int(restarts) if restarts.isdigit() else 0,
                     "reason": None if reason.rstrip("|") in ("", "None") else reason.rstrip("|")})
    return rows


class SlurmScheduler(Scheduler):
    """Submit sweeps to SLURM, as one job array by default (``mlx.scheduler.name: slurm``)."""

    name = "slurm"
    directive_prefix = "#SBATCH"
    required_commands = ("sbatch", "squeue", "scancel", "scontrol")
    missing_commands_hint = HINT
    #: sbatch's words for a controller that is busy or did not reply in time (not for a refused job)
    transient_submit_errors = ("Socket timed out", "temporarily unable to accept job",
                               "Resource temporarily unavailable", "Unable to contact slurm controller",
                               "Zero Bytes were transmitted or received")
    extra_options: ClassVar[dict[str, Any]] = {
        "requeue": True,  #: submit with --requeue, and requeue the job when its run ends PREEMPTED
        "max_requeues": 20,  #: stop requeueing after this many restarts (SLURM_RESTART_COUNT)
        "max_node_failures": 3,  #: a job whose node failed more often is not run again (SLURM requeues it)
        "retry": None,  #: failed attempts sent again: out_of_memory, memory_factor, max_mem, failed (.retry)
        "signal": "USR1",  #: sent to the job script ``signal_grace`` seconds before the time limit (B:)
        "array_throttle": None,  #: at most this many array tasks at once (``--array=0-N%throttle``)
        "max_array_size": None,  #: split arrays larger than this (default: the cluster's MaxArraySize)
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for option in self.native_options:
            if "\n" in option:
                raise ConfigError(f"mlx.scheduler.options: {option!r} holds a newline")
        kept = [o for o in self.native_options if not is_managed(o)]
        for option in self.native_options:
            if option not in kept:
                log.warning("ignoring SLURM option %r: mlxcore sets the output, error, array and open mode itself",
                            option)
        self.native_options = kept
        for key in ("max_requeues", "max_node_failures", "array_throttle", "max_array_size"):
            value = self.options[key]
            least = 0 if key in ("max_requeues", "max_node_failures") else 1
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ConfigError(f"mlx.scheduler.{key} must be a positive integer, got {value!r}")
        signal = self.options["signal"]
        if signal is not None and not (isinstance(signal, str) and re.fullmatch(r"(SIG)?[A-Z0-9]+", signal)):
            raise ConfigError(f"mlx.scheduler.signal must be a signal name like USR1, got {signal!r}")
        self.signal = signal[3:] if signal and signal.startswith("SIG") else signal
        self.max_array_size = self.options["max_array_size"]
        self.retry = RetryPolicy.from_option(self.options["retry"])

    # -- availability and cluster limits -------------------------------------------------------------------
    def check_available(self) -> None:
        super().check_available()
        if self.max_array_size is None:
            self.max_array_size = self.cluster_max_array_size()

    def cluster_max_array_size(self) -> int:
        try:
            output = run_command(["scontrol", "show", "config"], timeout=30)
        except SchedulerError as exc:
            log.debug("cannot read MaxArraySize (%s); assuming %d", exc, DEFAULT_MAX_ARRAY_SIZE)
            return DEFAULT_MAX_ARRAY_SIZE
        match = re.search(r"^MaxArraySize\s*=\s*(\d+)", output, re.MULTILINE)
        return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE

    # -- script ------------------------------------------------------------------------------------------
    def directives(self, submission: Submission) -> list[str]:
        jobs = submission.jobs
        name = jobs[0].name if not submission.array else f"mlxcore-{jobs[0].log_id}-{jobs[-1].log_id}"
        options = [f"--job-name={quote_directive(name)}"]
        stdout, stderr = self.output_patterns(submission)
        options += [f"--output={quote_directive(stdout)}", f"--error={quote_directive(stderr)}", "--open-mode=append"]
        if submission.array:
            throttle = self.options["array_throttle"]
            options.append(f"--array=0-{len(jobs) - 1}" + (f"%{throttle}" if throttle else ""))
        generic = self.generic
        if generic.time is not None:
            options.append(f"--time={self.translate_time()}")
        if generic.cpus_per_task is not None:
            options.append(f"--cpus-per-task={int(generic.cpus_per_task)}")
        if generic.gpus is not None:
            options.append(f"--gres=gpu:{int(generic.gpus)}")
        if generic.mem is not None:
            options.append(f"--mem={quote_directive(str(generic.mem))}")
        if generic.partition is not None:
            options.append(f"--partition={quote_directive(str(generic.partition))}")
        if self.signal:
            options.append(f"--signal=B:{self.signal}@{int(self.signal_grace)}")
        options.append("--requeue" if self.options["requeue"] else "--no-requeue")
        if not any(o.strip().startswith("--comment") for o in self.native_options):  # the user's own wins
            options.append(f"--comment={COMMENT_PREFIX}{submission.token}")
        options += self.native_options
        return [f"{self.directive_prefix} {option}" for option in options]

    def output_patterns(self, submission: Submission) -> tuple[str, str]:
        """``--output``/``--error`` patterns: the run directory's ``log.stdout``/``log.stderr``."""
        base = array_tasks_dir(submission) if submission.array else submission.jobs[0].run_dir
        pattern = filename_pattern(base)
        if pattern is None:
            log.warning("SLURM cannot write into %s (a backslash or newline in the path): its own messages go to "
                        "/dev/null; the task's output still goes to the run directory", base)
            return "/dev/null", "/dev/null"
        if submission.array:
            pattern += "/%a"
        return f"{pattern}/log.stdout", f"{pattern}/log.stderr"

    def job_environment(self) -> SlurmJobEnvironment:
        return SlurmJobEnvironment(checkpoint_signal=self.signal, requeue=bool(self.options["requeue"]),
                                   max_requeues=int(self.options["max_requeues"]),
                                   max_node_failures=int(self.options["max_node_failures"]), retry=self.retry)

    # -- submission ----------------------------------------------------------------------------------------
    def submit_argv(self, submission: Submission) -> list[str]:
        return ["sbatch", "--parsable", str(submission.script)]

    def parse_job_ids(self, output: str, submission: Submission) -> list[str]:
        lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
        match = re.fullmatch(r"(\d+)(;\S+)?", lines[-1]) if lines else None
        if match is None:
            raise SubmissionError(f"sbatch --parsable printed no job id: {output.strip()!r}")
        job_id = match.group(1)
        if submission.array:
            return [f"{job_id}_{index}" for index in range(len(submission.jobs))]
        return [job_id]

    def check_capacity(self, jobs: int) -> None:
        records = -(-jobs // (self.max_array_size or jobs)) if self.use_array and jobs > 1 else jobs
        limits.check(jobs, self.native_options, records)

    def find_submitted(self, submission: Submission) -> list[str] | None:
        """The jobs of ``submission`` SLURM accepted although sbatch failed, by the comment they carry; ``None``
        when they carry none (the user's ``--comment`` replaced it) or ``squeue`` does not answer."""
        if any(o.strip().startswith("--comment") for o in self.native_options):
            return None
        try:
            output = self._run(["squeue", "-h", "-t", "all", "--me", "-O", "ArrayJobID:|,JobID:|,Comment:|"])
        except SchedulerError as exc:
            log.warning("cannot ask squeue whether the submission got in (%s)", exc)
            return None
        wanted = f"{COMMENT_PREFIX}{submission.token}"
        for line in output.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 3 and parts[2] == wanted:
                base = parts[0] if parts[0].isdigit() else parts[1]
                return self.parse_job_ids(base, submission)
        return []

    # -- status and cancel ---------------------------------------------------------------------------------
    def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        bases = list(dict.fromkeys(str(job_id).split("_", 1)[0] for job_id in job_ids))
        argv = ["squeue", "-h", "-r", "-t", "all", "-O", SQUEUE_FORMAT]
        if len(bases) <= MAX_LISTED_JOBS:
            argv[-2:-2] = ["-j", ",".join(bases)]
        try:
            output = self._run(argv)
        except SchedulerError as exc:
            if "Invalid job id" not in str(exc):  # squeue's answer when the one id it was given is forgotten
                raise
            output = ""
        answer = match_rows(parse_squeue(output), map(str, job_ids))
        ended = [str(j) for j in job_ids if str(j) not in answer or answer[str(j)].state in store.FINAL_STATUSES]
        for job_id, job in accounting.ask(ended).items():
            merged = merge_accounting(job_id, answer.get(job_id), job)
            if merged is not None:
                answer[job_id] = merged
        return answer

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            self._run(["scancel", *fold_array_tasks(map(str, job_ids))])

    def _run(self, argv: list[str]) -> str:
        try:
            return run_command(argv, timeout=60)
        except SchedulerError as exc:
            if "not found on PATH" in str(exc):
                raise SchedulerError(f"{argv[0]!r} not found on PATH: {HINT}") from None
            raise


def match_rows(rows: list[dict[str, Any]], job_ids: Any) -> dict[str, JobStatus]:
    """Each job id's row: by array id (``J_i``), by raw job id, or, for an array task, by the record of its
    whole array (a pending array cancelled as a whole collapses into one row ``J``)."""
    by_array: dict[str, dict[str, Any]] = {}
    by_raw: dict[str, dict[str, Any]] = {}
    for entry in rows:
        by_array[entry["array_id"]] = entry
        by_raw.setdefault(entry["raw_id"], entry)
    out = {}
    for job_id in job_ids:
        row: dict[str, Any] | None = by_array.get(job_id) or by_raw.get(job_id)
        if row is None and "_" in job_id:
            whole = by_array.get(job_id.split("_", 1)[0])
            row = whole if whole is not None and whole["raw_id"] == whole["array_id"] else None
        if row is None:
            continue
        native = row["state"].split()[0] if row["state"] else ""
        state = STATES.get(native, store.PENDING)
        reason = telling(native, row["reason"])
        if row["restarts"]:
            reason = f"{reason}; restarts={row['restarts']}" if reason else f"restarts={row['restarts']}"
        out[job_id] = JobStatus(job_id, state, exit_code=row["exit_code"], reason=reason, native_state=native or None)
    return out


def merge_accounting(job_id: str, live: JobStatus | None, job: accounting.Accounted) -> JobStatus | None:
    """``squeue``'s answer completed by ``sacct``'s record, or ``sacct``'s alone for a job ``squeue`` forgot
    (``None`` for a word mlxcore does not know: the run's record decides). ``squeue``'s word wins: sacct lags
    behind the controller by a fraction of a second."""
    if live is not None:
        return dataclasses.replace(live, native_state=live.native_state or job.state, usage=job.usage,
                                   exit_code=live.exit_code if live.exit_code is not None else job.exit_code)
    if job.state not in STATES:
        return None
    # sacct's Reason is the job's last pending reason (BeginTime, None): for an ended job, say why it ended
    reason = END_REASONS.get(job.state)
    return JobStatus(job_id, STATES[job.state], exit_code=job.exit_code, reason=telling(job.state, reason),
                     native_state=job.state, usage=job.usage)


#: why a job ended, in the words squeue's reason gives while it still knows the job
END_REASONS = {"TIMEOUT": "TimeLimit", "NODE_FAIL": "NodeDown", "OUT_OF_MEMORY": "OutOfMemory",
               "PREEMPTED": "Preempted", "BOOT_FAIL": "BootFail", "DEADLINE": "DeadLine"}


#: SLURM's words for a failure that is not the task's own: shown first in the run's detail
TELLING = {"OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"}


def telling(native: str, reason: str | None) -> str | None:
    """The reason shown for a job, led by SLURM's word when the failure was the cluster's (a task killed for
    its memory records no error of its own)."""
    if native in TELLING and (reason is None or native not in reason):
        return f"{native}: {reason}" if reason else native
    return reason


def fold_array_tasks(job_ids: Any) -> list[str]:
    """``["7_0", "7_1", "7_2", "7_5", "9"]`` -> ``["7_[0-2,5]", "9"]``: one scancel argument per array."""
    plain: list[str] = []
    tasks: dict[str, list[int]] = {}
    for job_id in job_ids:
        base, sep, index = job_id.partition("_")
        if sep and index.isdigit():
            tasks.setdefault(base, []).append(int(index))
        else:
            plain.append(job_id)
    out = list(dict.fromkeys(plain))
    for base, indices in tasks.items():
        ranges: list[list[int]] = []
        for i in sorted(set(indices)):
            if ranges and i == ranges[-1][1] + 1:
                ranges[-1][1] = i
            else:
                ranges.append([i, i])
        out.append(f"{base}_[" + ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges) + "]")
    return out
