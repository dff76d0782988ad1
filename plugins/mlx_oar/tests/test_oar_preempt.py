"""Checkpoint signals, walltime, idempotent resubmission and best-effort kills on the REAL local OAR.

The three long runs of ``early_runs`` (conftest) were submitted when the session started; the tests here
check how they ended, so that their minutes of OAR time overlap the other tests.
"""

from __future__ import annotations

import subprocess

import pytest
from oar_testlib import (
    job_ids,
    metrics,
    oar_records,
    read_info,
    record,
    run,
    run_dirs,
    states,
    status_json,
    wait_for,
    wait_states,
)

from mlxcore import store

pytestmark = pytest.mark.usefixtures("oar_cluster")


def test_the_checkpoint_signal_before_the_walltime_preempts_the_run(early_runs):
    run_dir = early_runs["walltime_signal"]
    logs = run_dir.parent
    found = wait_states(logs, {store.PREEMPTED, store.FAILED, store.TIMEOUT, store.COMPLETE}, timeout=150)
    assert found[int(run_dir.name)].status == store.PREEMPTED, (run_dir / "log.stderr").read_text()
    info = read_info(run_dir)
    assert info["stop_signal"] == "SIGUSR1"  # --signal 10, sent --checkpoint 60 s before the 70 s walltime
    assert list((run_dir / "checkpoints").glob("ckpt.*"))  # the task checkpointed before it returned
    stderr = (run_dir / "log.stderr").read_text()
    assert "CHECKPOINTED with signal 10" in stderr  # OAR's own line, in the run directory through -E
    assert "#OAR --checkpoint 60" in (run_dir / "script.sh").read_text()


def test_a_job_killed_at_its_walltime_is_timeout(early_runs):
    run_dir = early_runs["timeout"]
    found = wait_states(run_dir.parent, {store.TIMEOUT, store.FAILED, store.COMPLETE, store.CANCELLED}, timeout=150)
    state = found[int(run_dir.name)]
    assert state.status == store.TIMEOUT, state
    assert state.detail == "killed by OAR at its walltime"
    assert read_info(run_dir)["status"] == store.RUNNING  # the kill left the run no chance to write a word
    assert "KILLED" in (run_dir / "log.stderr").read_text()


def test_oardel_c_checkpoints_an_idempotent_job_which_oar_resubmits_and_which_resumes(early_runs):
    run_dir = early_runs["idempotent"]
    logs = run_dir.parent
    first = record(run_dir)["job_id"]
    wait_for(lambda: states(logs)[int(run_dir.name)].status == store.RUNNING, 90, "the idempotent run to start")
    wait_for(lambda: metrics(run_dir), 30, "the task's first metric")
    signalled = subprocess.run(["oardel", "-c", first], check=True, capture_output=True, text=True)
    assert "notified to checkpoint itself" in signalled.stdout
    seen = set()

    def complete():
        state = states(logs)[int(run_dir.name)]
        seen.add((state.status, state.job_id, state.detail))
        return state if state.status in (store.COMPLETE, store.FAILED, store.CANCELLED, store.DEAD) else None

    final = wait_for(complete, 180, "the resubmitted job to resume and complete")
    assert final.status == store.COMPLETE, (final, (run_dir / "log.stderr").read_text())
    assert {s[0] for s in seen} <= {store.RUNNING, store.PENDING, store.COMPLETE}, seen  # never FAILED meanwhile
    ids = job_ids(run_dir)
    assert len(ids) == 2 and ids[0] == first and ids[1] != first, ids  # the run records both OAR jobs
    assert final.job_id == ids[1]  # status follows the new job
    old, new = (oar_records(*ids)[i] for i in ids)
    assert old["state"] == "Terminated" and old["exit_code"] >> 8 == 99
    assert str(new["resubmit_job_id"]) == first
    info = read_info(run_dir)
    assert info["scheduler"]["job_id"] == ids[1] and info["attempt"] == 2
    assert [h["status"] for h in info["history"]] == [store.PREEMPTED]
    rows = metrics(run_dir)
    assert [r["attempt"] for r in rows] == [1, 2] and rows[1]["start_step"] > 0  # resumed from its checkpoint
    assert "exiting 99 so that OAR resubmits" in (run_dir / "log.stderr").read_text()


def test_a_best_effort_job_killed_by_oar_is_preempted_then_resubmitted_and_resumed(submitter, launch, logs):
    # pinned to core 3 (the long runs keep off it), like the normal job that will need that core
    launch("mode=loop", '+mlx.scheduler.options=["-t besteffort", "-t idempotent", "-p core=3"]',
           "+mlx.scheduler.signal=null")
    (run_dir,) = run_dirs(logs)
    wait_for(lambda: metrics(run_dir), 90, "the best-effort run to start")
    first = record(run_dir)["job_id"]
    submitter.command(submitter.root, "oarsub", "-l", "core=1", "-p", "core=3", "sleep 15")
    preempted = wait_for(lambda: (s := states(logs)[int(run_dir.name)]).status == store.PREEMPTED and s, 60,
                         "OAR to kill the best-effort job")
    assert preempted.job_id == first and "killed by OAR for another job" in preempted.detail
    assert "resubmitted by OAR as job" in preempted.detail
    row = status_json(logs)[int(run_dir.name)]  # the command line says the same
    assert row["status"] == store.PREEMPTED
    final = wait_states(logs, {store.COMPLETE, store.FAILED}, timeout=120)[int(run_dir.name)]
    assert final.status == store.COMPLETE, (final, (run_dir / "log.stderr").read_text())
    ids = job_ids(run_dir)
    assert len(ids) == 2 and ids[0] == first
    assert metrics(run_dir)[-1]["start_step"] > 0
    assert run(["oarstat", "-s", "-j", first], logs).stdout.strip().endswith("Error")


def test_an_idempotent_run_preempted_past_max_resubmissions_is_left_preempted(launch, logs):
    launch("mode=loop", '+mlx.scheduler.options=["-p core<3", "-t idempotent"]', "+mlx.scheduler.max_resubmissions=0")
    (run_dir,) = run_dirs(logs)
    wait_for(lambda: metrics(run_dir), 180, "the run to start")
    first = record(run_dir)["job_id"]
    subprocess.run(["oardel", "-c", first], check=True, capture_output=True, text=True)
    final = wait_for(lambda: (s := states(logs)[int(run_dir.name)]).status not in (
        store.SUBMITTED, store.PENDING, store.RUNNING) and s, 90, "the checkpointed run to end")
    stderr = (run_dir / "log.stderr").read_text()
    assert final.status == store.PREEMPTED, (final, stderr)
    assert "after 0 resubmission(s) (mlx.scheduler.max_resubmissions): not resubmitted" in stderr
    assert job_ids(run_dir) == [first]  # no second OAR job
    assert oar_records(first)[first]["exit_code"] >> 8 != 99
