"""``mlxcore status`` and ``mlxcore cancel`` on the REAL local SLURM: TIMEOUT, CANCELLED, FAILED with its exit
code, forgotten jobs, one batched ``squeue`` per status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_testlib import job_id, read_info, run, run_dirs, status_rows, wait_for_text, wait_status

import mlxcore
from mlxcore import store
from mlxcore.store import read_yaml, write_yaml
from mlxcore.store.layout import CANCEL_MARKER
from mlxcore.store.layout import SCHEDULER as SCHEDULER_FILE
from mlxcore.testing import wait_until

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def mlxcore_cli(*args: str, check: bool = True, cwd: Path | None = None, env: dict[str, str] | None = None):
    return run([sys.executable, "-m", "mlxcore", *args], cwd or Path.cwd(), check=check, env=env)


def test_a_job_past_its_time_limit_is_timeout(timeout_run):
    """Submitted at the start of the session (conftest), with ``time: 1`` and a task that ignores the stop
    signal: SLURM kills it 60-90 s after it started."""
    rows = wait_status(timeout_run, {store.TIMEOUT, store.COMPLETE, store.FAILED, store.CANCELLED}, timeout=180)
    (row,) = rows.values()
    assert row["status"] == store.TIMEOUT and row["detail"] == "TimeLimit", row
    run_dir = run_dirs(timeout_run)[0]
    info = read_info(run_dir)
    assert info["status"] == store.INTERRUPTED and info["signal"] == "SIGTERM"  # what the task saw
    assert "DUE TO TIME LIMIT" in (run_dir / "log.stderr").read_text()  # slurmstepd's line, in the run dir
    table = mlxcore_cli("status", str(timeout_run)).stdout
    assert "TIMEOUT" in table and "1 run(s): 1 TIMEOUT" in table


def test_a_timeout_squeue_forgot_is_still_timeout_from_accounting(timeout_run):
    """``squeue`` forgets a job MinJobAge (300 s in slurm-up.sh's conf) after it ended; the run's own record
    says only INTERRUPTED. One ``sacct`` call still says TIMEOUT, and what the job used. The job ended a minute
    and a half into the session and this test runs last: the wait is short."""
    wait_status(timeout_run, {store.TIMEOUT, store.COMPLETE, store.FAILED, store.CANCELLED}, timeout=180)
    job = job_id(run_dirs(timeout_run)[0])

    def forgotten() -> bool:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job], capture_output=True, text=True)
        return job not in out.stdout

    wait_until(forgotten, timeout=420, interval=2, what=f"squeue to forget job {job}")
    (row,) = status_rows(timeout_run).values()
    assert (row["status"], row["detail"], row["native_state"]) == (store.TIMEOUT, "TimeLimit", "TIMEOUT"), row
    assert row["elapsed_s"] >= 60 and row["cpus"] >= 1, row


def test_a_failed_run_shows_its_exit_code_and_error(launch, logs):
    launch("x=1,2", "mode=fail")
    rows = wait_status(logs, {store.FAILED, store.COMPLETE}, timeout=60, exit_code=True)
    assert [(r["status"], r["exit_code"]) for r in rows.values()] == [(store.FAILED, 1)] * 2, rows
    assert rows[1]["detail"] == "ValueError: failing on purpose at x=1"


def test_cancel_by_id_and_by_status(launch, logs):
    launch("x=1", "mode=sleep")
    launch("x=2,3", "mode=sleep", "+mlx.scheduler.options=[--hold]")  # held: PENDING until cancelled
    first = run_dirs(logs)[0]
    wait_for_text(first / "log.stdout", "ready")
    rows = wait_status(logs, {store.RUNNING, store.PENDING}, timeout=30)
    assert [r["status"] for r in rows.values()] == [store.RUNNING, store.PENDING, store.PENDING], rows

    out = mlxcore_cli("cancel", str(logs), "1").stdout
    assert f"cancelled 1 run(s) on slurm (1): job ids {job_id(first)}" in out
    rows = wait_status(logs, {store.CANCELLED}, timeout=30, ids=("1",))
    assert rows[1]["status"] == store.CANCELLED
    assert read_info(first)["status"] == store.CANCELLED  # the task saw the marker and said so itself

    out = mlxcore_cli("cancel", str(logs), "--status", "PENDING").stdout
    assert "cancelled 2 run(s) on slurm (2, 3)" in out
    rows = wait_status(logs, {store.CANCELLED}, timeout=30)
    assert [r["status"] for r in rows.values()] == [store.CANCELLED] * 3, rows
    assert [read_info(d)["status"] for d in run_dirs(logs)[1:]] == [store.SUBMITTED] * 2  # never started
    assert "run 1: CANCELLED, nothing to cancel" in mlxcore_cli("cancel", str(logs), "1").stdout


def test_cancel_needs_a_selection(launch, logs):
    launch("x=1", "+mlx.scheduler.options=[--hold]")
    result = mlxcore_cli("cancel", str(logs), check=False)
    assert result.returncode == 2 and "say which runs to cancel" in result.stderr
    mlxcore_cli("cancel", str(logs), "--all")
    assert wait_status(logs, {store.CANCELLED}, timeout=30)[1]["status"] == store.CANCELLED


def test_cancel_by_filter(launch, logs):
    launch("x=1,2,3", "+mlx.scheduler.options=[--hold]")
    result = mlxcore_cli("cancel", str(logs), "--filter", "config.x == 2", check=False)
    if not hasattr(mlxcore, "Reader"):  # the reader is not in this installation yet: a clear error, nothing cancelled
        assert result.returncode == 2 and "--filter needs mlxcore.Reader" in result.stderr, result.stderr
        mlxcore_cli("cancel", str(logs), "2")
    else:
        assert result.returncode == 0, result.stderr
        assert "cancelled 1 run(s) on slurm (2)" in result.stdout
    rows = wait_status(logs, {store.CANCELLED}, timeout=30, ids=("2",))
    assert rows[2]["status"] == store.CANCELLED
    assert [r["status"] for r in status_rows(logs, "1", "3").values()] == [store.PENDING] * 2
    if hasattr(mlxcore, "Reader"):
        shown = mlxcore_cli("status", str(logs), "--filter", "config.x >= 2", "--json").stdout
        assert [(r["log_id"], r["status"]) for r in json.loads(shown)] == [(2, store.CANCELLED), (3, store.PENDING)]
    mlxcore_cli("cancel", str(logs), "--all")


def test_status_asks_squeue_once_for_every_job(launch, logs, tmp_path):
    """A ``squeue`` wrapper on PATH counts the calls and runs the real squeue: the answer is the cluster's."""
    launch("x=1,2,3", "+mlx.scheduler.options=[--hold]")
    launch("x=4,5", "+mlx.scheduler.options=[--hold]")
    launch("x=6", "+mlx.scheduler.options=[--hold]")
    spy = tmp_path / "spy-bin"
    spy.mkdir()
    calls = tmp_path / "squeue.calls"
    (spy / "squeue").write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec /usr/bin/squeue "$@"\n')
    (spy / "squeue").chmod(0o755)
    result = mlxcore_cli("status", str(logs), "--json", env={"PATH": f"{spy}:{os.environ['PATH']}"})
    assert calls.read_text().count("\n") == 1, calls.read_text()
    assert [row["status"] for row in json.loads(result.stdout)] == [store.PENDING] * 6
    mlxcore_cli("cancel", str(logs), "--all")
    rows = wait_status(logs, {store.CANCELLED}, timeout=30)
    assert [r["status"] for r in rows.values()] == [store.CANCELLED] * 6


def test_forgotten_jobs_are_judged_by_the_runs_info(launch, logs):
    """SLURM forgets a job MinJobAge (300 s) after it ended, and a pending array task cancelled on its own at
    once; the test points finished runs at ids the cluster never had instead of waiting."""
    launch("x=1,2,3,4")
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=60)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 4
    dirs = run_dirs(logs)
    for run_dir, forgotten in zip(dirs, ["999991", "999992_3", "999993", "999994"]):
        record = read_yaml(run_dir / "metadata" / SCHEDULER_FILE)
        write_yaml(run_dir / "metadata" / SCHEDULER_FILE, {**record, "job_id": forgotten})
    info = read_yaml(dirs[2] / "metadata" / "info.yaml")
    write_yaml(dirs[2] / "metadata" / "info.yaml", {**info, "status": store.SUBMITTED})  # it never ran
    write_yaml(dirs[3] / "metadata" / "info.yaml", {**info, "status": store.SUBMITTED})
    (dirs[3] / "metadata" / CANCEL_MARKER).touch()  # ... and was cancelled with mlxcore cancel
    rows = status_rows(logs)
    assert [(r["status"], r["detail"]) for r in rows.values()] == [
        (store.COMPLETE, None), (store.COMPLETE, None), (store.SUBMITTED, "unknown to slurm"), (store.CANCELLED, None)]
    # past the grace period, a SUBMITTED run whose job squeue no longer knows never started, and never will
    write_yaml(dirs[2] / "metadata" / SCHEDULER_FILE, {**read_yaml(dirs[2] / "metadata" / SCHEDULER_FILE),
                                                     "submit_time": "2020-01-01T00:00:00+00:00"})
    (dirs[2] / "metadata" / ".cache.json").unlink(missing_ok=True)
    rows = status_rows(logs)
    expected = (store.DEAD, "never started: job 999993 is no longer known to slurm")
    assert (rows[3]["status"], rows[3]["detail"]) == expected
    from mlx_slurm.scheduler import SlurmScheduler

    assert SlurmScheduler().status(["999991"]) == {}  # squeue exits 1 for a single unknown id
    assert SlurmScheduler().status(["999991", "999992_3"]) == {}  # ... and 0 for several
