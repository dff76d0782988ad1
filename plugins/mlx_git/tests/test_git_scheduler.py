"""With a scheduler: jobs run the snapshot prepared at submission, never the working tree of later."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from mlxcore import store
from mlxcore.schedulers.submission import read_scheduler_record

LOCAL = ["+mlx.use_scheduler=true", "+mlx.scheduler.name=local"]


def test_a_foreground_sweep_runs_every_job_from_one_snapshot(project):
    result = project.run(*LOCAL, "x=1,2,3", "+mlx.scheduler.workers=2")
    assert result.returncode == 0, result.stderr
    [snapshot] = project.snapshot_dirs()
    assert project.run_ids() == [1, 2, 3]
    for log_id in (1, 2, 3):
        info = project.info(log_id)
        assert info["status"] == store.COMPLETE
        assert info["version"]["snapshot"] == str(snapshot) and info["version"]["commit"] == project.head()
        assert (project.logs / str(log_id) / "metadata" / "requirements.txt").exists()
        probe = project.probe(log_id)
        assert probe["script"] == str(snapshot / "main.py") and probe["lib"] == str(snapshot / "helpers" / "lib.py")
        assert probe["cwd"] == str(project.root) and probe["data"] == "hello"
    assert project.leftovers() == []


def test_jobs_in_the_snapshot_workdir_write_to_the_launch_logs(project):
    result = project.run(*LOCAL, "x=1", "+mlx.version_manager.workdir=snapshot")
    assert result.returncode == 0, result.stderr
    [snapshot] = project.snapshot_dirs()
    assert project.info(1)["status"] == store.COMPLETE
    assert project.probe(1)["cwd"] == str(snapshot) and project.probe(1)["data_abs"] == "hello"
    assert not (snapshot / "logs").exists()


def test_a_change_made_after_submission_does_not_affect_the_queued_jobs(project):
    sha = project.head()
    result = project.run(*LOCAL, "x=1,2,3", "sleep=0.5", "+mlx.scheduler.detach=true")  # returns at once
    assert result.returncode == 0, result.stderr
    changed_at = time.time()
    project.write("helpers/lib.py", "VALUE = 2\n")
    project.write("main.py", "raise SystemExit('the new main.py ran')\n")
    project.commit("changed after submission")
    assert project.wait_final([1, 2, 3]) == [store.COMPLETE] * 3
    assert [project.probe(i)["value"] for i in (1, 2, 3)] == [1, 1, 1]
    assert {project.info(i)["version"]["commit"] for i in (1, 2, 3)} == {sha}
    assert max(project.probe(i)["started"] for i in (1, 2, 3)) > changed_at  # some ran after the change


def test_a_hundred_point_sweep_makes_one_snapshot(project):
    result = project.run(*LOCAL, "x=range(0,100)", "+mlx.scheduler.detach=true")
    assert result.returncode == 0, result.stderr
    supervisor = int(str(read_scheduler_record(project.logs / "1")["job_id"]).split(".")[0])
    try:
        assert len(project.run_ids()) == 100
        [snapshot] = project.snapshot_dirs()
        assert {project.info(i)["version"]["snapshot"] for i in project.run_ids()} == {str(snapshot)}
        assert project.leftovers() == []
    finally:  # the queue is ours: cancel it rather than run 100 interpreters, and wait for its supervisor
        subprocess.run([sys.executable, "-m", "mlxcore", "cancel", str(project.logs), "--all"], env=project.env,
                       capture_output=True, timeout=60)
        deadline = time.time() + 60
        while store.process_alive(supervisor) and time.time() < deadline:
            time.sleep(0.1)
    status = subprocess.run([sys.executable, "-m", "mlxcore", "status", str(project.logs), "--json"],
                            env=project.env, capture_output=True, text=True, timeout=60)
    states = [row["status"] for row in json.loads(status.stdout)]
    assert len(states) == 100 and states.count(store.CANCELLED) >= 90, states
