"""Retry by failure class on the REAL local OAR.

TIMEOUT: an idempotent job stopped by sarko's checkpoint signal before its walltime is resubmitted (it exits
99) only if its run saved a checkpoint since the attempt began; the new OAR job resumes in the same run
directory. One that saved nothing would only reach its walltime again: it is not resubmitted and the run is
FAILED, saying why. Both runs are submitted at the start of the session (conftest ``time_limited_runs``).

NODE_FAIL, under a running job: its resource is set Absent (``oarnodesetting -s Absent``, what an administrator
or a health check does with a failing node); OAR kills the job and does NOT resubmit it, even an idempotent
one. The run shows FAILED with NODE_FAIL while the resource is out; ``+mlx.rerun_failed=true`` resumes it from
its checkpoint in the same run directory.

NODE_FAIL at a job's launch: a node OAR cannot reach (a resource whose host is not this machine: OAR's launch
goes through ``scripts/clusters/oar-launch-wrapper.sh``, which refuses other hosts as ssh would fail to reach
them). OAR suspects the node and resubmits the job itself; the new job runs on a spare resource, records
``started_because: NODE_FAIL``, and refuses to run past ``max_node_failures``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from itertools import pairwise

import pytest
from oar_testlib import job_ids, metrics, oar_records, read_info, record, run_dirs, states, wait_for, wait_states

from mlxcore import store

pytestmark = pytest.mark.usefixtures("oar_cluster")

ENDED = {store.COMPLETE, store.FAILED, store.TIMEOUT, store.CANCELLED, store.PREEMPTED, store.DEAD}
#: the unreachable node of the launch-failure test, and the core number that fences it and its spare off
LOST_HOST, FENCE_CORE = "mlx-lost-node", 90


def test_a_job_stopped_at_its_walltime_with_a_checkpoint_is_resubmitted_and_resumes(time_limited_runs):
    run_dir = time_limited_runs["saving"]
    final = wait_states(run_dir.parent, {store.COMPLETE, store.FAILED, store.TIMEOUT, store.CANCELLED},
                        timeout=360)[int(run_dir.name)]
    stderr = (run_dir / "log.stderr").read_text()
    assert final.status == store.COMPLETE, (final, stderr)
    ids = job_ids(run_dir)
    assert len(ids) == 2, ids
    old, new = (oar_records(*ids)[i] for i in ids)
    assert old["exit_code"] >> 8 == 99 and str(new["resubmit_job_id"]) == ids[0]
    assert any("(sarko)" in e["description"] for e in old["events"] if e["type"] == "CHECKPOINT"), old["events"]
    rows = metrics(run_dir)
    assert [r["attempt"] for r in rows] == [1, 2] and rows[1]["start_step"] > 0  # resumed from its checkpoint
    info = read_info(run_dir)
    assert info["started_because"] == "TIMEOUT" and info["scheduler"]["job_id"] == ids[1], info
    (first,) = info["history"]
    assert first["status"] == store.PREEMPTED and first["scheduler"]["job_id"] == ids[0], first
    assert first["allocation"]["cpus"] == 1 and info["allocation"]["cpus"] == 1  # each attempt's cores
    assert "exiting 99 so that OAR resubmits" in stderr


def test_a_job_stopped_at_its_walltime_without_a_checkpoint_is_failed_not_resubmitted(time_limited_runs):
    run_dir = time_limited_runs["not_saving"]
    state = wait_states(run_dir.parent, ENDED, timeout=300)[int(run_dir.name)]
    assert state.status == store.FAILED, (state, (run_dir / "log.stderr").read_text())
    assert state.detail.startswith("mlxcore: stopped at its time limit with no checkpoint saved"), state
    (only,) = job_ids(run_dir)  # one attempt: OAR has nothing to resubmit
    assert oar_records(only)[only]["exit_code"] >> 8 == store.PREEMPTED_EXIT_CODE
    assert not list((run_dir / "checkpoints").glob("*"))


def test_the_task_s_own_failure_is_not_retried(time_limited_runs):
    run_dir = time_limited_runs["failing"]  # idempotent, failing after OAR's 60 s: it would be resubmitted on 99
    state = wait_states(run_dir.parent, ENDED, timeout=300)[int(run_dir.name)]
    assert (state.status, state.detail) == (store.FAILED, "ValueError: oar test failure"), state
    (only,) = job_ids(run_dir)
    old = oar_records(only)[only]
    assert old["exit_code"] >> 8 == 1 and str(old["resubmit_job_id"]) == "0", old
    assert "RESUBMIT_JOB_AUTOMATICALLY" not in {e["type"] for e in old["events"]}
    assert len(metrics(run_dir)) == 1


@pytest.fixture
def take_out() -> Iterator:
    """``take_out(resource)``: set an OAR resource Absent; every resource taken out is Alive again after the
    test, whatever happens."""
    taken: list[str] = []

    def take_out(resource: str) -> str:
        taken.append(resource)
        done = subprocess.run(["oarnodesetting", "-r", resource, "-s", "Absent"], capture_output=True, text=True,
                              timeout=120, cwd="/")
        return done.stdout

    try:
        yield take_out
    finally:
        for resource in taken:
            subprocess.run(["oarnodesetting", "-r", resource, "-s", "Alive"], capture_output=True, timeout=120,
                           cwd="/")


def test_a_job_whose_node_is_taken_out_is_node_fail_and_resumes_when_rerun(launch, logs, take_out):
    launch("mode=loop", '+mlx.scheduler.options=["-t idempotent"]')
    (run_dir,) = run_dirs(logs)
    wait_for(lambda: metrics(run_dir) and (run_dir / "checkpoints").is_dir() and list(
        (run_dir / "checkpoints").iterdir()), 180, "the first attempt to log and save a checkpoint")
    first = record(run_dir)["job_id"]
    (resource,) = map(str, oar_records(first)[first]["assigned_resources"])
    said = take_out(resource)
    assert "Deleted" in said, said  # oarnodesetting waits for OAR to kill the job
    state = wait_for(lambda: (s := states(logs)[int(run_dir.name)]).status in ENDED and s, 60, "the run to end")
    assert state.status == store.FAILED and state.native_state == "NODE_FAIL", state
    assert state.detail.startswith(f"NODE_FAIL: OAR killed the job as its resource(s) {resource} on"), state
    old = oar_records(first)[first]
    assert old["state"] == "Error" and str(old["resubmit_job_id"]) == "0"
    assert "RESUBMIT_JOB_AUTOMATICALLY" not in {e["type"] for e in old["events"]}  # OAR does not resubmit it
    assert job_ids(run_dir) == [first]

    launch("mode=loop", '+mlx.scheduler.options=["-t idempotent"]', "+mlx.rerun_failed=true")
    final = wait_states(logs, {store.COMPLETE, store.FAILED, store.CANCELLED}, timeout=180)[int(run_dir.name)]
    assert final.status == store.COMPLETE, (final, (run_dir / "log.stderr").read_text())
    rows = metrics(run_dir)
    assert [r["attempt"] for r in rows] == [1, 2] and rows[1]["start_step"] > 0  # same directory, resumed
    info = read_info(run_dir)
    (second,) = job_ids(run_dir)  # a rerun is a new submission: the job ids before it go to the history
    assert info["scheduler"]["job_id"] == second != first and info["attempt"] == 2, info
    (killed,) = [h for h in info["history"] if "attempt" in h]
    # the kill left the attempt no word: it is found dead (its writer gone)
    assert killed["scheduler"]["job_id"] == first and killed["status"] in (store.DEAD, store.INTERRUPTED), killed
    assert [h["previous_job_ids"] for h in info["history"] if h.get("event") == "resubmitted"] == [[first]]


def fenced_resources() -> dict[str, dict]:
    found = subprocess.run(["oarnodes", "--sql", f"core = {FENCE_CORE}", "-J"], capture_output=True, text=True,
                           check=True, cwd="/").stdout
    return json.loads(found) if found.strip() else {}


def set_state(state: str, *resources: str) -> None:
    for resource in resources:
        subprocess.run(["oarnodesetting", "-n", "-r", resource, "-s", state], capture_output=True, timeout=60,
                       cwd="/")


@pytest.fixture
def lost_node() -> Iterator[dict[str, str]]:
    """An unreachable node ``mlx-lost-node`` (Alive) and a spare resource on this machine (Dead until the test
    brings it), both with a ``core`` no other resource has (``-p core=90`` asks for them); both removed
    afterwards, with the jobs that ran on them (and the jobs left waiting for them are deleted). Other tests'
    jobs prefer this machine's cores (OAR orders resources by host name, then id): they could land on the
    unreachable node only if all four were busy while it is Alive."""
    for host in (LOST_HOST, "localhost"):
        subprocess.run(["oarnodesetting", "-a", "-h", host, "-p", f"host={host}", "-p", "cpu=9",
                        "-p", f"core={FENCE_CORE}", "-p", f"cpuset={FENCE_CORE}"], check=True, capture_output=True,
                       cwd="/")
    made = {str(value["network_address"]): key for key, value in fenced_resources().items()}
    set_state("Dead", made["localhost"])
    try:
        yield {"lost": made[LOST_HOST], "spare": made["localhost"]}
    finally:
        active = subprocess.run(["oarstat", "-f", "-J"], capture_output=True, text=True, cwd="/").stdout
        for job_id, job in (json.loads(active) if active.strip() else {}).items():
            if f"core={FENCE_CORE}" in str(job.get("properties", "")).replace(" ", ""):
                subprocess.run(["oardel", job_id], capture_output=True, cwd="/")
        resources = list(fenced_resources())
        set_state("Dead", *resources)
        wait_for(lambda: all(v["state"] == "Dead" for v in fenced_resources().values()), 60, "the resources dead")
        for resource in resources:
            subprocess.run(["oarremoveresource", resource], capture_output=True, cwd="/")


def test_a_job_whose_node_fails_at_launch_is_resubmitted_by_oar_up_to_max_node_failures(submitter, lost_node):
    projects = {limit: submitter.make_project(f"lost-{limit}", {"options": [f"-p core={FENCE_CORE}"],
                                                               "max_node_failures": limit}) for limit in (3, 0)}
    for project in projects.values():
        submitter.launch(project, "mode=ok")
    run_of = {limit: run_dirs(project / "logs")[0] for limit, project in projects.items()}

    def failed_at_launch(limit: int) -> bool:
        first = record(run_of[limit])["job_id"]
        return "RESUBMIT_JOB_AUTOMATICALLY" in {e["type"] for e in oar_records(first).get(first, {}).get("events", [])}

    def both_failed() -> bool:
        if all(map(failed_at_launch, run_of)):
            return True
        # OAR suspects the node at the first failure (or finaud does, every 30 s): the other job waits for it
        if fenced_resources()[lost_node["lost"]]["state"] == "Suspected":
            set_state("Alive", lost_node["lost"])
        return False

    wait_for(both_failed, 150, "both jobs to fail at their launch on the unreachable node", interval=2)
    pending = states(run_of[3].parent)[int(run_of[3].name)]
    assert pending.status in (store.SUBMITTED, store.PENDING), pending
    set_state("Dead", lost_node["lost"])
    set_state("Alive", lost_node["spare"])
    done = {limit: wait_states(run.parent, ENDED, timeout=150)[int(run.name)] for limit, run in run_of.items()}

    assert done[3].status == store.COMPLETE, (done[3], (run_of[3] / "log.stderr").read_text())
    info = read_info(run_of[3])
    assert info["started_because"] == "NODE_FAIL" and info["attempt"] == 1, info
    first, last = record(run_of[3])["job_id"], info["scheduler"]["job_id"]
    assert last != first and job_ids(run_of[3]) == [last]  # the job that failed at its launch never ran
    chain = oar_records(first, last)
    assert chain[first]["state"] == "Error" and chain[first]["assigned_network_address"] == [LOST_HOST]

    assert done[0].status == store.FAILED, done[0]
    assert done[0].detail.startswith("mlxcore: the node of this OAR job failed"), done[0]
    assert "more than mlx.scheduler.max_node_failures (0): not run again" in done[0].detail
    assert not metrics(run_of[0])  # the task never ran


def test_every_resubmission_is_one_more_attempt_in_the_history(time_limited_runs):
    """The runs' job ids and history agree: one history entry per OAR job that ran the task, in order."""
    run_dir = time_limited_runs["saving"]
    wait_states(run_dir.parent, ENDED, timeout=360)
    info = read_info(run_dir)
    ids = [*(h["scheduler"]["job_id"] for h in info["history"] if "attempt" in h), info["scheduler"]["job_id"]]
    assert ids == job_ids(run_dir)
    starts = [h["start_time"] for h in info["history"] if "attempt" in h] + [info["start_time"]]
    assert all(a < b for a, b in pairwise(starts))
