"""The process pool behind the ``local`` scheduler: jobs as subprocesses, ``workers`` at a time, GPUs assigned.

Used in the foreground (the launching command shows progress and waits; Ctrl-C interrupts the running jobs,
which end INTERRUPTED, and the queued ones are marked CANCELLED, never started) and by the detached supervisor
(:mod:`mlxcore.schedulers.local_runner`). Each job runs ``bash <job script>`` in its own session; stopping
signals only the job's shell, which forwards the signal to the task exactly once.

State, per pool: ``<state>/<k>.pid`` while job k runs, ``<k>.exit`` when it ended (``NOT_STARTED`` when it never
ran), ``cancel/<k>`` when a cancel was asked. :class:`~mlxcore.schedulers.local.LocalScheduler` reads these.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import write_atomic

NOT_STARTED = "not-started"


@dataclass
class PoolJob:
    key: str  #: the job's index in the pool's state directory
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    run_dir: Path | None = None
    #: run the job in a fork of this process instead of ``argv`` (see :mod:`mlxcore.schedulers.local_fork`)
    fork: Callable[[], int] | None = None


def detect_gpus(spec: object) -> list[str]:
    """The GPU ids to hand out: a list as given, or ``auto`` from CUDA_VISIBLE_DEVICES or ``nvidia-smi -L``."""
    if spec is None or spec == []:
        return []
    if isinstance(spec, (list, tuple)):
        return [str(g) for g in spec]
    if spec != "auto":
        from ..errors import ConfigError

        raise ConfigError(f"mlx.scheduler.gpus must be a list of GPU ids or 'auto', got {spec!r}")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
        return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    return []


#: state directories this process's pools made (and cleaned of a dead namesake's files once)
_STATES_OF_THIS_PROCESS: set[Path] = set()


class LocalPool:
    def __init__(self, state: Path, workers: int, gpus: list[str], gpus_per_job: int = 1,
                 on_change: Callable[[LocalPool], None] | None = None,
                 on_tick: Callable[[LocalPool], None] | None = None) -> None:
        self.state = state
        # named after this process's pid: a directory already there when this process makes its first pool was
        # left by a dead pool that had the same pid (killed, so it never cleaned up), and its exit files would
        # answer for this pool's jobs. Later pools of this process (one per set of resources) share it.
        if state not in _STATES_OF_THIS_PROCESS:
            shutil.rmtree(state, ignore_errors=True)
            _STATES_OF_THIS_PROCESS.add(state)
        (state / "cancel").mkdir(parents=True, exist_ok=True)
        self.free_gpus = list(gpus)
        self.use_gpus = bool(gpus)
        self.gpus_per_job = max(1, gpus_per_job)
        slots = len(gpus) // self.gpus_per_job if gpus else workers
        self.workers = max(1, min(workers, slots) if gpus else workers)
        self.on_change = on_change
        #: called on every turn of the loop, between starting and reaping jobs: where an owner polls for cancels,
        #: or acts on a signal its handler only noted (a handler that stops the pool itself may run in the middle
        #: of a start, and the job being started would miss the stop)
        self.on_tick = on_tick
        self.queue: list[PoolJob] = []
        self.running: dict[str, tuple[Any, list[str]]] = {}  # Popen or ForkedJob
        self.exit_codes: dict[str, int | None] = {}  # None: never started
        self.started_at = time.monotonic()
        self.stop_signal: int | None = None

    def submit(self, job: PoolJob) -> None:
        self.queue.append(job)

    def clean(self, keys: list[str]) -> None:
        """Remove the state files of these jobs, and the directory once no pool of this process needs it."""
        for key in keys:
            for path in (self.state / f"{key}.pid", self.state / f"{key}.exit", self.state / "cancel" / key):
                path.unlink(missing_ok=True)
        for directory in (self.state / "cancel", self.state):
            try:
                directory.rmdir()
            except OSError:  # not empty: another pool of this process has jobs there
                break

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self) -> dict[str, int | None]:
        """Run every queued job; returns exit codes by key (``None`` for jobs never started)."""
        (self.state / "cancel").mkdir(parents=True, exist_ok=True)  # an earlier pool of this process cleaned up
        try:
            while self.queue or self.running:
                if self.stop_signal is None:
                    self._start_ready()
                if self.on_tick is not None:
                    self.on_tick(self)
                self._reap()
                time.sleep(0.005)  # a freed slot is refilled within 5 ms; waitpid polls cost microseconds
        except KeyboardInterrupt:
            self.stop(signal.SIGINT)
            self._drain()
        return self.exit_codes

    def _start_ready(self) -> None:
        need = self.gpus_per_job if self.use_gpus else 0
        while self.queue and len(self.running) < self.workers and len(self.free_gpus) >= need:
            job = self.queue.pop(0)
            if (self.state / "cancel" / job.key).exists():
                self._never_started(job)
                continue
            gpus = [self.free_gpus.pop(0) for _ in range(need)]
            env = dict(job.env)
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
            proc: Any
            if job.fork is not None:
                from .local_fork import ForkedJob

                proc = ForkedJob(job.fork, env, job.run_dir)
            else:
                proc = subprocess.Popen(job.argv, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            self.running[job.key] = (proc, gpus)
            write_atomic(self.state / f"{job.key}.pid", str(proc.pid))  # status/cancel never read it half-written
            self._changed()

    def _reap(self) -> None:
        for key, (proc, gpus) in list(self.running.items()):
            code = proc.poll()
            if code is None:
                continue
            code = code if code >= 0 else 128 - code
            write_atomic(self.state / f"{key}.exit", str(code))
            (self.state / f"{key}.pid").unlink(missing_ok=True)
            self.free_gpus.extend(gpus)
            del self.running[key]
            self.exit_codes[key] = code
            self._changed()

    def cancel(self, key: str) -> None:
        """Cancel job ``key`` from inside this process: a queued job never starts, a running one gets SIGTERM
        (its task ends CANCELLED when its run was marked, INTERRUPTED otherwise)."""
        (self.state / "cancel" / key).touch()
        entry = self.running.get(key)
        if entry is not None:
            try:
                os.kill(entry[0].pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self, signum: int) -> None:
        """Start nothing more; send ``signum`` to each running job's shell (it forwards it to the task once)."""
        self.stop_signal = signum
        for proc, _ in self.running.values():
            try:
                os.kill(proc.pid, signum)
            except ProcessLookupError:
                pass
        for job in self.queue:
            self._never_started(job)
        self.queue.clear()
        self._changed()

    def _drain(self, grace: float = 60.0) -> None:
        """After a stop: wait for the running jobs to record their status; a second Ctrl-C kills them."""
        deadline = time.monotonic() + grace
        try:
            while self.running and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        for proc, _ in self.running.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def _never_started(self, job: PoolJob) -> None:
        write_atomic(self.state / f"{job.key}.exit", NOT_STARTED)
        self.exit_codes[job.key] = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)
