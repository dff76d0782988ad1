"""How the OAR job before this one ended, asked by a job that OAR resubmitted (run by its job script).

OAR restarts a job under a NEW id: an idempotent job that exited 99 (mlxcore's answer to a checkpoint signal:
a preemption, or the walltime coming), a best-effort idempotent job it killed, and any job whose node failed
at its launch (:data:`mlx_oar.records.NODE_EVENTS`). The new job's record names the one it replaces
(``resubmit_job_id``), and so on back to the job first submitted. The job script runs
``python -m mlx_oar.attempts JOB_IDS_FILE`` at the start of an attempt that may be such a restart and reads
one line, ``<started_because> <node failures>``:

- ``started_because``: how the job before ended (``TIMEOUT``, ``PREEMPTED``, ``NODE_FAIL``, or OAR's state),
  ``-`` for a job that is no resubmission; the run records it with this attempt (``started_because``);
- ``node failures``: how many jobs of the chain OAR resubmitted because their node failed; above
  ``mlx.scheduler.max_node_failures`` the job script runs the task no more (OAR itself would resubmit a job
  whose nodes keep failing at launch for ever).

The records of the run's attempts so far (its job ids file) come in ONE ``oarstat`` call; only jobs that never
ran the script (they failed at their launch) are asked for one by one. Any failure prints ``- 0`` and a line on
stderr: a missing answer must not keep the task from running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .records import NODE_FAIL, failure_class, parse_oarstat

#: never follow a chain of resubmissions further than this (a loop in OAR's records would not end)
MAX_CHAIN = 500

Records = dict[str, dict[str, Any]]


def oarstat(job_ids: list[str]) -> Records:
    """OAR's full records of these jobs, in one call."""
    argv = ["oarstat", "-f", "-J"]
    for job_id in job_ids:
        argv += ["-j", job_id]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"oarstat failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    return parse_oarstat(proc.stdout)


def previous_jobs(job_id: str, known: Records, fetch: Callable[[list[str]], Records]) -> list[dict[str, Any]]:
    """The records of the jobs ``job_id`` was resubmitted from, the latest first."""
    chain: list[dict[str, Any]] = []
    seen = {job_id}
    current = known.get(job_id) or fetch([job_id]).get(job_id) or {}
    while len(chain) < MAX_CHAIN:
        before = str(current.get("resubmit_job_id") or "0")
        if not before.isdigit() or int(before) == 0 or before in seen:
            break
        seen.add(before)
        current = known.get(before) or fetch([before]).get(before) or {}
        if not current:
            break
        chain.append(current)
    return chain


def summary(chain: list[dict[str, Any]]) -> tuple[str, int]:
    """``(started_because, node failures)`` of an attempt whose previous jobs are ``chain`` (latest first)."""
    if not chain:
        return "-", 0
    last = chain[0]
    because = failure_class(last) or str(last.get("state") or "-")
    return because, sum(1 for record in chain if failure_class(record) == NODE_FAIL)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job_id = os.environ.get("OAR_JOB_ID", "")
    try:
        if not job_id.isdigit():
            raise RuntimeError("OAR_JOB_ID is not set: not inside an OAR job")
        ids_file = Path(args[0]) if args else None
        earlier = ids_file.read_text().split() if ids_file is not None and ids_file.exists() else []
        known = oarstat(list(dict.fromkeys([job_id, *(i for i in earlier if i.isdigit())])))
        because, failures = summary(previous_jobs(job_id, known, oarstat))
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the task still runs
        print(f"mlxcore: cannot tell how the OAR job before this one ended: {exc}", file=sys.stderr)
        because, failures = "-", 0
    print(f"{because} {failures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
