"""Resubmitting an attempt SLURM ended for a reason a new attempt can fix: from inside the failed job.

SLURM requeues a preempted job (the job script asks it to) and a ``--requeue`` job whose node failed, but it
never runs again a job it killed for going over its memory. mlxcore has no daemon to notice, and needs none:
under SLURM's cgroup memory enforcement the kernel kills the task, not the batch shell, which sees the task
die (exit 137) and runs ``python -m mlx_slurm.retry`` (the job environment's ``failure_lines``). That checks,
in the job's own memory cgroup, that the kernel's out-of-memory killer did it (``oom_kill`` in
``memory.oom_control``, cgroup v1, or ``memory.events``, v2), and per ``mlx.scheduler.retry``:

- ``out_of_memory`` (default 2): resubmits the attempt with the memory SLURM gave the job times
  ``memory_factor`` (2), never above ``max_mem``;
- ``failed`` (default 0): the task's own failure (its run recorded FAILED) is resubmitted as it was, only
  when asked.

The same job script is submitted again for this array index only (``sbatch --array=7 --mem=... SCRIPT``: the
command line wins over the script's directives), with ``--dependency=afterany`` on the failing job, so the new
attempt starts once this one is gone, runs the same point and resumes in the same run directory. The run goes
SUBMITTED again through the run store (the ended attempt, with its reason and resources, goes to its
``history``); its submission record names the new job and keeps each retry (``retries``); the new attempt's
``started_because`` says why it runs. A run that is not resubmitted (its retries spent, the memory cap
reached, sbatch refused) keeps its failure with a job error line saying why; a run whose cancel was requested
is left alone. Nothing else is submitted: a sweep with no failure costs no job and no ``sbatch`` call more.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlxcore import store
from mlxcore.errors import ConfigError, RunError, SchedulerError, UnknownChoiceError
from mlxcore.schedulers.base import run_command
from mlxcore.settings_checks import check_memory, check_non_negative_int

#: the exit status of a task the kernel killed (SIGKILL), as bash reports it
KILLED = 137
#: the variable the new attempt finds its reason in (mlxcore.schedulers.environment.STARTED_BECAUSE_VARIABLE)
STARTED_BECAUSE = "MLXCORE_STARTED_BECAUSE"


@dataclass(frozen=True)
class RetryPolicy:
    """``mlx.scheduler.retry``: how many times each failure class is resubmitted, and with what memory."""

    out_of_memory: int = 2
    memory_factor: float = 2.0
    max_mem: str | None = None  #: never ask for more than this (``64G``); ``None``: no cap but the count
    failed: int = 0

    @classmethod
    def from_option(cls, value: Any) -> RetryPolicy:
        """The policy of ``mlx.scheduler.retry`` (a mapping; an unknown key or a bad value is refused)."""
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise ConfigError(f"mlx.scheduler.retry must be a mapping such as {{out_of_memory: 2}}, got {value!r}")
        valid = list(asdict(cls()))
        for key in value:
            if key not in valid:
                raise UnknownChoiceError("mlx.scheduler.retry key", key, valid)
        out_of_memory = check_non_negative_int(value.get("out_of_memory", 2), "mlx.scheduler.retry.out_of_memory")
        failed = check_non_negative_int(value.get("failed", 0), "mlx.scheduler.retry.failed")
        factor = value.get("memory_factor", 2.0)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 1 < factor <= 16:
            raise ConfigError(f"mlx.scheduler.retry.memory_factor must be a number above 1 and at most 16, "
                              f"got {factor!r}")
        cap = value.get("max_mem")
        if cap is not None:
            check_memory(cap, "mlx.scheduler.retry.max_mem")
        return cls(out_of_memory, float(factor), None if cap is None else str(cap), failed)

    @property
    def active(self) -> bool:
        return self.out_of_memory > 0 or self.failed > 0


def megabytes(text: str) -> int:
    """``"4G"`` -> 4096, in SLURM's units: a bare number is megabytes."""
    found = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([KMGT]?)B?", str(text).strip().upper())
    if not found:
        raise ConfigError(f"not a memory size: {text!r}")
    scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[found.group(2)]
    return math.ceil(float(found.group(1)) * scale)


def show_mb(mb: int | None) -> str | None:
    """Megabytes as SLURM writes them (``2G``, ``300M``)."""
    if mb is None:
        return None
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


