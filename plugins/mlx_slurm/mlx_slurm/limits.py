"""The per-user submission limits of a SLURM cluster: how many more jobs this user may queue.

SLURM counts every array task against ``MaxSubmitJobs`` (of the user's association) and ``MaxSubmitJobsPerUser``
(of the QOS the job runs under), and refuses a submission beyond them with ``QOSMaxSubmitJobPerUserLimit`` or
``AssocMaxSubmitJobLimit``. A sweep split into several arrays would then be half submitted: the arrays before
the refused one run, the rest never. So the limits are read before anything is sent (``sacctmgr``, one call
each) and a sweep that does not fit is refused whole, with the numbers. Limits are enforced only when the
cluster says so (``AccountingStorageEnforce`` with ``limits``); without accounting there is nothing to read.

The cluster itself holds at most ``MaxJobCount`` job records (every user's, ended jobs included until
``MinJobAge`` passed; a pending array is one record until its tasks start): beyond it sbatch fails with
"Resource temporarily unavailable". A sweep of one job per point that would not fit is refused the same way.
"""

from __future__ import annotations

import getpass
import logging
import re
from dataclasses import dataclass

from mlxcore.errors import SchedulerError, SubmissionError
from mlxcore.schedulers.base import run_command

log = logging.getLogger(__name__)

#: squeue states of jobs that count against the submit limits
QUEUED_STATES = "PENDING,RUNNING,SUSPENDED,CONFIGURING,COMPLETING,REQUEUED,REQUEUE_HOLD,REQUEUE_FED"


@dataclass
class Limit:
    """One limit on how many jobs the user may have queued, and which of their jobs it counts."""

    name: str  # how SLURM calls it, for the message
    value: int
    qos: str | None  # count only the jobs of this QOS (a QOS limit), or all the user's jobs (None)


def qos_of(native_options: list[str]) -> str | None:
    """The QOS a submission asks for (``--qos=X``, ``-q X``), ``None`` for the association's default."""
    for option in native_options:
        match = re.fullmatch(r"\s*(?:--qos[= ]|-q\s*)(\S+)\s*", option)
        if match:
            return match.group(1)
    return None


def read_limits(config: str, qos: str | None) -> list[Limit]:
    """The limits that apply to this user's jobs under ``qos`` (the association's default when ``None``), on a
    cluster whose ``scontrol show config`` is ``config``."""
    enforce = re.search(r"^AccountingStorageEnforce\s*=\s*(\S+)", config, re.MULTILINE)
    if not enforce or ("limits" not in enforce.group(1) and "qos" not in enforce.group(1)):
        return []
    user = getpass.getuser()
    assoc = run_command(["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}",
                         "format=MaxSubmit,DefaultQOS"], timeout=30)
    limits = []
    default_qos = None
    for line in assoc.splitlines():
        max_submit, _, default = line.partition("|")
        if max_submit.strip().isdigit():
            limits.append(Limit("MaxSubmitJobs of your association", int(max_submit), None))
        default_qos = default_qos or default.strip() or None
    name = qos or default_qos or "normal"
    per_user = run_command(["sacctmgr", "-n", "-P", "show", "qos", name, "format=MaxSubmitPU"], timeout=30)
    for line in per_user.splitlines():
        if line.strip().isdigit():
            limits.append(Limit(f"MaxSubmitJobsPerUser of QOS {name}", int(line), name))
    return limits


def queued(qos: str | None) -> int:
    """How many jobs (array tasks one by one) this user has queued or running, in ``qos`` or in all."""
    argv = ["squeue", "-h", "-r", "--me", "-t", QUEUED_STATES, "-o", "%i"]
    if qos:
        argv += ["-q", qos]
    return len(run_command(argv, timeout=60).split())


def check_records(config: str, records: int) -> None:
    """Refuse a sweep whose ``records`` new job records the cluster's ``MaxJobCount`` has no room for."""
    found = re.search(r"^MaxJobCount\s*=\s*(\d+)", config, re.MULTILINE)
    if not found:
        return
    limit = int(found.group(1))
    held = len(run_command(["squeue", "-h", "-t", "all", "-o", "%i"], timeout=60).split())
    room = max(0, limit - held)
    if records > room:
        raise SubmissionError(
            f"this sweep needs {records} SLURM job record(s), but the cluster's MaxJobCount is {limit} and it holds "
            f"{held} (every user's, ended jobs included for MinJobAge): {room} more fit. Submit it as arrays "
            "(mlx.scheduler.array=true, a pending array is one record), fewer points, or later; nothing was "
            "submitted")


def check(jobs: int, native_options: list[str], records: int | None = None) -> None:
    """Refuse a sweep of ``jobs`` jobs (``records`` new job records: one per array while it waits) that the
    user's limits or the cluster's ``MaxJobCount`` would refuse part way.

    :raises SubmissionError: naming the limit, the jobs already queued and how many fit.
    """
    try:
        config = run_command(["scontrol", "show", "config"], timeout=30)
        check_records(config, jobs if records is None else records)
        limits = read_limits(config, qos_of(native_options))
    except SchedulerError as exc:  # no accounting, or sacctmgr refused: SLURM itself will say, per sbatch
        if isinstance(exc, SubmissionError):
            raise
        log.debug("cannot read the submission limits: %s", exc)
        return
    for limit in limits:
        count = queued(limit.qos)
        room = max(0, limit.value - count)
        if jobs > room:
            raise SubmissionError(
                f"this sweep needs {jobs} SLURM job(s), but the {limit.name} is {limit.value} and you have {count} "
                f"queued: {room} more fit. Submit at most {room} point(s), wait for queued jobs to end, or ask "
                "for another QOS (+mlx.scheduler.options=[--qos=...]); nothing was submitted")
