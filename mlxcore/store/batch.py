"""The runs one submission makes SUBMITTED, undone together when the submission fails.

A submission creates new runs (SUBMITTED) and may send existing ones again (``rerun_failed``, a forced id).
If the scheduler refuses the jobs, nothing may stay behind: the runs it created are removed, the runs it sent
again get back the info and submission record they had, and the submission's own files go too
(:func:`mlxcore.schedulers.submission.submit_jobs` removes its script directory).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import layout
from .changes import touch
from .files import read_bytes, write_atomic
from .lease import RunBusyError, holder_alive, read_holder
from .run import Run, RunStore
from .statuses import DEAD, RUNNING, SUBMITTED
from .writer import check_config

log = logging.getLogger(__name__)


class SubmissionBatch:
    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.created: list[Run] = []
        #: run -> the files a submission rewrites, as they were (``None`` for a file that did not exist)
        self.resubmitted: dict[int, tuple[Run, dict[Path, bytes | None]]] = {}

    def add(self, info: dict[str, Any], metadata: dict[str, Any], config: dict[str, Any] | None,
            log_id: int | None = None, allow_config_change: bool = False) -> Run:
        """A SUBMITTED run for one sweep point: run ``log_id`` sent again when it exists, else a new run.

        :raises RunBusyError: run ``log_id`` is being written by a live process.
        :raises ConfigChangedError: run ``log_id`` recorded another config (and the change is not allowed).
        """
        existing = self.store.get(log_id) if log_id is not None else None
        if existing is None:
            files = {**({layout.CONFIG: config} if config is not None else {}), **metadata}
            run, _ = self.store.create(SUBMITTED, info, files, log_id=log_id)
            self.created.append(run)
            return run
        return self._again(existing, info, metadata, config, allow_config_change)

    def _again(self, run: Run, info: dict[str, Any], metadata: dict[str, Any], config: dict[str, Any] | None,
               allow_config_change: bool) -> Run:
        holder = read_holder(run.paths)
        if holder is not None and holder_alive(holder, run.paths):
            raise RunBusyError(f"run {run.log_id} is being written by {holder.describe()}; it cannot be submitted "
                               f"again while it runs (stop it first: mlxcore cancel LOGS {run.log_id})")
        changes, write_config = check_config(run, config, allow_config_change)
        names = (layout.INFO, layout.CONFIG, layout.SCHEDULER, layout.JOB_IDS, layout.CANCEL_MARKER,
                 layout.METADATA_CACHE, *metadata)
        saved = {path: _read_or_none(path) for path in [*map(run.paths.metadata_file, names), run.paths.job_script]}
        self.resubmitted[run.log_id] = (run, saved)
        recorded = run.read_info() or {}
        previous = recorded.get("status")
        if previous == RUNNING:  # not alive (checked above): that attempt died
            previous = DEAD
        if write_config:
            run.write_metadata(layout.CONFIG, config)
        for name, data in metadata.items():
            run.write_metadata(name, data)
        old_jobs = run.job_ids()
        run.paths.job_ids.unlink(missing_ok=True)  # the new job's ids start afresh; the old ones go to history
        run.clear_cancel_request()
        run.set_status(SUBMITTED, previous=previous, **info)
        if old_jobs:
            run.add_history(event="resubmitted", previous_job_ids=old_jobs)
        if changes:
            run.add_history(event="config_changed", changes=[
                {"key": key, "recorded": old, "new": new} for key, old, new in changes])
        return run

    def abandon(self, run_dirs: Iterable[Path] | None = None) -> None:
        """Undo this batch for ``run_dirs`` (every run of it when ``None``): created runs are removed, runs sent
        again get back the files the submission rewrote (info, config, submission record, job script, ...)."""
        wanted = None if run_dirs is None else {Path(p) for p in run_dirs}
        for run in [r for r in self.created if wanted is None or r.root in wanted]:
            shutil.rmtree(run.root, ignore_errors=True)
            self.created.remove(run)
        for log_id, (run, saved) in list(self.resubmitted.items()):
            if wanted is not None and run.root not in wanted:
                continue
            touch(run.root)
            for path, raw in saved.items():
                try:
                    if raw is None:
                        path.unlink(missing_ok=True)
                    else:
                        write_atomic(path, raw)
                except OSError as exc:
                    log.error("run %s: cannot restore %s after the failed submission: %s", log_id, path, exc)
            touch(run.root)
            del self.resubmitted[log_id]


def _read_or_none(path: Path) -> bytes | None:
    try:
        return read_bytes(str(path))
    except FileNotFoundError:
        return None
