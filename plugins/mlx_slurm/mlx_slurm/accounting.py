"""SLURM's accounting (``sacct``): what became of jobs that left the queue, and what every job used.

``squeue`` forgets a job ``MinJobAge`` seconds after it ended (300 by default) and never knows what it used.
``sacct`` asks slurmdbd, which keeps every job: its final state in SLURM's own words (``NODE_FAIL`` and
``OUT_OF_MEMORY`` are FAILED in mlxcore's, and a retry policy must tell them apart), its exit code, elapsed
time, the largest resident set of its steps and what it was allocated (TRES). One call answers for any number
of jobs: ``sacct -j`` takes whole arrays by their base id.

A cluster without slurmdbd has no ``sacct`` ("Slurm accounting storage is disabled", exit 1). That is said
once per process, as a warning naming what is lost, and the runs' own records decide as before.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from mlxcore.errors import SchedulerError
from mlxcore.schedulers.base import JobUsage, run_command

log = logging.getLogger(__name__)

#: the fields asked of ``sacct -P``, in order; ``Reason`` last as it is free text
FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "ElapsedRaw", "MaxRSS", "NodeList", "AllocTRES", "Reason")

#: what ``sacct`` prints on a cluster whose accounting storage is off
DISABLED = "accounting storage is disabled"

OFF_WARNING = ("SLURM accounting is off on this cluster (sacct: {message}): jobs that have left the queue are "
               "judged from their runs' own records, and no elapsed time, memory or CPU/GPU-hours are known; "
               "accounting needs slurmdbd (AccountingStorageType=accounting_storage/slurmdbd)")

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}

#: warnings already given in this process (``mlxcore status --watch`` asks again every few seconds)
_warned: set[str] = set()


@dataclass
class Accounted:
    """One job as ``sacct`` records it (its steps folded in)."""

    job_id: str
    state: str  # SLURM's word, first word only ("CANCELLED by 0" -> "CANCELLED")
    exit_code: int | None
    reason: str | None
    usage: JobUsage


def parse_size(text: str) -> int | None:
    """``"1234K"`` -> bytes; sacct's sizes are powers of 1024 (``MaxRSS``, ``mem=`` of TRES, default unit M
    for TRES memory is written with its unit)."""
    match = re.fullmatch(r"([0-9.]+)([KMGTP]?)", text.strip())
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def parse_tres(text: str) -> dict[str, str]:
    """``"billing=2,cpu=2,gres/gpu=1,mem=100M,node=1"`` -> ``{"cpu": "2", "gres/gpu": "1", ...}``."""
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def decode_exit(text: str) -> int | None:
    """sacct's ``ExitCode`` is ``code:signal``: the code, or 128 + the signal that killed the job."""
    code, _, signal = text.partition(":")
    if not code.isdigit():
        return None
    return 128 + int(signal) if signal.isdigit() and int(signal) else int(code)


def parse_sacct(output: str) -> dict[str, Accounted]:
    """Jobs of ``sacct -n -P -o FIELDS`` output, by ``JobID`` (``J_i`` for an array task) and by ``JobIDRaw``.

    A job's steps (``J.batch``, ``J.extern``, ``J.0``) give its largest ``MaxRSS``; the job's own line gives
    the rest.
    """
    jobs: dict[str, Accounted] = {}
    raw_of: dict[str, str] = {}
    rss: dict[str, int] = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", len(FIELDS) - 1)
        if len(parts) < len(FIELDS):
            raise SchedulerError(f"unexpected sacct output line {line!r}")
        job_id, raw_id, state, exit_code, elapsed, max_rss, nodes, tres, reason = (p.strip() for p in parts)
        base, dot, _step = job_id.partition(".")
        size = parse_size(max_rss) if max_rss else None
        if dot:  # a step: only its memory matters
            if size is not None:
                rss[base] = max(rss.get(base, 0), size)
            continue
        allocated = parse_tres(tres)  # typed GPUs (gres/gpu:a100=2) are counted in gres/gpu too
        usage = JobUsage(
            elapsed_s=float(elapsed) if elapsed.isdigit() else None,
            cpus=int(allocated["cpu"]) if allocated.get("cpu", "").isdigit() else None,
            gpus=(int(allocated["gres/gpu"]) if allocated.get("gres/gpu", "").isdigit() else 0) if allocated else None,
            mem_bytes=parse_size(allocated["mem"]) if "mem" in allocated else None,
            max_rss_bytes=size,
            nodes=None if nodes in ("", "None assigned") else nodes,
        )
        jobs[job_id] = Accounted(job_id, state.split()[0] if state else "", decode_exit(exit_code),
                                 None if reason in ("", "None") else reason, usage)
        raw_of[raw_id] = job_id
    for base, size in rss.items():
        job = jobs.get(base) or jobs.get(raw_of.get(base, ""))
        if job is not None:
            job.usage.max_rss_bytes = max(size, job.usage.max_rss_bytes or 0)
    for raw_id, job_id in raw_of.items():
        jobs.setdefault(raw_id, jobs[job_id])
    return jobs


#: above this many distinct jobs, ``sacct`` is asked about this user's jobs of the last
#: :data:`WINDOW_DAYS` days instead of a ``-j`` list (which would near the kernel's 128 KiB limit on one argument)
MAX_LISTED_JOBS = 2000
WINDOW_DAYS = 60


def sacct_argv(bases: list[str]) -> list[str]:
    argv = ["sacct", "-n", "-P", "-o", ",".join(FIELDS)]
    if len(bases) > MAX_LISTED_JOBS:
        return [*argv, "-S", f"now-{WINDOW_DAYS}days"]
    return [*argv, "-j", ",".join(bases)]


def ask(job_ids: list[str]) -> dict[str, Accounted]:
    """The accounting of ``job_ids`` (``J`` or ``J_i``) in ONE ``sacct`` call; ``{}`` when accounting is off or
    does not answer (said once per process)."""
    if not job_ids:
        return {}
    bases = list(dict.fromkeys(str(job_id).split("_", 1)[0] for job_id in job_ids))
    try:
        output = run_command(sacct_argv(bases), timeout=60)
    except SchedulerError as exc:
        message = str(exc)
        if DISABLED in message:
            warn_once(OFF_WARNING.format(message="Slurm accounting storage is disabled"))
        else:
            warn_once(f"SLURM accounting did not answer ({message}); jobs that have left the queue are judged "
                      "from their runs' own records")
        return {}
    accounted = parse_sacct(output)
    return {job_id: accounted[job_id] for job_id in map(str, job_ids) if job_id in accounted}


def warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)
