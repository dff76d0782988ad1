"""A contract test suite any scheduler plugin can run against its real scheduler (opt-in, needs pytest).

Subclass :class:`SchedulerContract` in a test module and override the fixtures that differ::

    from mlxcore.testing import SchedulerContract

    class TestMyScheduler(SchedulerContract):
        @pytest.fixture
        def scheduler_settings(self):
            return {"name": "mine", "time": "00:05:00"}

Fixtures a plugin may override: ``scheduler_settings`` (the ``mlx.scheduler`` section), ``contract_root`` (a
directory the scheduler's jobs can enter and write; default: pytest's ``tmp_path``), ``launch_prefix`` (argv
put before ``python``, e.g. ``["runuser", "-u", "jobuser", "--"]``), ``python`` (the interpreter jobs use)
and ``job_timeout`` (seconds to wait for a job to end).

Beyond runs that end as they should, the suite checks what a run's own record cannot hide: ``status`` names a
running job RUNNING, a cancelled job's task process is gone (on this host), each job records its id through
the job environment, and the job environment is well formed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .. import store
from ..errors import UnknownChoiceError
from ..plugins import get_scheduler_class
from ..schedulers.base import JobSpec, Submission
from ..schedulers.environment import JOB_ID_VARIABLE, JobEnvironment
from ..schedulers.script import render_script
from ..schedulers.submission import cancel_runs, current_job_id, read_scheduler_record
from ..store import reconcile
from .waiting import WaitTimeout, wait_until

TASK = '''
import time
import mlxcore

@mlxcore.launch(config_path="./configs")
def main(ctx):
    ctx.logger.log_metrics({"x": ctx.config.x}, log_name="train")
    if ctx.config.mode == "fail":
        raise ValueError("contract failure")
    if ctx.config.mode == "sleep":
        time.sleep(300)

if __name__ == "__main__":
    main()
'''


class SchedulerContract:
    """Behaviour every scheduler must show. Test methods run real submissions."""

    # -- fixtures a plugin overrides ---------------------------------------------------------------------
    @pytest.fixture
    def scheduler_settings(self) -> dict[str, Any]:
        raise NotImplementedError("override the scheduler_settings fixture")

    @pytest.fixture
    def contract_root(self, tmp_path: Path) -> Path:
        return tmp_path

    @pytest.fixture
    def launch_prefix(self) -> list[str]:
        return []

    @pytest.fixture
    def python(self) -> str:
        return sys.executable

    @pytest.fixture
    def job_timeout(self) -> float:
        return 90.0

    # -- helpers -----------------------------------------------------------------------------------------
    @pytest.fixture
    def project(self, contract_root: Path, scheduler_settings: dict[str, Any]) -> Path:
        root = contract_root / "contract project 'q'"  # spaces and quotes in paths must work
        (root / "configs").mkdir(parents=True)
        (root / "main.py").write_text(TASK)
        (root / "configs" / "config.yaml").write_text("seed: 0\nx: 0\nmode: ok\n")
        (root / "configs" / "mlx.yaml").write_text(yaml.safe_dump({"scheduler": scheduler_settings}))
        for path in (root, root / "configs"):
            path.chmod(0o777)
        return root

    @pytest.fixture
    def submit(self, project: Path, launch_prefix: list[str], python: str):
        def submit(*overrides: str) -> subprocess.CompletedProcess:
            argv = [*launch_prefix, python, str(project / "main.py"), *overrides, "+mlx.use_scheduler=true"]
            result = subprocess.run(argv, cwd=project, capture_output=True, text=True, timeout=300,
                                    env={**os.environ, "PWD": str(project)})
            assert result.returncode == 0, f"submission failed: {result.stderr}"
            return result

        return submit

    @staticmethod
    def run_dirs(project: Path) -> list[Path]:
        logs = project / "logs"
        return sorted((p for p in logs.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))

    @staticmethod
    def state(run_dir: Path, scheduler: Any) -> str:
        info = store.open_run_dir(run_dir).read_info()
        record = read_scheduler_record(run_dir)
        live = scheduler.status([str(record["job_id"])]).get(str(record["job_id"])) if record else None
        return reconcile(info, run_dir, live)

    def wait_for(self, run_dirs: list[Path], scheduler: Any, accept: set[str], timeout: float) -> list[str]:
        """The runs' states once all are in ``accept``, or as last seen after ``timeout`` (for the assertion)."""
        seen: list[str] = []

        def settled() -> bool:
            seen[:] = [self.state(d, scheduler) for d in run_dirs]
            return all(s in accept for s in seen)

        try:
            wait_until(settled, timeout=timeout, interval=0.2, what=f"runs to be {' or '.join(sorted(accept))}")
        except WaitTimeout:
            pass
        return seen

    @staticmethod
    def wait_for_task(run_dir: Path, timeout: float) -> dict[str, Any]:
        """The run's info once its task runs (the task itself recorded RUNNING)."""
        def started() -> dict[str, Any] | None:
            info = store.open_run_dir(run_dir).read_info() or {}
            return info if info.get("status") == store.RUNNING else None

        return wait_until(started, timeout=timeout, what=f"the task of run {run_dir.name} to start")

    @pytest.fixture
    def scheduler(self, scheduler_settings: dict[str, Any]) -> Any:
        options = {k: v for k, v in scheduler_settings.items() if k != "name"}
        return get_scheduler_class(scheduler_settings["name"]).from_settings(options)

    # -- the contract ------------------------------------------------------------------------------------
    def test_a_sweep_is_submitted_and_completes(self, project, submit, scheduler, job_timeout):
        submit("x=1,2,3")
        run_dirs = self.run_dirs(project)
        assert len(run_dirs) == 3
        records = [read_scheduler_record(d) or {} for d in run_dirs]
        assert all(r and r["name"] == scheduler.name and r["job_id"] for r in records)
        assert len({str(r["job_id"]) for r in records}) == 3
        states = self.wait_for(run_dirs, scheduler, {store.COMPLETE}, job_timeout)
        errors = [(d / "log.stderr").read_text() for d in run_dirs if (d / "log.stderr").exists()]
        assert states == [store.COMPLETE] * 3, errors
        xs = sorted(store.RunPaths(d).stream("train").read_text() for d in run_dirs)
        assert xs == ['{"x": 1}\n', '{"x": 2}\n', '{"x": 3}\n']
        if scheduler.job_environment().job_id_variable:  # each job learnt its id from its environment
            infos = [store.open_run_dir(d).read_info() or {} for d in run_dirs]
            assert all((info.get("scheduler") or {}).get("job_id") for info in infos), infos

    def test_a_failing_job_is_failed(self, project, submit, scheduler, job_timeout):
        submit("mode=fail")
        (run_dir,) = self.run_dirs(project)
        assert self.wait_for([run_dir], scheduler, {store.FAILED}, job_timeout) == [store.FAILED]
        assert (store.open_run_dir(run_dir).read_info() or {})["error"]["message"] == "contract failure"

    def test_a_cancelled_job_is_cancelled(self, project, submit, scheduler, job_timeout):
        """Cancelled while its task runs, the run shows CANCELLED and the job really ends: the cancel marker
        alone would show CANCELLED for a job left running."""
        submit("mode=sleep")
        (run_dir,) = self.run_dirs(project)
        info = self.wait_for_task(run_dir, job_timeout)
        job_id = current_job_id(run_dir, read_scheduler_record(run_dir) or {})
        cancel_runs(scheduler, [run_dir])
        assert self.wait_for([run_dir], scheduler, {store.CANCELLED}, job_timeout) == [store.CANCELLED]

        def ended() -> bool:
            answer = scheduler.status([job_id]).get(job_id)
            return answer is None or answer.state not in (store.PENDING, store.RUNNING)

        wait_until(ended, timeout=job_timeout, what=f"{scheduler.name} job {job_id} to end after its cancel")
        if info.get("hostname") == socket.gethostname() and isinstance(info.get("pid"), int):
            wait_until(lambda: not store.process_alive(info["pid"]), timeout=job_timeout,
                       what=f"the cancelled task (pid {info['pid']}) to end")

    def test_status_names_a_running_job_running(self, project, submit, scheduler, job_timeout):
        """The run's own record says RUNNING whatever the scheduler answers: ask the scheduler itself."""
        submit("mode=sleep")
        (run_dir,) = self.run_dirs(project)
        self.wait_for_task(run_dir, job_timeout)
        job_id = current_job_id(run_dir, read_scheduler_record(run_dir) or {})
        try:
            answer = wait_until(lambda: scheduler.status([job_id]).get(job_id), timeout=job_timeout,
                                what=f"{scheduler.name} to answer about job {job_id}")
            assert answer.job_id == job_id and answer.state == store.RUNNING, answer
        finally:
            cancel_runs(scheduler, [run_dir])
        assert self.wait_for([run_dir], scheduler, {store.CANCELLED}, job_timeout) == [store.CANCELLED]

    def test_status_answers_many_ids_at_once(self, project, submit, scheduler, job_timeout):
        submit("x=1,2")
        ids = [str((read_scheduler_record(d) or {})["job_id"]) for d in self.run_dirs(project)]
        answer = scheduler.status([*ids, "999999"])
        assert set(answer) <= set(ids)
        assert all(status.job_id in ids for status in answer.values())

    def test_an_unknown_option_lists_the_valid_ones(self, scheduler_settings):
        cls = get_scheduler_class(scheduler_settings["name"])
        with pytest.raises(UnknownChoiceError, match="cpus_per_task"):
            cls.from_settings({"cpus_pertask": 2})

    def test_the_job_environment_is_well_formed(self, project, scheduler, tmp_path):
        environment = scheduler.job_environment()
        assert isinstance(environment, JobEnvironment)
        assert not scheduler.use_array or environment.supports_arrays
        assert environment.job_id({}) is None  # outside a job, no id
        job = JobSpec(1, tmp_path / "run", ["python", "main.py"], project, "job1")
        text = render_script(scheduler, Submission([job], tmp_path / "a.sh", False), None)
        if environment.checkpoint_signal:  # "checkpoint now" reaches the task
            assert f"' {environment.checkpoint_signal}\n" in text
        if environment.job_id_variable:  # the task records its job id
            assert JOB_ID_VARIABLE in text or environment.job_id_variable == JOB_ID_VARIABLE

    def test_the_job_script_is_valid_bash(self, project, scheduler, tmp_path):
        jobs = [JobSpec(i, tmp_path / f"run {i}", ["python", "main.py", f"x={i}"], project, f"job{i}") for i in (1, 2)]
        submissions = [Submission(jobs[:1], tmp_path / "a.sh", False)]
        if scheduler.job_environment().supports_arrays:
            submissions.append(Submission(jobs, tmp_path / "b.sh", True))
        for submission in submissions:
            text = render_script(scheduler, submission, tmp_path / "args" if submission.array else None)
            assert text.startswith("#!/bin/bash\n")
            subprocess.run(["bash", "-n"], input=text, text=True, check=True)
            if scheduler.directive_prefix:
                assert any(line.startswith(scheduler.directive_prefix) for line in text.splitlines())