# -- inside the failed job ---------------------------------------------------------------------------------------
def oom_killed(cgroup_file: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> bool:
    """Whether the kernel's out-of-memory killer killed a process of this job's memory cgroup (the batch step's
    or the job's): ``oom_kill`` of ``memory.oom_control`` (cgroup v1) or ``memory.events`` (v2)."""
    try:
        lines = Path(cgroup_file).read_text().splitlines()
    except OSError:
        return False
    candidates = []
    for line in lines:
        _, controllers, path = [*line.split(":", 2), "", ""][:3]
        if "memory" in controllers.split(","):
            candidates += [(Path(root, "memory", path.lstrip("/")), "memory.oom_control")]
        elif controllers == "":
            candidates += [(Path(root, path.lstrip("/")), "memory.events")]
    for directory, name in candidates:
        for level in (directory, directory.parent, directory.parent.parent):  # step, job (and uid) cgroups
            try:
                text = (level / name).read_text()
            except OSError:
                continue
            for entry in text.splitlines():
                key, _, count = entry.partition(" ")
                if key in ("oom_kill", "oom_group_kill") and count.strip().isdigit() and int(count) > 0:
                    return True
    return False


@dataclass
class Attempt:
    """The failed attempt, as the job sees it."""

    job_id: str  #: ``J_i`` for an array task, ``J``
    array_index: int | None
    mem_mb: int | None  #: the memory SLURM gave the job (``SLURM_MEM_PER_NODE``, or per CPU times CPUs)

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Attempt:
        env = dict(os.environ if environ is None else environ)
        index = env.get("SLURM_ARRAY_TASK_ID", "")
        array = env.get("SLURM_ARRAY_JOB_ID", "")
        job = f"{array}_{index}" if index.isdigit() and array else env.get("SLURM_JOB_ID", "")
        mem = env.get("SLURM_MEM_PER_NODE", "")
        per_cpu, cpus = env.get("SLURM_MEM_PER_CPU", ""), env.get("SLURM_CPUS_ON_NODE", "")
        mem_mb = int(mem) if mem.isdigit() else (int(per_cpu) * int(cpus) if per_cpu.isdigit() and cpus.isdigit()
                                                  else None)
        return cls(job, int(index) if index.isdigit() else None, mem_mb)


def decide(policy: RetryPolicy, run: store.Run, attempt: Attempt, code: int, oom: bool
           ) -> tuple[str, int | None] | str | None:
    """``(reason, memory in MB)`` to resubmit with (``None`` memory: as before), a string to refuse with (the
    run's job error), or ``None`` to leave the run as it is."""
    record = run.scheduler_record() or {}
    if str(record.get("job_id")) != attempt.job_id or run.cancel_requested():
        return None  # submitted again since, or cancelled: not this job's to resubmit
    status = store.effective_status(run.read_info(), run.root)
    if status in (store.COMPLETE, store.RUNNING, store.PREEMPTED):
        return None
    reason = "OUT_OF_MEMORY" if code == KILLED and oom else "FAILED" if status == store.FAILED else None
    if reason is None:
        return None
    limit = policy.out_of_memory if reason == "OUT_OF_MEMORY" else policy.failed
    tries = sum(1 for r in record.get("retries", []) if isinstance(r, dict) and r.get("reason") == reason)
    if limit == 0:
        return None
    if tries >= limit:
        return (f"mlxcore: {reason} {tries + 1} times: not resubmitted again (mlx.scheduler.retry."
                f"{reason.lower()}={limit})")
    if reason == "FAILED":
        return reason, None
    if attempt.mem_mb is None:
        return "mlxcore: OUT_OF_MEMORY, but the job does not know its memory: not resubmitted (set mlx.scheduler.mem)"
    cap = None if policy.max_mem is None else megabytes(policy.max_mem)
    if cap is not None and attempt.mem_mb >= cap:
        return (f"mlxcore: OUT_OF_MEMORY with {show_mb(attempt.mem_mb)}, the cap mlx.scheduler.retry.max_mem="
                f"{policy.max_mem}: not resubmitted")
    wanted = math.ceil(attempt.mem_mb * policy.memory_factor)
    return reason, wanted if cap is None else min(wanted, cap)


def resubmit(run: store.Run, attempt: Attempt, script: str, reason: str, mem_mb: int | None) -> str | None:
    """Send the run again (SUBMITTED, its ended attempt to history), after this job; return the new job id, or
    ``None`` when sbatch refused (said in the run's job error)."""
    from mlxcore.store.batch import SubmissionBatch

    record = run.scheduler_record() or {}
    old_mem = show_mb(attempt.mem_mb)
    ended: dict[str, Any] = {"resources": {**(record.get("resources") or {}), "mem": old_mem}}
    if store.effective_status(run.read_info(), run.root) == store.DEAD:  # killed: it recorded no error
        ended["error"] = {"type": reason, "message": f"SLURM job {attempt.job_id} ended {reason}" + (
            f" with {old_mem}" if old_mem and reason == "OUT_OF_MEMORY" else "")}
    run.update_info(**ended)
    resources = {**(record.get("resources") or {}), "mem": show_mb(mem_mb) if mem_mb is not None else old_mem}
    batch = SubmissionBatch(store.RunStore(run.root.parent))
    batch.add({"submit_time": store.now_iso(), "resources": resources}, {}, None, log_id=run.log_id)
    argv = ["sbatch", "--parsable", f"--dependency=afterany:{attempt.job_id}"]
    if mem_mb is not None:
        argv.append(f"--mem={mem_mb}M")
    if attempt.array_index is not None:
        argv.append(f"--array={attempt.array_index}")
    argv.append(script)
    # this job's own SLURM_* variables describe it, not the new one: only the cluster's config stays (the
    # submitter's SBATCH_* input variables, exported into this job, stay: they chose its account, partition...).
    # sbatch inherits this short-lived process's environment, so they are dropped from it
    for name in [k for k in os.environ if k.startswith("SLURM_") and k != "SLURM_CONF"]:
        del os.environ[name]
    try:
        output = _sbatch(argv, {STARTED_BECAUSE: reason})
    except SchedulerError as exc:
        batch.abandon()
        run.record_job_error(f"mlxcore: {reason}; resubmitting it failed: {exc}")
        print(f"mlxcore: {reason}; resubmitting run {run.log_id} failed: {exc}", file=sys.stderr, flush=True)
        return None
    base = output.strip().split(";", 1)[0]
    job_id = f"{base}_{attempt.array_index}" if attempt.array_index is not None else base
    retry = {"time": store.now_iso(), "job_id": attempt.job_id, "reason": reason, "mem": old_mem}
    run.record_submission({**record, "job_id": job_id, "submit_time": store.now_iso(), "resources": resources,
                           "retries": [*record.get("retries", []), retry]})
    print(f"mlxcore: {reason}: run {run.log_id} resubmitted as SLURM job {job_id}"
          + (f" with {show_mb(mem_mb)}" if mem_mb is not None else ""), file=sys.stderr, flush=True)
    return job_id


def _sbatch(argv: list[str], env: dict[str, str], tries: int = 5) -> str:
    """sbatch, tried again while the controller is busy (the scheduler's transient errors)."""
    from .scheduler import SlurmScheduler

    for attempt in range(tries):
        try:
            return run_command(argv, timeout=120, env_extra=env)
        except SchedulerError as exc:
            transient = any(w.lower() in str(exc).lower() for w in SlurmScheduler.transient_submit_errors)
            if attempt == tries - 1 or not transient:
                raise
            time.sleep(min(2.0 * 2**attempt, 60.0))
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlx_slurm.retry", description=__doc__.split("\n")[0])
    parser.add_argument("policy", help="mlx.scheduler.retry, as JSON (written into the job script)")
    parser.add_argument("script", help="the job script to submit again")
    parser.add_argument("run_dir")
    parser.add_argument("code", type=int, help="the task's exit status")
    args = parser.parse_args(argv)
    policy = RetryPolicy(**json.loads(args.policy))
    try:
        run = store.open_run_dir(args.run_dir)
    except RunError:  # a pack of points (mlxcore.schedulers.pack): its points' runs record their own ends
        print(f"mlxcore: {args.run_dir} is not one run: its failure (exit {args.code}) is not resubmitted",
              file=sys.stderr, flush=True)
        return 0
    attempt = Attempt.from_environment()
    verdict = decide(policy, run, attempt, args.code, oom_killed() if args.code == KILLED else False)
    if isinstance(verdict, str):
        run.record_job_error(verdict)
        print(verdict, file=sys.stderr, flush=True)
    elif verdict is not None:
        resubmit(run, attempt, args.script, *verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
