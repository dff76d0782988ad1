"""The builtin local scheduler passes the shared scheduler contract, plus its own queue behaviour."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys

import pytest

from mlxcore import store
from mlxcore.schedulers.base import JobSpec, JobStatus, Submission
from mlxcore.schedulers.environment import JOB_ID_VARIABLE, SUBMIT_PYTHON_VARIABLE, JobEnvironment
from mlxcore.schedulers.local import LocalScheduler
from mlxcore.schedulers.script import render_script
from mlxcore.schedulers.submission import cancel_runs, read_scheduler_record
from mlxcore.testing import SchedulerContract, wait_until


class TestLocalSchedulerContract(SchedulerContract):
    @pytest.fixture
    def scheduler_settings(self):
        # detached: like a cluster, the submission returns at once and the jobs run under a supervisor
        return {"name": "local", "workers": 2, "detach": True}

    @pytest.fixture
    def job_timeout(self):
        return 60.0

    def test_workers_bound_concurrency_and_the_queue_is_cancellable(self, project, submit, scheduler, job_timeout):
        submit("mode=sleep", "x=1,2,3")  # 2 workers: the third job waits
        run_dirs = self.run_dirs(project)
        assert self.wait_for(run_dirs[:2], scheduler, {store.RUNNING}, job_timeout) == [store.RUNNING] * 2
        assert self.state(run_dirs[2], scheduler) == store.PENDING
        ids = [str(read_scheduler_record(d)["job_id"]) for d in run_dirs]
        assert len({i.split(".")[0] for i in ids}) == 1  # one array, one supervisor
        cancel_runs(scheduler, run_dirs)
        assert self.wait_for(run_dirs, scheduler, {store.CANCELLED}, job_timeout) == [store.CANCELLED] * 3

    def test_one_job_per_point_when_arrays_are_off(self, project, submit, scheduler, job_timeout):
        submit("x=1,2", "+mlx.scheduler.array=false")
        run_dirs = self.run_dirs(project)
        assert all((d / "script.sh").exists() for d in run_dirs)
        assert self.wait_for(run_dirs, scheduler, {store.COMPLETE}, job_timeout) == [store.COMPLETE] * 2


def test_a_failed_submission_leaves_no_submitted_run(project):
    result = project.run("x=1,2", "+mlx.use_scheduler=true", "+mlx.scheduler.name=local", "+mlx.scheduler.workerz=2")
    assert result.returncode == 2 and "workerz" in result.stderr and "workers" in result.stderr
    assert project.run_ids() == []
    project.write_config({"defaults": [{"model": "a"}, "_self_"], "seed": 0, "x": 1, "mode": "ok"})
    project.write_config({"depth": 1}, "model/a.yaml")
    result = project.run("model=a,missing", "+mlx.use_scheduler=true")  # the second point fails to compose
    assert result.returncode == 2 and "missing" in result.stderr
    assert project.run_ids() == []  # the first point's directory was rolled back


def test_a_new_pool_never_inherits_the_state_of_a_dead_pool_with_the_same_pid(tmp_path):
    from mlxcore.schedulers.local_pool import LocalPool

    state = tmp_path / "4242"
    (state / "cancel").mkdir(parents=True)
    (state / "1.exit").write_text("0")  # left by a pool killed before it cleaned up; pid 4242 is reused
    (state / "cancel" / "2").touch()
    LocalPool(state, workers=1, gpus=[])
    assert sorted(p.name for p in state.rglob("*")) == ["cancel"]


class RequeueTrace(JobEnvironment):
    """The local scheduler's job id, and a "requeue" that leaves a trace in the run directory."""

    def requeue_lines(self, submission: Submission) -> list[str]:
        return ['echo requeued >>"$run_dir/requeued"']


class RequeueingScheduler(LocalScheduler):
    name = "requeueing"

    def job_environment(self) -> JobEnvironment:
        return RequeueTrace(job_id_variable=JOB_ID_VARIABLE)


@pytest.mark.parametrize(("mode", "status", "requeued"),
                         [("exit", store.FAILED, False), ("stop", store.PREEMPTED, True)])
def test_only_a_preempted_run_is_requeued_never_a_task_that_exits_3(project, mode, status, requeued):
    """Both tasks exit with code 3; only the one whose run the store marked PREEMPTED (it got the stop signal,
    saved and returned) runs the requeue lines: the job script tests the store's marker, not the exit code."""
    run, _ = store.RunStore(project.logs).create(store.SUBMITTED, {}, log_id=1)
    command = project.command(f"mode={mode}", "+code=3", "+mlx.logger.forced_log_id=1")
    script = run.root / "script.sh"
    submission = Submission([JobSpec(1, run.root, command, project.root, "job")], script, False)
    script.write_text(render_script(RequeueingScheduler(), submission, None))
    assert "info.yaml" not in script.read_text()  # the job script reads no YAML
    job = subprocess.Popen(["bash", str(script)])
    try:
        if mode == "stop":
            stdout = run.root / "log.stdout"
            wait_until(lambda: stdout.exists() and "ready" in stdout.read_text(), timeout=60, what="the task to start")
            job.send_signal(signal.SIGUSR1)  # the job script forwards it: the task checkpoints and returns
        assert job.wait(timeout=60) == store.PREEMPTED_EXIT_CODE, (run.root / "log.stderr").read_text()
    finally:
        if job.poll() is None:
            job.kill()
    assert project.info(1)["status"] == status
    assert (run.root / "requeued").exists() is requeued
    assert store.RunPaths(run.root).preempted_marker.exists() is requeued


