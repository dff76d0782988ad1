"""Preemption end to end on the REAL local SLURM: the stop signal reaches the task through the job script, the
task checkpoints and returns, the run ends PREEMPTED, the job requeues itself and the requeued job resumes in
the same run directory from the checkpoint.

The signal is sent with ``scancel -s USR1 --batch`` (only the batch shell gets it, as with ``--signal=B:USR1``)
instead of waiting for SLURM's 30 s time-limit tick. A requeued job waits ``cred_expire + 1`` = 11 s before it
runs again (slurm-up.sh's slurm.conf).
"""

from __future__ import annotations

import subprocess

import pytest
from slurm_testlib import job_id, metrics, read_info, run_dirs, status_rows, wait_for_text, wait_status

from mlxcore import store
from mlxcore.testing import wait_until

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def signal_batch_shell(job: str) -> None:
    subprocess.run(["scancel", "-s", "USR1", "--batch", job], check=True, capture_output=True, text=True)


def wait_info_status(run_dir, status: str, timeout: float = 30) -> dict:
    def reached() -> dict | None:
        info = read_info(run_dir)
        return info if info["status"] == status or info.get("history") else None

    return wait_until(reached, timeout=timeout, what=f"{run_dir} to be {status}")


def test_a_preempted_array_task_checkpoints_requeues_and_resumes_in_its_run_dir(launch, logs):
    launch("x=1,2", "mode=preempt", "sleep=300")
    first, last = run_dirs(logs)
    for run_dir in (first, last):
        wait_for_text(run_dir / "log.stdout", "ready")
    # the LAST task of an array runs under the array's own job id: requeueing that id would requeue both tasks
    signal_batch_shell(job_id(last))
    info = wait_info_status(last, store.PREEMPTED)
    assert info["status"] == store.PREEMPTED and info["stop_signal"] == "SIGUSR1"
    rows = wait_status(logs, {store.PENDING}, timeout=20, ids=("2",))
    assert rows[2]["status"] == store.PENDING and "restarts=1" in rows[2]["detail"], rows  # requeued, waiting
    assert status_rows(logs, "1")[1]["status"] == store.RUNNING  # the other task was left alone
    assert read_info(first)["attempt"] == 1

    signal_batch_shell(job_id(first))
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=90)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 2, rows

    for run_dir in (first, last):
        attempts = metrics(run_dir, "attempts")
        assert [a["attempt"] for a in attempts] == [1, 2]
        assert attempts[0]["start_step"] == 0 and attempts[0]["restart_count"] is None
        assert attempts[1]["start_step"] > 0 and attempts[1]["restart_count"] == "1"  # resumed from the checkpoint
        info = read_info(run_dir)
        assert info["attempt"] == 2 and [h["status"] for h in info["history"]] == [store.PREEMPTED]
        stdout = (run_dir / "log.stdout").read_text()
        assert stdout.count("ready") == 2 and "on_stop called at step" in stdout  # the on_stop callback ran
        assert "requeueing SLURM job" in (run_dir / "log.stderr").read_text()
        assert metrics(run_dir, "end") == [{"done": 1}]
    assert len(run_dirs(logs)) == 2  # no new run directory
