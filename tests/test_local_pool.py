"""The foreground local pool (``+mlx.use_scheduler=true``, scheduler ``local``) with real subprocesses:
concurrency, GPU assignment, failures, Ctrl-C, and skipping what is already done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from mlxcore.testing import wait_until

POOL = ("+mlx.use_scheduler=true", "+mlx.scheduler.name=local")


@pytest.fixture(autouse=True)
def own_state(tmp_path, monkeypatch):
    """Each test's pools keep their state files in its own directory."""
    monkeypatch.setenv("MLXCORE_LOCAL_STATE", str(tmp_path / "pool-state"))


@pytest.fixture(params=["fork", "script"])
def job_mode(request, monkeypatch):
    """Both ways a pool job runs: a fork of the launching process (the default), or its job script in a new
    interpreter (detached pools, version-managed code, ``mlxcore sub``; forced here by MLXCORE_LOCAL_NO_FORK)."""
    if request.param == "script":
        monkeypatch.setenv("MLXCORE_LOCAL_NO_FORK", "1")
    return request.param


def statuses(project) -> dict[int, str]:
    return {i: project.info(i)["status"] for i in project.run_ids()}


def status_rows(project) -> dict[int, str]:
    """``mlxcore status --json`` of the project's logs: each run's reconciled status."""
    result = subprocess.run([sys.executable, "-m", "mlxcore", "status", str(project.logs), "--json"],
                            capture_output=True, text=True)
    return {row["log_id"]: row["status"] for row in json.loads(result.stdout)}


def gpu_rows(project) -> list[dict]:
    return [json.loads((project.logs / str(i) / "metrics" / "gpu.json").read_text()) for i in project.run_ids()]


