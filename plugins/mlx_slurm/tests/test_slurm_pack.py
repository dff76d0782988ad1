"""Packing on the REAL local SLURM (``+mlx.scheduler.pack=K``): K points per array task, each in its own run.

A pack job runs ``python -m mlxcore.schedulers.pack`` through the shared job script; its points run through a
local pool inside the allocation (``--cpus-per-task=2``: two at a time) and write their own run directories.
The stop signal is sent with ``scancel -s USR1 --batch`` (only the batch shell gets it, as with
``--signal=B:USR1``); a requeued job waits ``cred_expire + 1`` = 11 s before it runs again (slurm-up.sh).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slurm_testlib import job_id, metrics, quote, read_info, run, run_dirs, status_rows, wait_for_text, wait_status

from mlxcore import store
from mlxcore.testing import wait_until

pytestmark = pytest.mark.usefixtures("slurm_cluster")

TASK = Path(__file__).resolve().parent / "tasks" / "pack_task.py"


@pytest.fixture
def launch_packed(tmp_path: Path, logs: Path) -> Iterator[Callable[..., subprocess.CompletedProcess]]:
    """``launch_packed("x=1,2", pack=3)``: submit the pack task to SLURM, packed, with 2 CPUs per job; the
    jobs it submitted are cancelled at the end whatever happened (never anybody else's)."""
    def launch(*overrides: str, pack: int) -> subprocess.CompletedProcess:
        argv = [sys.executable, str(TASK), *overrides, f"+mlx.logger.parent_log_dir={quote(str(logs))}",
                "+mlx.use_scheduler=true", "+mlx.scheduler.name=slurm", f"+mlx.scheduler.pack={pack}",
                "+mlx.scheduler.cpus_per_task=2"]
        return run(argv, tmp_path)

    yield launch
    mine = sorted({job_id(d).split("_")[0] for d in run_dirs(logs) if (d / "metadata" / "scheduler.yaml").exists()})
    if mine:
        subprocess.run(["scancel", *mine], capture_output=True)


def pack_stderr(run_dir: Path) -> str:
    record = store.read_yaml(run_dir / "metadata" / "scheduler.yaml")
    return (Path(record["pack"]) / "log.stderr").read_text()


def test_a_packed_sweep_runs_k_points_per_array_task_each_in_its_own_run(launch_packed, logs):
    launch_packed("x=1,2,3,4,5,6", pack=3)
    dirs = run_dirs(logs)
    assert len(dirs) == 6
    ids = [job_id(d) for d in dirs]
    array = ids[0].split("_")[0]
    assert ids == [f"{array}_0"] * 3 + [f"{array}_1"] * 3  # 6 points, 2 array tasks

    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=120)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 6, rows
    assert [r["job_id"] for r in rows.values()] == ids
    slurm_jobs = []
    for x, run_dir in enumerate(dirs, 1):
        info = read_info(run_dir)
        assert info["status"] == store.COMPLETE and not info.get("history") and info["log_dir"] == str(run_dir)
        (attempt,) = metrics(run_dir, "attempts")  # one attempt, in its own run directory
        assert attempt["x"] == x and attempt["cpus"] == "1"  # the task's 2 CPUs shared by 2 workers
        assert info["allocation"]["cpus"] == 1
        assert metrics(run_dir, "end") == [{"done": 1}] and f"ready {x}" in (run_dir / "log.stdout").read_text()
        slurm_jobs.append(attempt["job_id"])
    assert len(set(slurm_jobs[:3])) == 1 and len(set(slurm_jobs[3:])) == 1 and slurm_jobs[0] != slurm_jobs[3]
    for run_dir in (dirs[0], dirs[3]):
        text = pack_stderr(run_dir)
        assert "3 point(s) to run" in text and "2 worker(s)" in text, text

    def accounted() -> list[str] | None:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", array, "-o", "JobID,State"], capture_output=True,
                             text=True).stdout.split()
        return out if len(out) == 2 and all(line.endswith("|COMPLETED") for line in out) else None

    assert sorted(line.split("|")[0] for line in wait_until(accounted, timeout=30, what="sacct's record")) == [
        f"{array}_0", f"{array}_1"]  # two jobs for six points, as the cluster counts them


