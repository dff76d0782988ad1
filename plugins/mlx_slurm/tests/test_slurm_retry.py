"""Retry by failure class on the REAL local SLURM.

TIMEOUT: a job stopped at its time limit (``--signal=B:USR1@30`` before a 1-minute limit) is requeued only if
its run saved a checkpoint since the attempt began; it then resumes in the same run directory until done. One
that saved nothing would only reach its limit again: it is not requeued and the run is FAILED, saying why.
Both jobs are submitted at the start of the session (conftest ``time_limited_runs``); these tests run last.

NODE_FAIL: the node is taken down under a running job (``scontrol update state=down``), after every other job
of the session ended (conftest ``node_failure``).
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from slurm_testlib import metrics, read_info, run_dirs, wait_status

from mlxcore import store
from mlxcore.testing import wait_until

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def test_a_job_stopped_at_its_time_limit_with_a_checkpoint_resumes_until_done(time_limited_runs):
    logs = time_limited_runs["saving"]
    rows = wait_status(logs, {store.COMPLETE, store.FAILED, store.TIMEOUT, store.CANCELLED}, timeout=300)
    (run_dir,) = run_dirs(logs)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE], (rows, (run_dir / "log.stderr").read_text())
    attempts = metrics(run_dir, "attempts")
    assert len(attempts) >= 2 and attempts[0]["start_done"] == 0, attempts
    assert all(later["start_done"] > earlier["start_done"] for earlier, later in pairwise(attempts))
    info = read_info(run_dir)
    assert [h["status"] for h in info["history"]] == [store.PREEMPTED] * (len(attempts) - 1), info["history"]
    assert info["attempt"] == len(attempts) and metrics(run_dir, "end") == [{"done": 1}]
    assert "requeueing SLURM job" in (run_dir / "log.stderr").read_text()


def test_a_job_stopped_at_its_time_limit_without_a_checkpoint_is_failed_not_requeued(time_limited_runs):
    logs = time_limited_runs["not_saving"]
    rows = wait_status(logs, {store.COMPLETE, store.FAILED, store.TIMEOUT, store.CANCELLED}, timeout=150)
    (run_dir,) = run_dirs(logs)
    (row,) = rows.values()
    assert row["status"] == store.FAILED, row
    assert row["detail"].startswith("mlxcore: stopped at its time limit with no checkpoint saved"), row
    assert len(metrics(run_dir, "attempts")) == 1 and "requeueing" not in (run_dir / "log.stderr").read_text()


def test_a_job_whose_node_fails_is_requeued_and_resumes_from_its_checkpoint(launch, logs, node_failure):
    """NODE_FAIL: SLURM requeues a ``--requeue`` job whose node went down; the new attempt learns how the one
    before ended (accounting), records it, and resumes in the same run directory from the checkpoint."""
    launch("mode=work", "work=12")
    (run_dir,) = run_dirs(logs)
    wait_until(lambda: (run_dir / "checkpoints" / "ckpt.pickle").exists(), timeout=60,
               what="the first attempt to save a checkpoint")
    node_failure()
    rows = wait_status(logs, {store.COMPLETE, store.FAILED, store.CANCELLED}, timeout=180)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE], (rows, (run_dir / "log.stderr").read_text())
    attempts = metrics(run_dir, "attempts")
    assert len(attempts) == 2 and attempts[1]["start_done"] > 0, attempts  # resumed, not started over
    info = read_info(run_dir)
    assert info["started_because"] == "NODE_FAIL" and info["attempt"] == 2, info
    (first,) = [h for h in info["history"] if "attempt" in h]
    # SLURM sends the job SIGTERM when its node goes down: the attempt records INTERRUPTED (DEAD if it could not)
    assert first["status"] in (store.INTERRUPTED, store.DEAD), first
    assert first["scheduler"]["job_id"] == info["scheduler"]["job_id"], first
