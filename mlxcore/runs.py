"""Run directories: id allocation, metadata files, statuses.

Layout of one run (``parent_log_dir/<id>/``)::

    metadata/info.yaml     status, times, host, pid, argv, overrides, error, scheduler job ids
    metadata/config.yaml   the resolved user config
    metadata/mlx.yaml      the framework settings in force
    metadata/heartbeat     touched every ``heartbeat_interval`` seconds while the run is alive
    metadata/.cache.json   a JSON copy of info, config and scheduler records, for the reader (a cache:
                           used only while its hash matches the YAML, see :mod:`mlxcore.metadata_cache`)
    metrics/<log_name>.json  JSON lines, one object per ``log_metrics`` call
    artifacts/<format>/<name>
    checkpoints/<log_name>.<format>

Ids come from a counter file (``parent_log_dir/.mlxcore/last_id``) updated under an exclusive ``flock``: no
directory scan (except once, to initialise the counter in a directory written by another tool), no sleeps,
and an id is never reused, even after its directory is deleted.
"""

from __future__ import annotations

import fcntl
import functools
import os
import socket
import tempfile
import time
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from .errors import RunError

SUBMITTED = "SUBMITTED"
PENDING = "PENDING"
RUNNING = "RUNNING"
COMPLETE = "COMPLETE"
FAILED = "FAILED"
INTERRUPTED = "INTERRUPTED"
PREEMPTED = "PREEMPTED"
TIMEOUT = "TIMEOUT"
CANCELLED = "CANCELLED"
#: derived, never written: the info says RUNNING but the process is gone or its heartbeat stopped
DEAD = "DEAD"

FINAL_STATUSES = frozenset({COMPLETE, FAILED, INTERRUPTED, PREEMPTED, TIMEOUT, CANCELLED})

STATE_DIR = ".mlxcore"
HEARTBEAT = "heartbeat"


def now_iso() -> str:
    """Local time, ISO-8601 with the UTC offset."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


@contextmanager
def _locked(parent: Path) -> Iterator[Path]:
    state = parent / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / "ids.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield state
    finally:
        os.close(fd)  # closing releases the lock


#: the counter is written in place, padded to a fixed width: one small pwrite under the lock (a rename over
#: the old file would make ext4 flush it to disk first, the slowest part of an allocation by far)
COUNTER_WIDTH = 20


def _read_counter(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 64, 0).decode() or "x")
    except (ValueError, UnicodeDecodeError):  # new, or torn by a crash: the caller falls back
        return None


def _write_counter(fd: int, value: int) -> None:
    os.pwrite(fd, f"{value:<{COUNTER_WIDTH}}\n".encode(), 0)


def allocate_run_dir(parent: Path) -> tuple[int, Path]:
    """Create and return a fresh ``parent/<id>`` directory. Safe across processes and hosts sharing ``parent``."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _locked(parent) as state:
            fd = os.open(state / "last_id", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                last = _read_counter(fd)
                if last is None:
                    last = max((int(p.name) for p in parent.iterdir() if p.name.isdigit()), default=0)
                while True:
                    last += 1
                    run_dir = parent / str(last)
                    try:
                        run_dir.mkdir()
                        break
                    except FileExistsError:  # made by a forced id or another tool
                        continue
                _write_counter(fd, last)
            finally:
                os.close(fd)
            return last, run_dir
    except OSError as exc:
        raise RunError(f"cannot create a run directory in {parent}: {exc.strerror or exc}") from None


def forced_run_dir(parent: Path, log_id: int) -> Path:
    """The directory of ``log_id``, created if missing; the counter is raised past it so it is never reallocated."""
    run_dir = parent / str(log_id)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with _locked(parent) as state:
            fd = os.open(state / "last_id", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if log_id > (_read_counter(fd) or 0):
                    _write_counter(fd, log_id)
            finally:
                os.close(fd)
    except OSError as exc:
        raise RunError(f"cannot use run directory {run_dir}: {exc.strerror or exc}") from None
    return run_dir


@functools.lru_cache(maxsize=1)
def file_mode() -> int:
    """What ``open()`` would create: 0666 minus the umask (read once; setting it back is the only way to read it)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write through a temporary file in the same directory and rename: readers never see half a file.

    The file gets the permissions a plain ``open()`` would give it (``mkstemp`` alone makes it 0600, and
    colleagues sharing a cluster's logs directory could not read it)."""
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode) as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def write_yaml(path: Path, data: Any) -> None:
    import yaml

    from . import metadata_cache

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when PyYAML was built with it: ~10x faster
    raw = yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True).encode("utf-8")
    write_atomic(path, raw)
    metadata_cache.record(path, raw, data)  # info, config and scheduler records: a JSON copy for the reader


def read_yaml(path: Path) -> Any:
    import yaml

    with open(path) as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_unless_settled(run_dir: Path) -> str:
    """DEAD, unless ``info.yaml`` now holds a final status: ``info`` may have been read just before the run wrote
    it and exited (a poll racing the end of a run would otherwise report a clean end as DEAD)."""
    import yaml

    try:
        now = read_yaml(run_dir / "metadata" / "info.yaml")
    except (OSError, yaml.YAMLError):
        return DEAD
    status = now.get("status") if isinstance(now, dict) else None
    return status if status in FINAL_STATUSES else DEAD


def effective_status(info: dict[str, Any], run_dir: Path, now: float | None = None) -> str:
    """The status to show: ``info['status']``, except that a RUNNING run whose process is gone is DEAD.

    A run on this host is dead when its pid no longer exists; on another host, when its heartbeat is older
    than three heartbeat intervals (at least 60 s).
    """
    status = info.get("status", "UNKNOWN")
    if status != RUNNING:
        return status
    if info.get("hostname") == socket.gethostname() and isinstance(info.get("pid"), int):
        if not process_alive(info["pid"]):
            return _dead_unless_settled(run_dir)
    try:
        beat = (run_dir / "metadata" / HEARTBEAT).stat().st_mtime
    except FileNotFoundError:
        return status
    interval = float(info.get("heartbeat_interval") or 10.0)
    if (now if now is not None else time.time()) - beat > max(3 * interval, 60.0):
        return _dead_unless_settled(run_dir)
    return status
