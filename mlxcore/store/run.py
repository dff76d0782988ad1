"""The run store: creating runs, opening them, and every change to what they record.

:class:`RunStore` is a logs directory; :class:`Run` is one run directory in it. Launching, submission,
``mlxcore sub``, the logger, the schedulers and the reader all go through them: nothing else spells a path
inside a run (:mod:`mlxcore.store.layout`) or writes a run's metadata.

Metadata files are replaced atomically and, for ``info``, ``config`` and ``scheduler``, copied for readers
(:mod:`mlxcore.store.cache`) by the same call, never behind the caller's back. A status change is checked
against the allowed moves (:mod:`mlxcore.store.statuses`); a run that starts again after it ended keeps the
story of the attempt that ended in ``history``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..errors import RunError
from . import cache, changes, ids, layout
from .files import dump_yaml, now_iso, read_yaml, write_atomic
from .statuses import DEAD, FINAL_STATUSES, PREEMPTED, RUNNING, SUBMITTED, check_transition

log = logging.getLogger(__name__)

#: the fields of an ended attempt kept in ``history`` when the run starts again
ATTEMPT_FIELDS = ("status", "start_time", "end_time", "attempt", "error", "scheduler_job_id", "scheduler",
                  "duration_s", "allocation", "attempt_cpu_hours", "attempt_gpu_hours", "started_because",
                  "resources")


class Run:
    """One run directory: its paths, its recorded metadata, and the changes the store allows."""

    def __init__(self, log_id: int, root: Path, info: dict[str, Any] | None = None) -> None:
        self.log_id = log_id
        self.paths = layout.RunPaths(root)
        self._info = info

    def __repr__(self) -> str:
        return f"Run({self.log_id}, {str(self.paths.root)!r})"

    @property
    def root(self) -> Path:
        return self.paths.root

    # -- reading ------------------------------------------------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        """The info record as last read or written by this handle (read on first use; ``{}`` when missing)."""
        if self._info is None:
            self._info = self.read_info() or {}
        return self._info

    def read_info(self) -> dict[str, Any] | None:
        """The info record on disk now (``None`` when there is none)."""
        try:
            data = read_yaml(self.paths.info)
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - yaml errors and torn files: the caller decides
            reason = " ".join(str(exc).split())[:200]
            raise RunError(f"run {self.log_id}: cannot read {self.paths.info}: {reason}") from None
        self._info = data if isinstance(data, dict) else {}
        return self._info

    def read_metadata(self, name: str) -> Any:
        """``metadata/<name>`` parsed (``None`` when missing)."""
        try:
            return read_yaml(self.paths.metadata_file(name))
        except FileNotFoundError:
            return None

    def read_config(self) -> dict[str, Any] | None:
        data = self.read_metadata(layout.CONFIG)
        return data if isinstance(data, dict) else None

    def cancel_requested(self) -> bool:
        return self.paths.cancel_marker.exists()

    def job_ids(self) -> list[str]:
        """Every job id the scheduler ran this run under, in order (``metadata/job_ids``)."""
        try:
            return self.paths.job_ids.read_text().split()
        except OSError:
            return []

    def scheduler_record(self) -> dict[str, Any] | None:
        data = self.read_metadata(layout.SCHEDULER)
        return data if isinstance(data, dict) else None

    # -- writing ------------------------------------------------------------------------------------------------
    def write_metadata(self, name: str, data: Any) -> None:
        """Replace ``metadata/<name>`` atomically: YAML for data, as is for text (files of a version manager);
        the logs directory's change stamp is touched around the write (:mod:`.changes`)."""
        as_yaml = None if isinstance(data, (str, bytes)) else dump_yaml(data)
        changes.touch(self.root)
        try:
            write_atomic(self.paths.metadata_file(name), data if as_yaml is None else as_yaml)
            if as_yaml is not None:
                cache.record(self.paths.metadata, name, as_yaml, data)
        finally:
            changes.touch(self.root)

    def update_info(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the info record and write it. Status changes go through :meth:`set_status`."""
        if "status" in fields:
            raise RunError("update_info cannot change the status; use set_status")
        info = {**self.info, **fields}
        self.write_metadata(layout.INFO, info)
        self._info = info  # only once written: a failed write leaves the handle as the disk is
        return info

    def set_status(self, status: str, *, previous: str | None = None, **fields: Any) -> dict[str, Any]:
        """Move the run to ``status`` (checked), merging ``fields``. When the run starts again after an attempt
        that ended (or died: ``previous`` DEAD), that attempt goes to ``history`` and its error is cleared."""
        info = dict(self.info)
        old = previous or info.get("status")
        check_transition(self.log_id, old if isinstance(old, str) else None, status)
        if status in (SUBMITTED, RUNNING) and (old in FINAL_STATUSES or old == DEAD or (
                old == RUNNING and status == RUNNING)):
            ended = {k: info[k] for k in ATTEMPT_FIELDS if k in info}
            ended["status"] = DEAD if old in (RUNNING, DEAD) else old
            info["history"] = [*info.get("history", []), ended]
            info.pop("error", None)
        info.update(fields, status=status)
        self.write_metadata(layout.INFO, info)
        self._info = info
        # the job script's test for a preemption (a task's own exit code 3 is not one): it reads no YAML. Written
        # after the info (a failed info write never leaves a marker that would requeue the job), then the change
        # stamp again: the marker changed metadata/ too (mlxcore.store.changes)
        marker = self.paths.preempted_marker
        if status == PREEMPTED:  # its one line says whether this attempt saved a checkpoint (see the job script)
            saved = self.checkpointed_since(info.get("start_timestamp"))
            write_atomic(marker, (layout.CHECKPOINTED if saved else "no checkpoint") + "\n")
            changes.touch(self.root)
        elif marker.exists():
            marker.unlink(missing_ok=True)
            changes.touch(self.root)
        if status == RUNNING and self.paths.job_error_marker.exists():  # about an attempt before this one
            self.paths.job_error_marker.unlink(missing_ok=True)
            changes.touch(self.root)
        return info

    def checkpointed_since(self, timestamp: Any) -> bool:
        """Whether a checkpoint was written at or after ``timestamp`` (this attempt's start): a stopped attempt
        without one gains nothing from being requeued at its time limit."""
        if not isinstance(timestamp, (int, float)):
            return False
        try:
            entries = list(os.scandir(self.paths.checkpoints))
        except FileNotFoundError:
            return False
        return any(e.is_file() and not e.name.startswith(layout.TEMP_PREFIX) and e.stat().st_mtime >= timestamp - 1
                   for e in entries)

    def add_history(self, **event: Any) -> None:
        """Record an event (a takeover, a config change) in ``history``, with its time."""
        self.update_info(history=[*self.info.get("history", []), {"time": now_iso(), **event}])

    def request_cancel(self) -> None:
        changes.touch(self.root)
        self.paths.cancel_marker.touch()
        changes.touch(self.root)

    def clear_cancel_request(self) -> None:
        changes.touch(self.root)
        self.paths.cancel_marker.unlink(missing_ok=True)
        changes.touch(self.root)

    def record_job_error(self, text: str) -> None:
        """Leave the job error marker for the run's last attempt: one line from whoever ended or refused that
        attempt outside the task (the job script, a scheduler's resubmission); the run then shows FAILED with
        it until it runs again (:mod:`.reconcile`)."""
        changes.touch(self.root)
        write_atomic(self.paths.job_error_marker, text.strip().splitlines()[0][:500] + "\n")
        changes.touch(self.root)

    def record_submission(self, record: dict[str, Any]) -> None:
        """What the submitter learnt: scheduler name, job id, script, submit time (``metadata/scheduler.yaml``)."""
        self.write_metadata(layout.SCHEDULER, record)


class RunStore:
    """A logs directory: the runs in it and the creation of new ones."""

    def __init__(self, parent: Path | str) -> None:
        self.parent = Path(parent).expanduser().absolute()

    def __repr__(self) -> str:
        return f"RunStore({str(self.parent)!r})"

    def run_dir(self, log_id: int) -> Path:
        return self.parent / str(log_id)

    def ids(self) -> list[int]:
        """The ids of the run directories, sorted."""
        try:
            names = [p.name for p in self.parent.iterdir()]
        except FileNotFoundError:
            return []
        return sorted(int(n) for n in names if layout.is_run_name(n) and (self.parent / n).is_dir())

    def open(self, log_id: int) -> Run:
        """The existing run ``log_id``.

        :raises RunError: there is no such run.
        """
        root = self.run_dir(log_id)
        if not root.is_dir():
            raise RunError(f"no run {log_id} in {self.parent}")
        return Run(log_id, root)

    def get(self, log_id: int) -> Run | None:
        root = self.run_dir(log_id)
        return Run(log_id, root) if root.is_dir() else None

    def create(self, status: str, info: dict[str, Any], metadata: dict[str, Any] | None = None,
               log_id: int | None = None, before_info: Any = None) -> tuple[Run, Any]:
        """Create a run with ``status`` (SUBMITTED or RUNNING), its ``metadata`` files (name -> data: the
        config, the settings, a version manager's files) and its info: the new directory appears whole.

        :param log_id: the id to create (a forced id); a new one when ``None``.
        :param before_info: ``before_info(run)`` is called in the staging directory before the info is written
            (the writer takes its lease there); its result is returned with the run.
        """
        def build(new_id: int, staging: Path) -> tuple[dict[str, Any], Any]:
            run = Run(new_id, staging, {})
            (staging / layout.METADATA).mkdir()
            for name, data in (metadata or {}).items():
                run.write_metadata(name, data)
            extra = before_info(run) if before_info is not None else None
            fields = {"log_id": new_id, "log_dir": str(self.run_dir(new_id)), "format": layout.FORMAT, **info}
            try:
                return run.set_status(status, **fields), extra
            except BaseException:
                release = getattr(extra, "release", None)  # a lease taken in the staging directory
                if release is not None:
                    release()
                raise

        new_id, (written, extra) = ids.create_run(self.parent, build, log_id)
        return Run(new_id, self.run_dir(new_id), written), extra


def open_run_dir(run_dir: Path | str) -> Run:
    """A :class:`Run` for a run directory known by its path (a scheduler's job, a reader's row)."""
    root = Path(run_dir)
    if not layout.is_run_name(root.name):
        raise RunError(f"{root} is not a run directory (its name is not a run id)")
    return Run(int(root.name), root)
