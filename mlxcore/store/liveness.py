"""The status to show for a run: what its info says, corrected by what is known of its writer.

A run's ``info.yaml`` holds the status its writer last recorded. Two cases make that record stale, and both
show as DEAD (never written; a dead run may be resumed or rerun like a failed one):

- it says RUNNING and its writer is gone: on the writer's host, the lease's pid no longer runs (or a newer
  process has that pid); from another host, the heartbeat stopped (:mod:`mlxcore.store.lease`). A lease that
  was released while the info still says RUNNING means the writer ended without recording how;
- the run directory has no info at all (a directory written by a pre-store mlxcore killed while creating it):
  DEAD, "never started".

Runs written before the store (format 1, no lease file) are judged by the pid and hostname of their info.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from . import layout
from .files import read_yaml
from .lease import heartbeat_fresh, holder_alive, process_running, read_holder
from .statuses import DEAD, FINAL_STATUSES, RUNNING, UNKNOWN

NEVER_STARTED = "never started: the run directory has no info"


def judge(info: dict[str, Any] | None, run_dir: Path | str, now: float | None = None) -> tuple[str, str | None]:
    """``(status, reason)``: the status to show for a run whose info is ``info`` (``None``: no info file), and
    why it differs from the recorded one (``None`` when it does not)."""
    if info is None:
        return DEAD, NEVER_STARTED
    status = info.get("status")
    if not isinstance(status, str):
        return UNKNOWN, "its info records no status"
    if status != RUNNING:
        return status, None
    paths = layout.RunPaths(run_dir)
    holder = read_holder(paths)
    if holder is not None:
        if holder_alive(holder, paths, now):
            return RUNNING, None
        return _dead_unless_settled(paths, f"its writer ({holder.describe()}) is gone")
    if paths.lease.exists():  # released: the writer ended without recording how (or before the store, format 1)
        return _dead_unless_settled(paths, "its writer ended without recording a final status")
    return _legacy(info, paths, now)


def effective_status(info: dict[str, Any] | None, run_dir: Path | str, now: float | None = None) -> str:
    """The status to show (see :func:`judge`)."""
    return judge(info, run_dir, now)[0]


def _legacy(info: dict[str, Any], paths: layout.RunPaths, now: float | None) -> tuple[str, str | None]:
    """A RUNNING run with no lease file: written before the store; its info's pid and hostname decide."""
    pid = info.get("pid")
    if info.get("hostname") == socket.gethostname() and isinstance(pid, int):
        if process_running(pid):
            return RUNNING, None
        return _dead_unless_settled(paths, f"its process {pid} is gone")
    if heartbeat_fresh(paths, float(info.get("heartbeat_interval") or 10.0), now):
        return RUNNING, None
    return _dead_unless_settled(paths, "its heartbeat stopped")


def _dead_unless_settled(paths: layout.RunPaths, reason: str) -> tuple[str, str | None]:
    """DEAD, unless ``info.yaml`` now holds a final status: ``info`` may have been read just before the run wrote
    it and exited (a poll racing the end of a run would otherwise report a clean end as DEAD)."""
    import yaml

    try:
        now = read_yaml(paths.info)
    except (OSError, yaml.YAMLError):
        return DEAD, reason
    status = now.get("status") if isinstance(now, dict) else None
    return (status, None) if status in FINAL_STATUSES else (DEAD, reason)
