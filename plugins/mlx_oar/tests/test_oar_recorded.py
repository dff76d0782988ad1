"""The failure classes on OAR's own records, recorded on the real local OAR (``recorded/``, see its README):
the status each record gives and what a resubmitted job learns of the job before it. No cluster needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlx_oar.attempts import previous_jobs, summary
from mlx_oar.records import failure_class, job_status, needs_resource_states, parse_oarstat
from mlxcore import store

RECORDED = Path(__file__).resolve().parent / "recorded"


def recorded(name: str) -> dict[str, dict[str, Any]]:
    return parse_oarstat((RECORDED / f"{name}.json").read_text())


def resource_states(name: str) -> dict[str, str]:
    return {key: value["state"] for key, value in json.loads((RECORDED / f"{name}.json").read_text()).items()}


@pytest.mark.parametrize(("name", "job_id", "state", "native", "reason"), [
    ("walltime_kill", "4", store.TIMEOUT, "TIMEOUT", "killed by OAR at its walltime"),
    ("walltime_checkpoint", "3", store.PENDING, "TIMEOUT",
     "TIMEOUT: checkpointed before its walltime; resubmitted by OAR as job 8"),
    ("besteffort_kill", "9", store.PREEMPTED, "PREEMPTED",
     "best-effort job killed by OAR for another job; resubmitted by OAR as job 13"),
    ("node_unreachable_at_launch", "6", store.PENDING, "NODE_FAIL",
     "NODE_FAIL: [bipbip] OAR suspects nodes for the job 6 : a-lost-node; resubmitted by OAR as job 7"),
    ("node_unreachable_at_launch", "7", store.COMPLETE, "Terminated", None),
    ("exit_code", "5", store.FAILED, "Terminated", None),
    ("user_delete", "10", store.CANCELLED, "Error", "User mlxoar requested to frag the job 10"),
    # an exit 99 that ran under OAR's 60 s is not resubmitted: a plain failure, in OAR's word
    ("user_checkpoint", "11", store.FAILED, "Terminated", None),
])
def test_each_record_gives_its_class(name, job_id, state, native, reason):
    status = job_status(job_id, recorded(name)[job_id])
    assert (status.state, status.native_state, status.reason) == (state, native, reason)
    assert needs_resource_states(recorded(name)[job_id]) == []  # no oarnodes call for these


def test_a_job_killed_as_its_resource_went_absent_is_node_fail_while_the_resource_is_out():
    record = recorded("node_absent")["2"]
    assert needs_resource_states(record) == ["2"]  # killed by root, not by its owner: ask the resource
    out = job_status("2", record, resource_states("node_absent_resources"))
    assert (out.state, out.native_state) == (store.FAILED, "NODE_FAIL")
    assert out.reason == "NODE_FAIL: OAR killed the job as its resource(s) 2 on localhost went Absent"
    back = job_status("2", record, {"2": "Alive"})  # the node is back: OAR's record says only who killed it
    assert (back.state, back.reason) == (store.CANCELLED, "User root requested to frag the job 2")


def test_a_job_oar_could_not_kill_on_its_node_is_node_fail_even_at_its_walltime():
    record = recorded("walltime_kill")["4"]  # from OAR's source: Leon could not reach the node to kill the job
    dead_node = {**record, "events": [*record["events"], {"type": "EXTERMINATE_JOB", "description":
                                                          "[Leon] I exterminate the job 4"}]}
    out = job_status("4", dead_node)
    assert (out.state, out.native_state) == (store.FAILED, "NODE_FAIL")
    assert out.reason == "NODE_FAIL: [Leon] I exterminate the job 4"


def test_a_deletion_by_the_owner_is_never_a_node_failure():
    record = recorded("user_delete")["10"]
    assert failure_class(record, {"3": "Absent", str(record["assigned_resources"][0]): "Dead"}) is None


def test_a_resubmitted_job_learns_how_the_one_before_ended_and_counts_node_failures():
    def fetch_from(records):
        asked = []

        def fetch(ids):
            asked.extend(ids)
            return {i: records[i] for i in ids if i in records}

        return fetch, asked

    launch = recorded("node_unreachable_at_launch")
    fetch, asked = fetch_from(launch)
    assert summary(previous_jobs("7", {"7": launch["7"]}, fetch)) == ("NODE_FAIL", 1)
    assert asked == ["6"]  # the job that never ran the script is asked for on its own

    walltime = {**recorded("walltime_checkpoint"), "8": {"resubmit_job_id": 3}}
    assert summary(previous_jobs("8", walltime, fetch_from(walltime)[0])) == ("TIMEOUT", 0)
    besteffort = recorded("besteffort_kill")
    assert summary(previous_jobs("13", besteffort, fetch_from(besteffort)[0])) == ("PREEMPTED", 0)

    # a chain of three launch failures, and one that loops on itself (never followed for ever)
    chain = {str(i): {**launch["6"], "Job_Id": i, "resubmit_job_id": i - 1 if i > 20 else 0} for i in (20, 21, 22)}
    chain["23"] = {"state": "Running", "resubmit_job_id": 22}
    assert summary(previous_jobs("23", chain, fetch_from(chain)[0])) == ("NODE_FAIL", 3)
    loop = {"30": {"resubmit_job_id": 31}, "31": {"state": "Error", "resubmit_job_id": 30}}
    assert summary(previous_jobs("30", loop, fetch_from(loop)[0])) == ("Error", 0)
    assert summary(previous_jobs("7", {"7": launch["7"]}, lambda ids: {})) == ("-", 0)
    assert summary(previous_jobs("5", recorded("exit_code"), fetch_from({})[0])) == ("-", 0)
