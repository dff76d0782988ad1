"""OAR's job records (``oarstat -f -J``) in mlxcore's status words, and the failure class of each ended job.

A record's ``state`` alone does not say how a job ended: OAR calls a job that exited non-zero ``Terminated``
(the raw wait status is in ``exit_code``) and a job it killed ``Error``, whatever the reason. The events of
the record tell the rest, and :func:`failure_class` names them in SLURM's words, which lead the run's detail
and are the status's ``native_state``:

- ``TIMEOUT``: a ``WALLTIME`` event (killed at its walltime), or an idempotent job that exited 99 after
  sarko's checkpoint signal before the walltime (``CHECKPOINT`` "User oar (sarko) requested a checkpoint");
- ``PREEMPTED``: ``BESTEFFORT_KILL`` (a best-effort job killed for a normal one), or an exit 99 after another
  checkpoint request (``oardel -c``);
- ``NODE_FAIL``: an event by which OAR suspects the job's node (:data:`NODE_EVENTS`: unreachable at launch,
  after which OAR resubmits the job itself, or not answering the kill), or a kill (``FRAG_JOB_REQUEST``) that
  the job's owner did not ask for while its resources are Absent, Dead or Suspected: OAR kills the jobs of a
  resource set Absent or Dead, in the name of whoever runs its server (``User root requested to frag``), and
  its record keeps no other trace of why, so a node set Alive again afterwards leaves a plain deletion;
- ``RESUBMIT_JOB_AUTOMATICALLY``: OAR resubmitted the job as a new job (the description names the new id).
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
#: events by which OAR finds a node failing a job (OAR's NodeChangeState suspects the node for each); those of a
#: launch make OAR resubmit the job as a new one
NODE_EVENTS = {"PING_CHECKER_NODE_SUSPECTED", "EXTERMINATE_JOB", "CANNOT_WRITE_NODE_FILE", "CANNOT_WRITE_PID_FILE",
               "CANNOT_CREATE_TMP_DIRECTORY", "LAUNCHING_OAREXEC_TIMEOUT", "SSH_TRANSFER_TIMEOUT",
               "BAD_HASHTABLE_DUMP", "EXIT_VALUE_OAREXEC", "PROLOGUE_ERROR", "CPUSET_ERROR", "USER_SHELL"}
#: states of a resource out of service: OAR kills the jobs of a resource set Absent or Dead
DOWN_STATES = {"Absent", "Dead", "Suspected"}
#: the failure classes, in SLURM's words
TIMEOUT, PREEMPTED, NODE_FAIL = "TIMEOUT", "PREEMPTED", "NODE_FAIL"

_NEW_ID = re.compile(r"(?:=>|new id =)\s*(\d+)")
_REQUESTER = re.compile(r"^User (\S+) requested")


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


def requester(description: str) -> str | None:
    """Who asked for a kill or a checkpoint (``User mlxoar requested to frag the job 10``)."""
    match = _REQUESTER.match(description)
    return match.group(1) if match else None


def killed_for_its_node(record: dict[str, Any], resource_states: dict[str, str]) -> list[str]:
    """The resources of a job killed by someone other than its owner, without a walltime or best-effort reason,
    that are now out of service (:data:`DOWN_STATES`): OAR killed it because they were taken out."""
    events = event_types(record)
    if "FRAG_JOB_REQUEST" not in events or "WALLTIME" in events or "BESTEFFORT_KILL" in events:
        return []
    owner = record.get("job_user") or record.get("owner")
    if requester(events["FRAG_JOB_REQUEST"]) in (None, owner):
        return []
    return [str(r) for r in record.get("assigned_resources") or [] if resource_states.get(str(r)) in DOWN_STATES]


def failure_class(record: dict[str, Any], resource_states: dict[str, str] | None = None) -> str | None:
    """How an ended job failed, in SLURM's words (``TIMEOUT``, ``PREEMPTED``, ``NODE_FAIL``; see the module
    doc), or ``None``: it did not end, ended well, or failed by its own error or a deletion."""
    state = str(record.get("state") or "")
    events = event_types(record)
    if state not in ENDED:
        return None
    if NODE_EVENTS & events.keys():  # first: a job on a dead node runs on to its walltime, then cannot be killed
        return NODE_FAIL
    if "WALLTIME" in events:
        return TIMEOUT
    if "BESTEFFORT_KILL" in events:
        return PREEMPTED
    if killed_for_its_node(record, resource_states or {}):
        return NODE_FAIL
    if state == "Terminated" and decode_exit(record.get("exit_code")) == RESUBMIT_EXIT_CODE:
        checkpoint = events.get("CHECKPOINT")
        return TIMEOUT if checkpoint is not None and "(sarko)" in checkpoint else PREEMPTED
    return None


def needs_resource_states(record: dict[str, Any]) -> list[str]:
    """The resources whose state tells whether this job was killed for its node (see
    :func:`killed_for_its_node`); none for most jobs, whose status then needs no ``oarnodes`` call."""
    everything_down = {str(r): "Dead" for r in record.get("assigned_resources") or []}
    return list(everything_down) if killed_for_its_node(record, everything_down) else []


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


def job_status(job_id: str, record: dict[str, Any], resource_states: dict[str, str] | None = None) -> JobStatus:
    """One record as a :class:`JobStatus` (see the module doc for the rules), with its failure class (or else
    OAR's state) as its native word and what the job used. ``resource_states`` (``{resource id: state}``) are
    those :func:`needs_resource_states` asked for."""
    kind = failure_class(record, resource_states)
    status = _status(job_id, record, kind, resource_states or {})
    # an exit 99 OAR did not follow with a new job is a plain failure: OAR's word then says more
    shown = kind if kind and (record.get("state") != "Terminated" or resubmitted_as(record)) else None
    native = shown or str(record.get("state") or "") or None
    return dataclasses.replace(status, native_state=native, usage=job_usage(record))


def node_failure(record: dict[str, Any], resource_states: dict[str, str]) -> str:
    """What OAR says of the node failure that ended the job, led by ``NODE_FAIL`` (as SLURM's word leads)."""
    events = event_types(record)
    said = [events[kind] for kind in events if kind in NODE_EVENTS and events[kind]]
    if said:
        return f"{NODE_FAIL}: {said[0]}"
    down = killed_for_its_node(record, resource_states)
    hosts = "+".join(dict.fromkeys(map(str, record.get("assigned_network_address") or []))) or "?"
    states = "/".join(sorted({resource_states[r] for r in down}))
    return f"{NODE_FAIL}: OAR killed the job as its resource(s) {', '.join(down)} on {hosts} went {states}"


def _status(job_id: str, record: dict[str, Any], kind: str | None, resource_states: dict[str, str]) -> JobStatus:
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
            why = {TIMEOUT: "checkpointed before its walltime", PREEMPTED: "checkpointed"}.get(kind or "")
            return JobStatus(job_id, store.PENDING, exit_code=code,
                             reason=f"{kind}: {why}; {resubmitted}" if why else resubmitted)
        if code is None:
            return JobStatus(job_id, store.FAILED, reason="OAR recorded no exit code")
        return JobStatus(job_id, store.COMPLETE if code == 0 else store.FAILED, exit_code=code)
    if state in ENDED:
        if kind == TIMEOUT:
            return JobStatus(job_id, store.TIMEOUT, reason="killed by OAR at its walltime")
        if kind == PREEMPTED:
            return JobStatus(job_id, store.PREEMPTED,
                             reason="best-effort job killed by OAR for another job"
                             + (f"; {resubmitted}" if new_id else ""))
        if kind == NODE_FAIL:  # at its launch OAR resubmits the job; under a running job it does not
            reason = node_failure(record, resource_states)
            if new_id:
                return JobStatus(job_id, store.PENDING, reason=f"{reason}; {resubmitted}")
            return JobStatus(job_id, store.FAILED, reason=reason)
        if new_id:
            return JobStatus(job_id, store.PENDING, reason=resubmitted)
        if "FRAG_JOB_REQUEST" in events:
            return JobStatus(job_id, store.CANCELLED, reason=events["FRAG_JOB_REQUEST"] or "deleted (oardel)")
        telling = [d for event, d in events.items() if event not in ROUTINE_EVENTS and d]
        return JobStatus(job_id, store.FAILED, reason=telling[0] if telling else "OAR put the job in Error")
    return JobStatus(job_id, store.PENDING, reason=f"OAR state {state!r}" if state else None)
