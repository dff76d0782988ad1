"""OAR's job records (``oarstat -f -J``) in mlxcore's status words.

A record's ``state`` alone does not say how a job ended: OAR calls a job that exited non-zero ``Terminated``
(the raw wait status is in ``exit_code``) and a job it killed ``Error``, whatever the reason. The events of
the record tell the rest: ``WALLTIME`` (killed at its walltime), ``BESTEFFORT_KILL`` (a best-effort job
killed for a normal one), ``FRAG_JOB_REQUEST`` (``oardel``), ``RESUBMIT_JOB_AUTOMATICALLY`` (OAR resubmitted
an idempotent job as a new job; the description names the new id).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from mlxcore import store
from mlxcore.errors import SchedulerError
from mlxcore.schedulers.base import JobStatus, JobUsage

#: states of jobs that wait, and of jobs that hold resources
WAITING = {"Waiting", "Hold", "toLaunch", "toAckReservation"}
ACTIVE = {"Launching", "Running", "Finishing", "Suspended", "Resuming"}
ENDED = {"Terminated", "Error", "toError"}

#: events every ending job has, which say nothing about why
ROUTINE_EVENTS = {"SWITCH_INTO_ERROR_STATE", "SWITCH_INTO_TERMINATE_STATE", "SEND_KILL_JOB"}
#: the exit code an idempotent job uses to be resubmitted (OAR's rule)
RESUBMIT_EXIT_CODE = 99

_NEW_ID = re.compile(r"(?:=>|new id =)\s*(\d+)")


def parse_oarstat(output: str) -> dict[str, dict[str, Any]]:
    """``oarstat -f -J`` output as ``{job id: record}`` (OAR prints nothing at all for unknown ids)."""
    if not output.strip():
        return {}
    try:
        data = json.loads(output)
    except ValueError:
        raise SchedulerError(f"oarstat -J printed no JSON: {output.strip()[:300]!r}") from None
    if not isinstance(data, dict):
        raise SchedulerError(f"oarstat -J printed {type(data).__name__}, not an object: {output.strip()[:300]!r}")
    return {str(key): value for key, value in data.items() if isinstance(value, dict)}


def event_types(record: dict[str, Any]) -> dict[str, str]:
    """``{event type: description}`` of the record (the last description of each type)."""
    return {str(e.get("type")): str(e.get("description") or "") for e in record.get("events") or []
            if isinstance(e, dict)}


def resubmitted_as(record: dict[str, Any]) -> str | None:
    """The id of the job OAR resubmitted this one as, if it did."""
    description = event_types(record).get("RESUBMIT_JOB_AUTOMATICALLY")
    if description is None:
        return None
    match = _NEW_ID.search(description)
    return match.group(1) if match else None


def decode_exit(raw: Any) -> int | None:
    """OAR's raw wait status: the exit code, or 128 + the signal that killed the job."""
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None
    signal = raw & 0x7F
    return 128 + signal if signal else (raw >> 8) & 0xFF


def job_usage(record: dict[str, Any]) -> JobUsage | None:
    """What the job was given and used, from its record: OAR keeps every job in its database, so this is its
    accounting. Each assigned resource is one core (OAR's default resource type); the elapsed time runs from
    ``startTime`` to ``stopTime`` (epoch seconds, present only once set). OAR records no memory use."""
    start, stop = record.get("startTime"), record.get("stopTime")
    if not isinstance(start, int) or isinstance(start, bool) or start <= 0:
        return None
    resources = record.get("assigned_resources") or []
    hosts = record.get("assigned_network_address") or []
    elapsed = stop - start if isinstance(stop, int) and not isinstance(stop, bool) and stop >= start else None
    return JobUsage(elapsed_s=float(elapsed) if elapsed is not None else None,
                    cpus=len(resources) if isinstance(resources, list) and resources else None,
                    nodes="+".join(dict.fromkeys(map(str, hosts))) if isinstance(hosts, list) and hosts else None)


def job_status(job_id: str, record: dict[str, Any]) -> JobStatus:
    """One record as a :class:`JobStatus` (see the module doc for the rules), with OAR's state as its native
    word and what the job used."""
    status = _status(job_id, record)
    return dataclasses.replace(status, native_state=str(record.get("state") or "") or None, usage=job_usage(record))


def _status(job_id: str, record: dict[str, Any]) -> JobStatus:
    state = str(record.get("state") or "")
    events = event_types(record)
    new_id = resubmitted_as(record)
    resubmitted = f"resubmitted by OAR as job {new_id}" if new_id else None
    if state in WAITING:
        return JobStatus(job_id, store.PENDING, reason="held (oarresume releases it)" if state == "Hold" else None)
    if state in ACTIVE:
        return JobStatus(job_id, store.RUNNING, reason=None if state in ("Running", "Launching") else state)
    if state == "Terminated":
        code = decode_exit(record.get("exit_code"))
        if new_id:  # an idempotent job that exited 99: its new job will resume the run
            return JobStatus(job_id, store.PENDING, exit_code=code, reason=resubmitted)
        if code is None:
            return JobStatus(job_id, store.FAILED, reason="OAR recorded no exit code")
        return JobStatus(job_id, store.COMPLETE if code == 0 else store.FAILED, exit_code=code)
    if state in ENDED:
        if "WALLTIME" in events:
            return JobStatus(job_id, store.TIMEOUT, reason="killed by OAR at its walltime")
        if "BESTEFFORT_KILL" in events:
            return JobStatus(job_id, store.PREEMPTED,
                             reason="best-effort job killed by OAR for another job"
                             + (f"; {resubmitted}" if new_id else ""))
        if new_id:
            return JobStatus(job_id, store.PENDING, reason=resubmitted)
        if "FRAG_JOB_REQUEST" in events:
            return JobStatus(job_id, store.CANCELLED, reason=events["FRAG_JOB_REQUEST"] or "deleted (oardel)")
        telling = [d for kind, d in events.items() if kind not in ROUTINE_EVENTS and d]
        return JobStatus(job_id, store.FAILED, reason=telling[0] if telling else "OAR put the job in Error")
    return JobStatus(job_id, store.PENDING, reason=f"OAR state {state!r}" if state else None)
