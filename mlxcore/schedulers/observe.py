"""What the runs of a logs directory are doing: each run's own record, reconciled with its scheduler's answer.

Runs are grouped by the scheduler that took them (their submission record, key ``name``) and each scheduler is
asked ONE batched status question for all of its job ids. The state of each run is
:func:`mlxcore.store.reconcile_detail` of its info, its cancel marker and that answer: a job the scheduler has
forgotten is judged by the run's info alone, and a SUBMITTED run whose job is gone is DEAD (an orphan).
``mlxcore status``/``cancel`` show this, and ``rerun_failed`` decides from it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..errors import MlxcoreError, RunError
from ..store import cache as metadata_cache
from ..store import layout
from .base import JobUsage
from .submission import current_job_id

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """One run as ``mlxcore status`` shows it."""

    log_id: int
    run_dir: Path
    status: str
    scheduler: str | None = None
    job_id: str | None = None
    exit_code: int | None = None
    detail: str | None = None
    info: dict[str, Any] = field(default_factory=dict, repr=False)
    #: the scheduler's own word for the job's state (``OUT_OF_MEMORY``), when it gave one
    native_state: str | None = None
    #: what the job used, from the scheduler's accounting
    usage: JobUsage | None = None

    def row(self) -> dict[str, Any]:
        usage = self.usage or JobUsage()
        return {"log_id": self.log_id, "status": self.status, "scheduler": self.scheduler, "job_id": self.job_id,
                "exit_code": self.exit_code, "detail": self.detail, "run_dir": str(self.run_dir),
                "native_state": self.native_state, "elapsed_s": usage.elapsed_s, "cpus": usage.cpus,
                "gpus": usage.gpus, "mem_bytes": usage.mem_bytes, "max_rss_bytes": usage.max_rss_bytes,
                "nodes": usage.nodes, "cpu_hours": usage.cpu_hours, "gpu_hours": usage.gpu_hours}


def _read_metadata(run_dir: Path) -> tuple[dict | None, dict | None]:
    """``(info, scheduler record)`` of a run (``None`` when missing), through the run's JSON copy of its
    metadata when it matches (:mod:`mlxcore.store.cache`): ``mlxcore status --watch`` reads every run again
    every few seconds."""
    metadata = layout.RunPaths(run_dir).metadata
    copies = metadata_cache.load(metadata)
    out = []
    for part in (layout.INFO, layout.SCHEDULER):
        try:
            data = metadata_cache.read(metadata, part, copies)
        except FileNotFoundError:
            data = None
        out.append(data if isinstance(data, dict) or data is None else {})
    return out[0], out[1]


def observe(logs: Path, ids: Iterable[int] | None = None, statuses: Iterable[str] | None = None) -> list[RunState]:
    """The runs of ``logs`` (restricted to ``ids``), each reconciled with its scheduler's live answer.

    :param statuses: ask the schedulers only about runs whose own record is one of these (``None``: all).
    """
    from ..plugins import get_scheduler_class

    runs = store.RunStore(logs)
    if not runs.parent.is_dir():
        raise RunError(f"no logs directory {logs}")
    found = [(log_id, runs.run_dir(log_id)) for log_id in runs.ids()]
    if ids is not None:
        wanted = set(ids)
        missing = wanted - {log_id for log_id, _ in found}
        if missing:
            log.warning("no run %s in %s", ", ".join(map(str, sorted(missing))), logs)
        found = [(log_id, p) for log_id, p in found if log_id in wanted]
    loaded: list[tuple[int, Path, dict | None, dict | None]] = []
    for log_id, run_dir in found:
        try:
            info, record = _read_metadata(run_dir)
        except Exception as exc:  # noqa: BLE001 - a half-written or foreign file: show the run, do not stop
            info, record = {"status": "UNREADABLE", "error": {"message": str(exc)}}, None
        loaded.append((log_id, run_dir, info, record))

    asked = None if statuses is None else set(statuses)
    # job ids per scheduler, each once (the points of a pack share one job; dicts keep the order and look up fast)
    by_scheduler: dict[str, dict[str, None]] = {}
    job_of: dict[Path, str] = {}  # read once: a job may add its id to its job ids meanwhile
    for _, run_dir, info, record in loaded:
        if record and record.get("name") and record.get("job_id") is not None:
            job_of[run_dir] = current_job_id(run_dir, record)
            if asked is None or (info or {}).get("status") in asked:
                by_scheduler.setdefault(str(record["name"]), {})[job_of[run_dir]] = None
    live: dict[str, dict[str, Any]] = {}
    for asked_name, job_ids in by_scheduler.items():
        try:
            scheduler = get_scheduler_class(asked_name)()
            live[asked_name] = scheduler.status(list(job_ids))  # ONE batched call per scheduler
        except MlxcoreError as exc:
            log.warning("cannot ask scheduler %r about %d job(s): %s; showing the runs' own status", asked_name,
                        len(job_ids), exc)

    out = []
    for log_id, run_dir, info, record in loaded:
        name = str(record["name"]) if record and record.get("name") else None
        recorded = str(record["job_id"]) if record and record.get("job_id") is not None else None
        job_id = job_of.get(run_dir) or recorded
        answered = name in live and job_id in by_scheduler.get(name or "", {})
        answer = live.get(name or "", {}).get(job_id or "")
        status, detail = store.reconcile_detail(info, run_dir, answer, answered=answered, record=record)
        # the job's exit code once the scheduler says it ended (a task that wrote FAILED may still be exiting)
        ended = answer is not None and answer.state in store.FINAL_STATUSES
        exit_code = answer.exit_code if answer is not None and ended and status in (
            store.FAILED, store.TIMEOUT, store.CANCELLED) else None
        error = (info or {}).get("error")
        if isinstance(error, dict) and status == store.FAILED:
            detail = f"{error.get('type', 'error')}: {error.get('message', '')}".strip()
        elif answer is not None and answer.reason and not (status == store.FAILED and detail):
            detail = answer.reason  # a FAILED run's own detail (its job script's line) says more
        if name and answer is None and job_id and status in store.ACTIVE_STATUSES:
            detail = f"unknown to {name}"
        out.append(RunState(log_id, run_dir, status, name, job_id, exit_code, detail, info or {},
                            getattr(answer, "native_state", None), getattr(answer, "usage", None)))
    return out
