"""Packing (``mlx.scheduler.pack=K``): K sweep points run by ONE cluster job, through a local pool inside it.

Why: a cluster that lets a user queue 100 jobs cannot take a sweep of 10,000 one-point jobs (array tasks count
one by one), and short points pay the scheduler's start-up per point. A pack job instead runs its points a
few at a time on its allocation; each point keeps its own run directory, status and history, as if it had a
job of its own.

**Submission** (:func:`plan_packs`, called by :func:`~mlxcore.schedulers.submission.submit_jobs`): consecutive
points are grouped K at a time; each group gets a pack directory ``<submission dir>/packs/<first>-<last>/``
holding ``pack.json`` (the points: run directory, command, work directory) and a ``metadata/`` directory. The
pack becomes one :class:`~mlxcore.schedulers.base.JobSpec` whose "run directory" is the pack directory and whose
command is ``python -m mlxcore.schedulers.pack <pack dir>/pack.json``: the shared job script then writes the
job's output to the pack's ``log.stdout``/``log.stderr``, finds the pack's preempted marker and job error there,
and requeues the job exactly as it requeues a one-point job. Each point's submission record names the pack's
job id and its pack directory (``pack``), so ``mlxcore status`` and ``mlxcore cancel`` find it.

**Inside the job** (:func:`main`): the points whose run already ended (COMPLETE, FAILED, CANCELLED) or whose
cancel was requested are skipped, so a requeued pack runs only its unfinished points, each resuming in its own
run directory. The others go through a :class:`~mlxcore.schedulers.local_pool.LocalPool` sized to the
allocation (:func:`size_workers`): ``MLXCORE_CPUS // pack_cpus`` points at once (at most K), the allocation's
``CUDA_VISIBLE_DEVICES`` split between them. Each point is a fork of this small process that ``exec``s the
point's command with its output appended to its run's ``log.stdout``/``log.stderr``. A stop signal (the
checkpoint signal, USR1, USR2, TERM, INT) is forwarded to every running point and nothing more starts. A run
cancelled meanwhile (``mlxcore cancel``: its cancel marker) is never started, or gets SIGTERM.

**How the pack ends**: when a point ended PREEMPTED, or a checkpoint signal stopped the pack before every point
ended, the runner writes the pack's preempted marker and exits with :data:`mlxcore.store.PREEMPTED_EXIT_CODE`:
the job requeues itself, and the points not started stay SUBMITTED. A pack stopped by TERM or INT exits
``128 + signal``. Otherwise it exits 0 however its points went (each run's own status says that), non-zero
only for its own errors.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import store
from ..errors import JobEnvironmentError, MlxcoreError
from ..store import layout, write_atomic
from .base import JobSpec, Scheduler
from .environment import CPUS_VARIABLE, STARTED_BECAUSE_VARIABLE
from .local import record_unstarted
from .local_pool import LocalPool, PoolJob

log = logging.getLogger(__name__)

PACK_FILE = "pack.json"
PACKS_DIR = "packs"
#: the pool's state files, inside the pack directory
POOL_DIR = "pool"
#: a point whose run recorded one of these is not run again by its pack
DONE = frozenset({store.COMPLETE, store.FAILED, store.CANCELLED})
#: signals that stop a pack for good (its job is cancelled or killed); the others ask for a checkpoint
INTERRUPTING = (signal.SIGTERM, signal.SIGINT)
#: how often the runner looks for cancel markers (seconds)
CANCEL_POLL_S = 1.0


@dataclass
class Point:
    log_id: int
    run_dir: Path
    command: list[str]
    workdir: Path


# -- submission ------------------------------------------------------------------------------------------------
def plan_packs(scheduler: Scheduler, points: list[JobSpec], directory: Path) -> list[JobSpec]:
    """Write one pack directory under ``directory`` per ``scheduler.pack`` consecutive points; return one job
    per pack, in order (its ``run_dir`` is the pack directory)."""
    size = scheduler.pack
    checkpoint = scheduler.job_environment().checkpoint_signal
    jobs = []
    for start in range(0, len(points), size):
        group = points[start : start + size]
        first, last = group[0].log_id, group[-1].log_id
        pack_dir = directory / PACKS_DIR / f"{first}-{last}"
        (pack_dir / layout.METADATA).mkdir(parents=True, exist_ok=True)
        data = {"pack_cpus": scheduler.pack_cpus, "checkpoint_signal": checkpoint,
                "points": [{"log_id": p.log_id, "run_dir": str(p.run_dir), "command": list(p.command),
                            "workdir": str(p.workdir)} for p in group]}
        write_atomic(pack_dir / PACK_FILE, json.dumps(data, indent=1) + "\n")
        command = [sys.executable, "-m", __name__, str(pack_dir / PACK_FILE)]
        jobs.append(JobSpec(first, pack_dir, command, group[0].workdir, name=f"mlxcore-pack-{first}-{last}"))
    return jobs


def read_pack(pack_file: Path) -> tuple[list[Point], dict[str, Any]]:
    """The points of a pack file and its settings.

    :raises JobEnvironmentError: the file is missing or not a pack file (one line).
    """
    try:
        data = json.loads(Path(pack_file).read_text())
        points = [Point(int(p["log_id"]), Path(p["run_dir"]), [str(a) for a in p["command"]], Path(p["workdir"]))
                  for p in data["points"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise JobEnvironmentError(f"cannot read the pack file {pack_file}: {exc}") from None
    return points, data


def _own_status(run_dir: Path) -> str | None:
    try:
        info = store.open_run_dir(run_dir).read_info()
    except Exception as exc:  # noqa: BLE001 - a torn info: run the point, its writer will say more
        log.warning("cannot read the status of %s (%s); running it", run_dir, exc)
        return None
    status = (info or {}).get("status")
    return status if isinstance(status, str) else None


def settled(run_dir: Path) -> bool:
    """Whether a point is not to be run (again): its run ended for good, or its cancel was requested."""
    return layout.RunPaths(run_dir).cancel_marker.exists() or _own_status(run_dir) in DONE


def nothing_left(pack_dir: Path) -> bool:
    """Whether every point of the pack in ``pack_dir`` is settled: its job may then be cancelled as a whole."""
    try:
        points, _ = read_pack(pack_dir / PACK_FILE)
    except JobEnvironmentError:
        return True
    return all(settled(point.run_dir) for point in points)


# -- inside the job --------------------------------------------------------------------------------------------
def allocation_cpus(environ: Mapping[str, str]) -> int:
    """The CPUs of the job: ``MLXCORE_CPUS`` (the job script's copy of the scheduler's count), else the CPUs this
    process may run on (a cgroup's cpuset), else the machine's."""
    raw = environ.get(CPUS_VARIABLE, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def visible_gpus(environ: Mapping[str, str]) -> list[str]:
    """The allocation's GPUs: the ids of ``CUDA_VISIBLE_DEVICES`` (none when unset, empty or ``-1``)."""
    return [g.strip() for g in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip() and g.strip() != "-1"]


def size_workers(points: int, pack_cpus: int, environ: Mapping[str, str]) -> tuple[int, list[str], int]:
    """``(workers, gpus, gpus_per_point)``: at most ``points``, ``cpus // pack_cpus`` points at once (at least
    one), and no more than there are GPUs when the allocation has some, each point getting an equal share."""
    workers = max(1, min(points, allocation_cpus(environ) // max(1, pack_cpus)))
    gpus = visible_gpus(environ)
    if gpus:
        workers = min(workers, len(gpus))
    return workers, gpus, max(1, len(gpus) // workers) if gpus else 1


def _exec(point: Point) -> Callable[[], int]:
    """In the forked child (output already in the run directory, env set): become the point's task."""
    def run() -> int:
        os.chdir(point.workdir)
        os.execvpe(point.command[0], point.command, os.environ)

    return run


class PackRunner:
    """Runs the unfinished points of one pack through a :class:`LocalPool`; :meth:`run` returns the exit code."""

    def __init__(self, pack_file: Path, environ: Mapping[str, str] | None = None) -> None:
        self.pack_dir = Path(pack_file).parent
        self.points, data = read_pack(pack_file)
        self.pack_cpus = int(data.get("pack_cpus") or 1)
        checkpoint = data.get("checkpoint_signal")
        self.signals = [signal.SIGUSR1, signal.SIGUSR2, *INTERRUPTING]
        if isinstance(checkpoint, str) and hasattr(signal, f"SIG{checkpoint}"):
            self.signals.append(signal.Signals[f"SIG{checkpoint}"])
        self.environ = os.environ if environ is None else environ
        self.noted: int | None = None  # a signal the handler noted, acted on at the pool's next turn
        self.cancelled: set[str] = set()
        self.next_poll = 0.0

    def run(self) -> int:
        # at once: a stop that came before the pool runs is acted on when it starts (a default USR1 would kill)
        previous = {signum: signal.signal(signum, self._note) for signum in self.signals}
        try:
            return self._run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self) -> int:
        layout.RunPaths(self.pack_dir).preempted_marker.unlink(missing_ok=True)  # about an attempt before this one
        todo = []
        for point in self.points:
            if not settled(point.run_dir):
                todo.append(point)
            elif layout.RunPaths(point.run_dir).cancel_marker.exists():
                record_unstarted(point.run_dir, None, None)  # SUBMITTED and cancelled: CANCELLED, never started
        log.info("pack %s: %d point(s) to run, %d already ended or cancelled", self.pack_dir.name, len(todo),
                 len(self.points) - len(todo))
        if not todo:
            return 0
        workers, gpus, per_point = size_workers(len(todo), self.pack_cpus, self.environ)
        cpus = max(1, allocation_cpus(self.environ) // workers)
        log.info("pack %s: %d worker(s), %d CPU(s) each, GPUs %s", self.pack_dir.name, workers, cpus,
                 ",".join(gpus) or "none")
        pool = LocalPool(self.pack_dir / POOL_DIR, workers, gpus, per_point, on_tick=self._tick)
        for point in todo:
            env = {CPUS_VARIABLE: str(cpus)}
            if _own_status(point.run_dir) == store.SUBMITTED:  # its first attempt: no attempt before it ended
                env[STARTED_BECAUSE_VARIABLE] = ""
            pool.submit(PoolJob(str(point.log_id), list(point.command), env, point.run_dir, fork=_exec(point)))
        self._tick(pool)  # a stop noted meanwhile: nothing starts
        codes = pool.run()
        pool.clean([str(point.log_id) for point in todo])
        return self._finish(todo, codes, pool.stop_signal)

    def _note(self, signum: int, frame: Any) -> None:
        self.noted = signum

    def _tick(self, pool: LocalPool) -> None:
        if self.noted is not None:
            signum, self.noted = self.noted, None
            log.info("pack %s: got %s: stopping its points", self.pack_dir.name, signal.Signals(signum).name)
            pool.stop(signum)
        now = time.monotonic()
        if now < self.next_poll:
            return
        self.next_poll = now + CANCEL_POLL_S
        waiting = {job.key for job in pool.queue} | set(pool.running)
        for point in self.points:
            key = str(point.log_id)
            if key in waiting and key not in self.cancelled and layout.RunPaths(point.run_dir).cancel_marker.exists():
                log.info("pack %s: run %s was cancelled", self.pack_dir.name, key)
                self.cancelled.add(key)
                pool.cancel(key)

    def _finish(self, todo: list[Point], codes: dict[str, int | None], stopped: int | None) -> int:
        """Record what the points could not, and say how the job should end (the module docstring)."""
        preempted = progress = False
        unfinished = 0
        for point in todo:
            key, run = str(point.log_id), store.open_run_dir(point.run_dir)
            code = codes.get(key)
            status = _own_status(point.run_dir)
            if status == store.SUBMITTED and (stopped is None or key in self.cancelled):
                # never started (cancelled), or exited before its task began (a broken setup): its final word
                record_unstarted(point.run_dir, code, None)
                status = _own_status(point.run_dir)
            elif status == store.RUNNING and code is not None:  # its process is gone without a word: killed
                _record_killed(run, code)
                status = store.FAILED
            if status in DONE:
                progress = progress or code is not None
            else:
                unfinished += 1
            if status == store.PREEMPTED:
                preempted = True
                marker = run.paths.preempted_marker
                progress = progress or (marker.exists() and marker.read_text().strip() == layout.CHECKPOINTED)
        checkpoint_stop = stopped is not None and stopped not in INTERRUPTING
        if preempted or (checkpoint_stop and unfinished):
            # the job script requeues the job on this marker and exit code; "no checkpoint" at the time limit
            # means this attempt advanced nothing, and a requeue would only reach the limit again
            write_atomic(layout.RunPaths(self.pack_dir).preempted_marker,
                         (layout.CHECKPOINTED if progress else "no checkpoint") + "\n")
            log.info("pack %s: %d point(s) left to run: requeue", self.pack_dir.name, unfinished)
            return store.PREEMPTED_EXIT_CODE
        if stopped is not None and unfinished:  # stopped for good (cancelled, killed): the points left stay as they are
            return 128 + stopped
        return 0


def _record_killed(run: store.Run, code: int) -> None:
    """A point whose process ended while its run still says RUNNING was killed before it could record how
    (SIGKILL: the kernel's out-of-memory killer, most often): FAILED with its exit code, not left to look DEAD."""
    try:
        how = f"was killed by {signal.Signals(code - 128).name}" if code > 128 else f"exited with code {code}"
    except ValueError:
        how = f"exited with code {code}"
    hint = " (out of memory?)" if code == 128 + signal.SIGKILL else ""
    run.set_status(store.FAILED, exit_code=code, error={
        "type": "JobError", "message": f"the point's process {how} before it recorded an end{hint}"})


def main(argv: list[str]) -> int:
    logging.basicConfig(level=os.environ.get("MLXCORE_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s mlxcore: %(message)s", stream=sys.stderr)
    if len(argv) != 1:
        print("usage: python -m mlxcore.schedulers.pack PACK_FILE", file=sys.stderr)
        return 2
    try:
        return PackRunner(Path(argv[0])).run()
    except MlxcoreError as exc:
        print(f"mlxcore: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
