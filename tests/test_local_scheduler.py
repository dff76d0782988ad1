"""The builtin local scheduler passes the shared scheduler contract, plus its own queue behaviour."""

from __future__ import annotations

import pytest

from mlxcore import store
from mlxcore.schedulers.submission import read_scheduler_record
from mlxcore.testing import SchedulerContract


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
        from mlxcore.schedulers.submission import cancel_runs

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
