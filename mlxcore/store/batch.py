"""The runs one submission makes SUBMITTED, undone together when the submission fails.

A submission creates new runs (SUBMITTED) and may send existing ones again (``rerun_failed``, a forced id).
If the scheduler refuses the jobs, nothing may stay behind: the runs it created are removed, the runs it sent
again get back the info and submission record they had, and the submission's own files go too
(:func:`mlxcore.schedulers.submission.submit_jobs` removes its script directory).

:meth:`SubmissionBatch.create` makes the new runs of a sweep in one go: their ids reserved under one hold of the
ids lock, the metadata shared by every run (the settings, a version manager's files) encoded once, and each run
built in its own staging directory with plain writes (nobody sees a staging directory: the atomic writes of
:meth:`~mlxcore.store.Run.write_metadata` would add a temporary file per file and rewrite ``.cache.json`` once
per cached file) and moved into place by one rename, as :meth:`~mlxcore.store.RunStore.create` does. Nothing is
``fsync``'d, by either: a run created just before a power cut may be lost whole, or show empty files.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import cache, ids, layout
from .changes import touch
from .files import dump_yaml, read_bytes, write_atomic, write_new
from .lease import RunBusyError, holder_alive, read_holder
from .run import Run, RunStore
from .statuses import DEAD, RUNNING, SUBMITTED, check_transition
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

    def create(self, points: Sequence[tuple[dict[str, Any], dict[str, Any] | None]], metadata: dict[str, Any]
               ) -> list[Run]:
        """New SUBMITTED runs, one per ``(info, config)`` of ``points``, with increasing ids, each with ``metadata``
        (name -> data, the same for every run): what :meth:`add` without a ``log_id`` makes, for many runs.

        :raises RunError: a run directory cannot be created (the runs made before it stay in the batch, for
            :meth:`abandon`).
        """
        parent = self.store.parent
        shared = {name: _encode(data) for name, data in metadata.items()}
        runs = []
        for log_id, (info, config) in zip(ids.reserve(parent, len(points)), points):
            fields = {"log_id": log_id, "log_dir": str(parent / str(log_id)), "format": layout.FORMAT, **info}
            written = ids.place(parent, log_id, functools.partial(_build, fields=fields, config=config,
                                                                   shared=shared))
            run = Run(log_id, parent / str(log_id), written)
            self.created.append(run)
            runs.append(run)
        return runs

    def _again(self, run: Run, info: dict[str, Any], metadata: dict[str, Any], config: dict[str, Any] | None,
               allow_config_change: bool) -> Run:
        holder = read_holder(run.paths)
        if holder is not None and holder_alive(holder, run.paths):
            raise RunBusyError(f"run {run.log_id} is being written by {holder.describe()}; it cannot be submitted "
                               f"again while it runs (stop it first: mlxcore cancel LOGS {run.log_id})")
        changes, write_config = check_config(run, config, allow_config_change)
        names = (layout.INFO, layout.CONFIG, layout.SCHEDULER, layout.JOB_IDS, layout.CANCEL_MARKER,
                 layout.METADATA_CACHE, layout.SCHEDULER_CACHE, *metadata)
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


def _encode(data: Any) -> tuple[bytes, Any]:
    """A metadata file's bytes (YAML for data, as is for text), with the data when it is YAML."""
    if isinstance(data, (str, bytes)):
        return (data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data), None
    return dump_yaml(data), data


def _build(log_id: int, staging: Path, fields: dict[str, Any], config: dict[str, Any] | None,
           shared: dict[str, tuple[bytes, Any]]) -> dict[str, Any]:
    """Fill the staging directory of new run ``log_id`` as :meth:`RunStore.create` would for a SUBMITTED run:
    the config, the shared metadata, the info, and the readers' copy of what is cached; returns the info."""
    check_transition(log_id, None, SUBMITTED)
    metadata = staging / layout.METADATA
    metadata.mkdir()
    files = {**({layout.CONFIG: _encode(config)} if config is not None else {}), **shared}
    info = {**fields, "status": SUBMITTED}
    files[layout.INFO] = (dump_yaml(info), info)
    copies: dict[str, dict[str, Any]] = {}  # document -> {file name: copy}
    for name, (raw, data) in files.items():
        write_new(metadata / name, raw)
        copy = cache.entry(raw, data) if data is not None and name in cache.CACHED_FILES else None
        if copy is not None:
            copies.setdefault(cache.document_of(name), {})[name] = copy
    for document_name, entries in copies.items():
        write_new(metadata / document_name, cache.document(entries))
    return info