@pytest.mark.parametrize(("time", "checkpoint", "requeued"), [
    (1, True, True),  # at its time limit (1 minute, 30 s of grace), with a checkpoint: it comes back and goes on
    (1, False, False),  # at its time limit with nothing saved: it would only reach the limit again
    ("10:00:00", False, True),  # preempted long before its limit: it comes back, even from the start
])
def test_a_stop_at_the_time_limit_is_requeued_only_with_a_checkpoint(project, time, checkpoint, requeued):
    run, _ = store.RunStore(project.logs).create(store.SUBMITTED, {}, log_id=1)
    command = project.command("mode=stop", f"+checkpoint={checkpoint}", "+mlx.logger.forced_log_id=1")
    script = run.root / "script.sh"
    submission = Submission([JobSpec(1, run.root, command, project.root, "job")], script, False)
    script.write_text(render_script(RequeueingScheduler(time=time, signal_grace=30), submission, None))
    job = subprocess.Popen(["bash", str(script)])
    try:
        stdout = run.root / "log.stdout"
        wait_until(lambda: stdout.exists() and "ready" in stdout.read_text(), timeout=60, what="the task to start")
        job.send_signal(signal.SIGUSR1)
        assert job.wait(timeout=60) == store.PREEMPTED_EXIT_CODE, (run.root / "log.stderr").read_text()
    finally:
        if job.poll() is None:
            job.kill()
    info = project.info(1)
    assert info["status"] == store.PREEMPTED  # what the task recorded
    marker = store.RunPaths(run.root).preempted_marker.read_text().strip()
    assert marker == ("checkpoint" if checkpoint else "no checkpoint")
    assert (run.root / "requeued").exists() is requeued
    ended = JobStatus("1", store.FAILED, exit_code=3)
    status, detail = store.reconcile_detail(info, run.root, ended, answered=True)
    if requeued:
        assert status == store.PREEMPTED and not store.RunPaths(run.root).job_error_marker.exists()
    else:
        assert status == store.FAILED and "stopped at its time limit with no checkpoint saved" in detail
        assert "not requeued" in (run.root / "log.stderr").read_text()


def test_a_node_without_the_submitting_interpreter_fails_the_run_saying_so(project):
    """The job runs the interpreter that launched it, by its absolute path; a node that lacks it gets no
    cryptic 'command not found' and no run left SUBMITTED: the run shows FAILED with the job script's line."""
    run, _ = store.RunStore(project.logs).create(store.SUBMITTED, {}, log_id=1)
    command = ["/nonexistent/venv/bin/python", "main.py", "+mlx.logger.forced_log_id=1"]
    script = run.root / "script.sh"
    submission = Submission([JobSpec(1, run.root, command, project.root, "job")], script, False)
    script.write_text(render_script(LocalScheduler(), submission, None))
    assert subprocess.run(["bash", str(script)]).returncode == 127
    assert "/nonexistent/venv/bin/python that submitted this job is missing" in (run.root / "log.stderr").read_text()
    info = run.read_info()
    assert info["status"] == store.SUBMITTED  # the task never ran: the store's record is untouched
    failed = JobStatus("1", store.FAILED, exit_code=127)
    status, detail = store.reconcile_detail(info, run.root, failed, answered=True)
    assert status == store.FAILED and "/nonexistent/venv/bin/python that submitted this job is missing" in detail
    assert store.reconcile_detail(info, run.root, JobStatus("1", store.PENDING))[0] == store.PENDING  # requeued
    command[0] = sys.executable  # the next attempt lands on a node that has it: the marker goes
    script.write_text(render_script(LocalScheduler(), submission, None))
    assert subprocess.run(["bash", str(script)]).returncode == 0
    assert not store.RunPaths(run.root).job_error_marker.exists() and project.info(1)["status"] == store.COMPLETE


def test_a_job_run_by_another_python_version_fails_the_run_saying_so(project):
    """The same path may hold another Python on a node: the task compares its version with the one the job
    script says submitted it, and the run ends FAILED with both versions in its error."""
    env = {**os.environ, SUBMIT_PYTHON_VARIABLE: "2.7.18"}
    done = subprocess.run(project.command("+mlx.logger.forced_log_id=5"), cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    error = project.info(5)["error"]
    assert error["type"] == "JobEnvironmentError" and "submitted with Python 2.7.18" in error["message"], error
    assert platform.python_version() in error["message"] and sys.executable in error["message"]
    env[SUBMIT_PYTHON_VARIABLE] = platform.python_version()
    ok = subprocess.run(project.command("+mlx.logger.forced_log_id=6"), cwd=project.root, env=env, timeout=60)
    assert ok.returncode == 0 and project.info(6)["status"] == store.COMPLETE