def max_overlap(rows: list[dict]) -> int:
    events = sorted([(r["t0"], 1) for r in rows] + [(r["t1"], -1) for r in rows], key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def test_points_run_workers_at_a_time_each_with_its_own_gpu(project, job_mode):
    result = project.run("x=1,2,3,4", "mode=gpu", "+sleep=1.0", *POOL, "+mlx.scheduler.workers=4",
                         "+mlx.scheduler.gpus=[0,1]")
    assert result.returncode == 0, result.stderr
    assert statuses(project) == {1: "COMPLETE", 2: "COMPLETE", 3: "COMPLETE", 4: "COMPLETE"}
    rows = gpu_rows(project)
    assert sorted(r["cuda"] for r in rows) == ["0", "0", "1", "1"]
    assert max_overlap(rows) == 2  # 4 workers asked, but only 2 GPUs: 2 at a time
    for a in rows:  # two runs that overlapped in time never shared a GPU
        for b in rows:
            if a is not b and a["t0"] < b["t1"] and b["t0"] < a["t1"]:
                assert a["cuda"] != b["cuda"]
    assert "4 run(s): 4 done, 0 failed or interrupted" in result.stderr
    assert "\x1b[" not in result.stderr  # not a terminal: no progress bar drawn
    assert not list((project.root.parent / "pool-state").glob("*/*.pid"))  # the pool cleaned up after itself


def test_gpus_per_job_hands_out_groups(project):
    result = project.run("x=1,2,3", "mode=gpu", "+sleep=0.5", *POOL, "+mlx.scheduler.workers=3",
                         "+mlx.scheduler.gpus=[4,5,6,7]", "+mlx.scheduler.gpus_per_job=2")
    assert result.returncode == 0, result.stderr
    rows = gpu_rows(project)
    assert {r["cuda"] for r in rows} <= {"4,5", "6,7"}
    assert max_overlap(rows) <= 2
    for log_id in project.run_ids():  # each run records what it was given, and its GPU-hours from it
        info = project.info(log_id)
        assert len(info["allocation"]["gpus"]) == 2 and info["allocation"]["cpus"] is None
        assert info["gpu_hours"] == pytest.approx(info["duration_s"] * 2 / 3600, abs=1e-6)
        assert info["cpu_hours"] is None  # a local run shares the machine: its CPUs are not known
    frame = __import__("mlxcore").Reader(project.logs).filter("")
    assert frame["info.gpu_hours"].notna().all() and (frame["info.gpu_hours"] > 0).all()


def test_cpu_only_pool_bounds_concurrency_by_workers(project):
    result = project.run("x=1,2,3,4", "mode=gpu", "+sleep=1.0", *POOL, "+mlx.scheduler.workers=3")
    assert result.returncode == 0, result.stderr
    rows = gpu_rows(project)
    assert all(r["cuda"] == os.environ.get("CUDA_VISIBLE_DEVICES") for r in rows)  # untouched without gpus
    assert 2 <= max_overlap(rows) <= 3


def test_job_output_goes_to_the_run_directory(project, job_mode):
    result = project.run("x=1,2", "mode=print", *POOL, "+mlx.scheduler.workers=2")
    assert result.returncode == 0, result.stderr
    for log_id in project.run_ids():
        assert "to stdout" in (project.logs / str(log_id) / "log.stdout").read_text()
        assert "to stderr" in (project.logs / str(log_id) / "log.stderr").read_text()
    assert "to stdout" not in result.stdout
    for log_id in project.run_ids():  # each run's info tells the job's own command line, forced id included
        assert f"+mlx.logger.forced_log_id={log_id}" in project.info(log_id)["argv"]


def test_a_failed_point_does_not_stop_the_others(project, job_mode):
    result = project.run("x=1,2,3", "mode=fail_if", "+fail_at=2", *POOL, "+mlx.scheduler.workers=2")
    assert result.returncode == 1
    assert statuses(project) == {1: "COMPLETE", 2: "FAILED", 3: "COMPLETE"}
    assert project.info(2)["error"]["message"] == "boom at x=2"
    assert "1 failed" in result.stderr


def test_a_job_that_dies_before_its_task_is_failed_not_left_submitted(project, monkeypatch):
    monkeypatch.setenv("MLXCORE_LOCAL_NO_FORK", "1")  # a forked job has the script in memory already
    # run 1 deletes the task script: run 2's job cannot even start python on it, so no task records anything
    result = project.run("x=1,2", "mode=remove_script", *POOL, "+mlx.scheduler.workers=1")
    assert result.returncode == 1
    assert statuses(project) == {1: "COMPLETE", 2: "FAILED"}
    assert "before the task started" in project.info(2)["error"]["message"]
    assert "main.py" in (project.logs / "2" / "log.stderr").read_text()


def test_ctrl_c_interrupts_running_points_and_leaves_queued_ones_unrun(project, job_mode):
    proc = project.start("x=1,2,3", "mode=sleep", "+sleep=60", *POOL, "+mlx.scheduler.workers=2",
                         start_new_session=True)
    try:
        def ready() -> list[int]:
            logs = {i: project.logs / str(i) / "log.stdout" for i in (1, 2, 3)}
            started = [i for i, path in logs.items() if path.exists() and "ready" in path.read_text()]
            return started if len(started) >= 2 else []

        assert wait_until(ready, timeout=60, what="two points to be ready") == [1, 2]
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole foreground group
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert statuses(project) == {1: "INTERRUPTED", 2: "INTERRUPTED", 3: "CANCELLED"}
    assert "never started" in project.info(3)["cancel_reason"]
    for log_id in (1, 2):  # rows logged before the interruption were flushed
        assert len((project.logs / str(log_id) / "metrics" / "train.json").read_text().splitlines()) == 5
    assert "never started" in stderr


def test_skip_completed_runs_only_what_is_missing(project):
    assert project.run("x=1,2", *POOL, "+mlx.scheduler.workers=2").returncode == 0
    result = project.run("x=1,2,3", *POOL, "+mlx.scheduler.workers=2", "+mlx.skip_completed=true")
    assert result.returncode == 0, result.stderr
    assert statuses(project) == {1: "COMPLETE", 2: "COMPLETE", 3: "COMPLETE"}
    assert project.config(3)["x"] == 3
    assert "skipped 2 sweep point(s) already COMPLETE" in result.stderr
    again = project.run("x=1,2,3", *POOL, "+mlx.skip_completed=true")
    assert again.returncode == 0 and project.run_ids() == [1, 2, 3]
    assert "skipped 3" in again.stderr and "nothing to submit" in again.stderr


def test_identity_ignores_framework_settings_and_key_order(project):
    assert project.run("x=1").returncode == 0
    project.write_config({"opt": {"name": "sgd", "lr": 0.1}, "mode": "ok", "x": 1, "seed": 0})  # same, reordered
    result = project.run("+mlx.skip_completed=true", "+mlx.logger.log_streams_to_file=false")
    assert result.returncode == 0 and project.run_ids() == [1], result.stderr
    assert project.run("x=2", "+mlx.skip_completed=true").returncode == 0
    assert project.run_ids() == [1, 2]
    assert project.info(1)["config_identity"] != project.info(2)["config_identity"]


def test_rerun_failed_reruns_failures_in_their_own_directories(project):
    (project.root / "flaky-2").touch()
    (project.root / "flaky-3").touch()
    result = project.run("x=1,2,3", "mode=flaky", *POOL, "+mlx.scheduler.workers=2")
    assert result.returncode == 1
    assert statuses(project) == {1: "COMPLETE", 2: "FAILED", 3: "FAILED"}
    (project.root / "flaky-2").unlink()
    result = project.run("x=1,2,3", "mode=flaky", *POOL, "+mlx.rerun_failed=true")
    assert result.returncode == 1  # x=3 still fails
    assert project.run_ids() == [1, 2, 3]  # no new directory: the failures ran again where they were
    assert statuses(project) == {1: "COMPLETE", 2: "COMPLETE", 3: "FAILED"}
    history = project.info(2)["history"]
    assert [h["status"] for h in history] == ["FAILED"] and project.info(2)["attempt"] == 2
    assert "error" not in project.info(2)
    assert "skipped 1 sweep point(s) not failed" in result.stderr


def test_skip_completed_works_in_process_too(project):
    assert project.run("x=1,2").returncode == 0
    result = project.run("x=1,2,3", "+mlx.skip_completed=true")
    assert result.returncode == 0 and project.run_ids() == [1, 2, 3], result.stderr
    assert "skipped 2" in result.stderr


def test_skip_completed_also_filters_detached_submissions(project):
    assert project.run("x=1", *POOL).returncode == 0
    result = project.run("x=1,2", *POOL, "+mlx.scheduler.detach=true", "+mlx.skip_completed=true")
    assert result.returncode == 0 and project.run_ids() == [1, 2], result.stderr
    wait_until(lambda: project.info(2)["status"] == "COMPLETE", timeout=60, what="the detached point to complete")


def test_subprocess_pool_survives_a_job_killed_by_sigkill(project, tmp_path):
    proc = project.start("x=1,2", "mode=sleep", "+sleep=60", *POOL, "+mlx.scheduler.workers=2",
                         start_new_session=True)
    try:
        def both_running() -> bool:
            infos = [project.info(i) for i in project.run_ids()
                     if (project.logs / str(i) / "metadata" / "info.yaml").exists()]
            return len(infos) == 2 and all(i["status"] == "RUNNING" and i.get("pid") for i in infos)

        wait_until(both_running, timeout=60, what="both points to run")
        pid = project.info(1)["pid"]
        os.kill(pid, signal.SIGKILL)  # run 1's task dies without a word
        exit_file = tmp_path / "pool-state" / str(proc.pid) / "0.exit"  # the pool's record of run 1's job
        wait_until(exit_file.exists, timeout=30, what="the pool to see the killed job end")
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert status_rows(project) == {1: "DEAD", 2: "INTERRUPTED"}


def test_status_and_cancel_reach_a_running_pool_from_another_process(project, job_mode):
    proc = project.start("x=1,2,3", "mode=sleep", "+sleep=60", *POOL, "+mlx.scheduler.workers=2",
                         start_new_session=True)
    try:
        wait_until(lambda: len(project.run_ids()) == 3 and all(project.info(i)["status"] == "RUNNING" for i in (1, 2)),
                   timeout=60, what="two points to run and one to wait")
        assert status_rows(project) == {1: "RUNNING", 2: "RUNNING", 3: "PENDING"}
        cancel = subprocess.run([sys.executable, "-m", "mlxcore", "cancel", str(project.logs), "1", "3"],
                                capture_output=True, text=True)
        assert cancel.returncode == 0, cancel.stderr
        wait_until(lambda: project.info(1)["status"] != "RUNNING", timeout=30, what="the cancelled point to end")
        assert project.info(2)["status"] == "RUNNING"  # the other job goes on
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # the cancelled run knows it was cancelled (the marker), the other was interrupted by Ctrl-C
    assert statuses(project) == {1: "CANCELLED", 2: "INTERRUPTED", 3: "CANCELLED"}
    assert status_rows(project) == {1: "CANCELLED", 2: "INTERRUPTED", 3: "CANCELLED"}
