"""The builtin ``local`` scheduler: this machine as a queue.

By default the launching command runs the jobs itself, ``workers`` at a time (a pool of subprocesses, one
``bash <job script>`` each), each with its own ``CUDA_VISIBLE_DEVICES`` when ``gpus`` is set, shows progress
on a terminal and returns when all are done (exit code 1 if any failed, 130 after Ctrl-C). With
``detach: true`` it starts a detached supervisor instead and returns at once.

Job ids are ``<pool pid>.<k>``; the pool keeps ``<state>/<pool pid>/<k>.pid|.exit`` files (see
:mod:`mlxcore.schedulers.local_pool`), so status and cancel are one pass over a directory, no process started.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from .. import store
from ..errors import ConfigError
from ..settings_checks import check_bool, check_positive_int
from .base import JobSpec, JobStatus, Scheduler, Submission
from .environment import JOB_ID_VARIABLE, SCHEDULER_VARIABLE, JobEnvironment
from .local_pool import NOT_STARTED, LocalPool, PoolJob, detect_gpus

#: a local job learns its id (``<pool pid>.<k>``) and array index from the variables the pool sets; a preempted
#: run is not brought back (run the sweep again with ``rerun_failed``)
#: the number of each job a foreground pool of this process runs: ``<pid>.<n>`` names one job, whichever pool
_JOB_NUMBERS = itertools.count()

ENVIRONMENT = JobEnvironment(job_id_variable=JOB_ID_VARIABLE, array_index_variable="MLXCORE_ARRAY_INDEX",
                             array_first_index=0)


def job_variables(job_id: str, array_index: int | None) -> dict[str, str]:
    """The environment the pool gives job ``job_id`` (task ``array_index`` of an array, or a single job)."""
    env = {str(ENVIRONMENT.job_id_variable): job_id}
    if array_index is not None:
        env[str(ENVIRONMENT.array_index_variable)] = str(array_index)
    return env


def state_root() -> Path:
    return Path(os.environ.get("MLXCORE_LOCAL_STATE", Path(tempfile.gettempdir()) / f"mlxcore-local-{os.getuid()}"))


class LocalScheduler(Scheduler):
    name = "local"
    extra_options: ClassVar[dict[str, Any]] = {"workers": 1, "gpus": None, "gpus_per_job": 1, "detach": False}
    supports_packing = False  # the pool already runs `workers` points at once on this machine

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        check_positive_int(self.options["workers"], "mlx.scheduler.workers")
        per_job = check_positive_int(self.options["gpus_per_job"], "mlx.scheduler.gpus_per_job")
        check_bool(self.options["detach"], "mlx.scheduler.detach")
        self.gpus = detect_gpus(self.options["gpus"])
        if self.gpus and per_job > len(self.gpus):  # no job could ever start: the pool would wait forever
            raise ConfigError(f"mlx.scheduler.gpus_per_job must be at most the {len(self.gpus)} GPU(s) of "
                              f"mlx.scheduler.gpus ({', '.join(self.gpus)}), got {per_job}")
        self._pool: LocalPool | None = None
        self._submissions: list[Submission] = []

    def directives(self, submission: Submission) -> list[str]:
        return []

    def job_environment(self) -> JobEnvironment:
        return ENVIRONMENT

    def submit_argv(self, submission: Submission) -> list[str]:
        count = len(submission.jobs) if submission.array else 0
        return [sys.executable, "-m", "mlxcore.schedulers.local_runner", str(submission.script), str(count),
                str(int(self.options["workers"])), str(state_root()), ",".join(self.gpus),
                str(self.options["gpus_per_job"])]

    def submit(self, submission: Submission) -> list[str]:
        if self.options["detach"]:
            state_root().mkdir(parents=True, exist_ok=True)
            with open(submission.script.parent / "local_runner.log", "ab") as log:
                proc = subprocess.Popen(self.submit_argv(submission), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        start_new_session=True, close_fds=True)
            return self.parse_job_ids(str(proc.pid), submission)
        pool = self._foreground_pool()
        keys = [str(next(_JOB_NUMBERS)) for _ in submission.jobs]  # unique across this process's pools
        for i, (key, job) in enumerate(zip(keys, submission.jobs)):
            env = job_variables(f"{os.getpid()}.{key}", i if submission.array else None)
            pool.submit(PoolJob(key, ["bash", str(submission.script)], env, job.run_dir,
                                fork=_fork_target(job, submission)))
        return [f"{os.getpid()}.{key}" for key in keys]

    def _foreground_pool(self) -> LocalPool:
        if self._pool is None:
            from .local_progress import Progress

            self._progress = Progress()
            self._pool = LocalPool(state_root() / str(os.getpid()), int(self.options["workers"]), self.gpus,
                                   int(self.options["gpus_per_job"]), on_change=self._progress.update)
        return self._pool

    def wait(self) -> int | None:
        if self._pool is None:
            return None
        pool, self._pool = self._pool, None
        jobs = {job.key: job for job in pool.queue}
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: pool.stop(signum))
        try:
            with self._progress:
                codes = pool.run()
        finally:
            signal.signal(signal.SIGTERM, previous)
        for key, code in codes.items():  # runs no task could record: the pool says why
            run_dir = jobs[key].run_dir
            if run_dir is not None:
                record_unstarted(run_dir, code, pool.stop_signal)
        # every run now holds its final status: the pool's state files would only go stale (pids are reused)
        pool.clean(list(jobs))
        self._progress.summary(codes, pool.stop_signal)
        if pool.stop_signal is not None:
            return 128 + pool.stop_signal
        return 1 if any(code not in (0, None) for code in codes.values()) else 0

    def parse_job_ids(self, output: str, submission: Submission) -> list[str]:
        pid = output.strip()
        return [f"{pid}.{i}" for i in range(len(submission.jobs))]

    def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
        out = {}
        for job_id in job_ids:
            pool_pid, _, key = job_id.partition(".")
            state = state_root() / pool_pid
            exit_file, pid_file = state / f"{key}.exit", state / f"{key}.pid"
            if exit_file.exists():
                text = exit_file.read_text().strip()
                cancelled = (state / "cancel" / key).exists()
                if text == NOT_STARTED:
                    out[job_id] = JobStatus(job_id, store.CANCELLED, reason="never started")
                    continue
                code = int(text or -1)
                final = store.COMPLETE if code == 0 else (store.CANCELLED if cancelled else store.FAILED)
                out[job_id] = JobStatus(job_id, final, exit_code=code)
            elif pid_file.exists() and store.process_alive(int(pid_file.read_text())):
                out[job_id] = JobStatus(job_id, store.RUNNING)
            elif pool_pid.isdigit() and store.process_alive(int(pool_pid)) and state.exists():
                out[job_id] = JobStatus(job_id, store.PENDING)
        return out

    def cancel(self, job_ids: list[str]) -> None:
        # every marker first, then the kills: a killed job frees a slot at once, and a queued job of this very
        # cancel must not start in it before its marker is there
        targets = []
        for job_id in job_ids:
            pool_pid, _, key = job_id.partition(".")
            state = state_root() / pool_pid
            if not state.exists():
                continue
            (state / "cancel").mkdir(exist_ok=True)
            (state / "cancel" / key).touch()
            targets.append((state, key))
        for state, key in targets:
            pid_file = state / f"{key}.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text()), signal.SIGTERM)  # the job's shell forwards it to the task
                except (ProcessLookupError, PermissionError, ValueError):
                    pass


def _fork_target(job: JobSpec, submission: Submission) -> Callable[[], int] | None:
    """How a fork of this process runs ``job`` — when ``job`` re-runs the launch running here (same
    interpreter, same script, no setup lines); ``None`` sends it through its job script."""
    from ..launching import current_launch

    target = current_launch()
    if (target is None or submission.setup_lines or os.environ.get("MLXCORE_LOCAL_NO_FORK")
            or job.command[:2] != [sys.executable, str(target.script)] or _cuda_initialised()):
        return None
    argv, workdir = list(job.command[2:]), job.workdir

    def run() -> int:
        os.chdir(workdir)
        os.environ[SCHEDULER_VARIABLE] = LocalScheduler.name
        sys.argv = [str(target.script), *argv]  # what the job's own process would have had (info.argv)
        return target.run(argv)

    return run


def _cuda_initialised() -> bool:
    """A CUDA context does not survive a fork: if this process made one, the jobs start fresh interpreters."""
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001 - a torch build without CUDA support, or a partial import
        return False


def record_unstarted(run_dir: Path, code: int | None, signum: int | None) -> None:
    """A run still SUBMITTED after its job ended never reached its task: never started (``code`` None, the
    pool was stopped or the job cancelled) is CANCELLED; a job that exited first (its setup failed) is FAILED."""
    run = store.open_run_dir(run_dir)
    if (run.read_info() or {}).get("status") != store.SUBMITTED:
        return
    if code is None:
        reason = f"never started: the sweep was stopped by {signal.Signals(signum).name}" if signum else "never started"
        run.set_status(store.CANCELLED, cancel_reason=reason)
    else:
        message = f"the job exited with code {code} before the task started (see log.stderr)"
        run.set_status(store.FAILED, error={"type": "JobError", "message": message}, exit_code=code)