def test_a_preempted_pack_requeues_itself_and_runs_only_its_unfinished_points(launch_packed, logs):
    # two workers: point 1 ends at once, 2 and 3 hold until stopped, 4 waits for a worker
    launch_packed("x=1,2,3,4", "hold=[2,3]", pack=4)
    dirs = run_dirs(logs)
    job = job_id(dirs[0])
    assert [job_id(d) for d in dirs] == [job] * 4 and "_" not in job  # one pack: one job
    for run_dir in dirs[1:3]:
        wait_for_text(run_dir / "log.stdout", "ready", timeout=90)
    rows = wait_status(logs, {store.COMPLETE, store.RUNNING, store.PENDING}, timeout=30, count=4)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE, store.RUNNING, store.RUNNING, store.PENDING]
    assert "waiting for a worker of its pack" in rows[4]["detail"], rows

    subprocess.run(["scancel", "-s", "USR1", "--batch", job], check=True, capture_output=True, text=True)
    wait_until(lambda: read_info(dirs[2])["status"] != store.RUNNING, timeout=30, what="point 3 to stop")
    def requeued() -> dict | None:  # the job is back in the queue: its three unfinished points wait with it
        rows = status_rows(logs, "2-4")
        return rows if all(r["status"] == store.PENDING and "restarts=1" in (r["detail"] or "")
                           for r in rows.values()) else None

    wait_until(requeued, timeout=30, interval=0.3, what="the pack's job to requeue itself")
    assert status_rows(logs, "1")[1]["status"] == store.COMPLETE

    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=120)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 4, rows
    first, *held, last = dirs
    assert [a["attempt"] for a in metrics(first, "attempts")] == [1] and not read_info(first).get("history")
    for run_dir in held:  # stopped, checkpointed, resumed in its own run directory by the requeued job
        attempts = metrics(run_dir, "attempts")
        assert [a["attempt"] for a in attempts] == [1, 2] and attempts[1]["start_step"] > 0
        assert attempts[1]["restart_count"] == "1"
        assert [h["status"] for h in read_info(run_dir)["history"]] == [store.PREEMPTED]
    (attempt,) = metrics(last, "attempts")  # never started before the stop: its only attempt is the requeued job's
    assert attempt["restart_count"] == "1" and not read_info(last).get("history")
    assert read_info(last).get("started_because") is None
    for run_dir in dirs:
        assert metrics(run_dir, "end") == [{"done": 1}] and read_info(run_dir)["scheduler"]["job_id"] == job
    text = pack_stderr(first)
    assert "requeueing SLURM job" in text and "3 point(s) to run, 1 already ended" in text, text
    assert len(run_dirs(logs)) == 4


def test_cancelling_some_points_of_a_running_pack_leaves_its_job_running_for_the_others(launch_packed, logs):
    launch_packed("x=1,2,3", "hold=[1,2,3]", "sleep=8", pack=3)  # three points held 8 s, two at a time
    dirs = run_dirs(logs)
    job = job_id(dirs[0])
    for run_dir in dirs[:2]:
        wait_for_text(run_dir / "log.stdout", "ready", timeout=90)
    result = run([sys.executable, "-m", "mlxcore", "cancel", str(logs), "1", "3"], logs.parent)
    assert "cancelled 2 run(s) on slurm" in result.stdout, result.stdout
    rows = wait_status(logs, {store.CANCELLED}, timeout=30, ids=("1", "3"))
    assert [r["status"] for r in rows.values()] == [store.CANCELLED] * 2, rows
    assert status_rows(logs, "2")[2]["status"] == store.RUNNING  # the job goes on for point 2

    rows = wait_status(logs, {store.COMPLETE, store.CANCELLED, store.FAILED}, timeout=90)
    assert [r["status"] for r in rows.values()] == [store.CANCELLED, store.COMPLETE, store.CANCELLED], rows
    assert "ready" not in (dirs[2] / "log.stdout").read_text() if (dirs[2] / "log.stdout").exists() else True
    state = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State"], capture_output=True,
                           text=True).stdout.split()
    assert state in ([], ["COMPLETED"]), state  # the job was never cancelled: it ended by itself


def test_a_pack_requeued_by_slurm_while_it_runs_runs_its_unfinished_points_again(launch_packed, logs):
    # `scontrol requeue` of a running job (as a preemption in REQUEUE mode does): SLURM stops it (SIGTERM) and
    # queues it again; its points end INTERRUPTED (no checkpoint: they hold 20 s again) or never started
    launch_packed("x=1,2,3,4", "hold=[2,3]", "sleep=20", pack=4)
    dirs = run_dirs(logs)
    job = job_id(dirs[0])
    for run_dir in dirs[1:3]:
        wait_for_text(run_dir / "log.stdout", "ready", timeout=90)
    subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True, text=True)
    wait_until(lambda: read_info(dirs[1])["status"] != store.RUNNING, timeout=30, what="point 2 to stop")
    assert read_info(dirs[3])["status"] == store.SUBMITTED  # never started: it waits for the requeued job

    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=150)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 4, rows
    first, *held, last = dirs
    assert len(metrics(first, "attempts")) == 1 and not read_info(first).get("history")  # not run again
    for run_dir in held:
        assert [a["attempt"] for a in metrics(run_dir, "attempts")] == [1, 1]  # no checkpoint: it began again
        assert [h["status"] for h in read_info(run_dir)["history"]] == [store.INTERRUPTED]
    (attempt,) = metrics(last, "attempts")
    assert attempt["restart_count"] == "1" and not read_info(last).get("history")
