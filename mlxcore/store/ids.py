"""Run ids, and creating a run directory whole.

Ids come from a counter file (``<logs>/.mlxcore/last_id``) updated under an exclusive ``flock``: no directory
scan (except once, to initialise the counter in a directory written by another tool), no sleeps, and an id is
never reused, even after its directory is deleted.

A new run is built in ``<logs>/.mlxcore/staging/`` (its metadata written, its lease taken) and moved to
``<logs>/<id>`` by one rename: nobody ever sees a run directory without its ``info.yaml``, and a creator killed
half-way leaves only a staging directory, removed by the next creation once its process is gone.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ..errors import RunError
from . import layout
from .lease import process_alive

T = TypeVar("T")

#: the counter is written in place, padded to a fixed width: one small pwrite under the lock (a rename over
#: the old file would make ext4 flush it to disk first, the slowest part of an allocation by far)
COUNTER_WIDTH = 20


@contextmanager
def _locked(parent: Path) -> Iterator[int]:
    """Hold the ids lock of ``parent``; yields the counter's file descriptor."""
    state = layout.state_dir(parent)
    state.mkdir(parents=True, exist_ok=True)
    lock = os.open(state / layout.ID_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counter = os.open(state / layout.ID_COUNTER, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            yield counter
        finally:
            os.close(counter)
    finally:
        os.close(lock)  # closing releases the lock


def _read_counter(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 64, 0).decode() or "x")
    except (ValueError, UnicodeDecodeError):  # new, or torn by a crash: the caller falls back
        return None


def _write_counter(fd: int, value: int) -> None:
    os.pwrite(fd, f"{value:<{COUNTER_WIDTH}}\n".encode(), 0)


def _highest_on_disk(parent: Path) -> int:
    return max((int(p.name) for p in parent.iterdir() if layout.is_run_name(p.name)), default=0)


def _staging(parent: Path) -> Path:
    """A new, empty staging directory named after this host and process."""
    staging = layout.state_dir(parent) / layout.STAGING_DIR
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / f"{socket.gethostname()}.{os.getpid()}.{os.urandom(4).hex()}"
    path.mkdir()
    return path


_swept: set[Path] = set()


def remove_abandoned_staging(parent: Path) -> None:
    """Remove staging directories of processes of this host that are gone (a creator killed half-way); once
    per logs directory and process."""
    if parent in _swept:
        return
    _swept.add(parent)
    host = socket.gethostname()
    try:
        entries = list((layout.state_dir(parent) / layout.STAGING_DIR).iterdir())
    except OSError:
        return
    for entry in entries:
        owner = entry.name.rpartition(".")[0]  # <host>.<pid>, before the random part
        name_host, _, pid = owner.rpartition(".")
        if name_host == host and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def create_run(parent: Path, build: Callable[[int, Path], T], log_id: int | None = None) -> tuple[int, T]:
    """Create run ``log_id`` (a new id when ``None``) in ``parent``: ``build(id, directory)`` fills a staging
    directory, which then becomes ``parent/<id>`` in one rename. Returns the id and what ``build`` returned.

    :raises RunError: the directory cannot be created, or run ``log_id`` exists already.
    """
    new_id = reserve(parent, 1)[0] if log_id is None else reserve_forced(parent, log_id)
    return new_id, place(parent, new_id, build)


def reserve(parent: Path, count: int) -> list[int]:
    """``count`` new ids of ``parent``, in increasing order, taken under ONE hold of the lock (a submission of
    10,000 runs takes the lock once, not 10,000 times). They are consecutive unless another tool made a
    directory in between; an id reserved and never placed stays unused, like the id of a deleted run.

    :raises RunError: the logs directory or its state cannot be created.
    """
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _locked(parent) as counter:
            last = _last_id(parent, counter)
            taken: list[int] = []
            while len(taken) < count:
                last += 1
                if not (parent / str(last)).exists():  # made by another tool
                    taken.append(last)
            if taken:
                _write_counter(counter, taken[-1])
    except OSError as exc:
        raise RunError(f"cannot create a run directory in {parent}: {exc.strerror or exc}") from None
    return taken


def _last_id(parent: Path, counter: int) -> int:
    """The last id given out: the counter's, or for a logs directory without one, the highest on disk."""
    last = _read_counter(counter)
    return _highest_on_disk(parent) if last is None else last


def reserve_forced(parent: Path, log_id: int) -> int:
    """Reserve the id ``log_id`` a caller chose (a forced id): the counter moves past it.

    :raises RunError: run ``log_id`` exists already, or the logs directory cannot be created.
    """
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _locked(parent) as counter:
            last = _last_id(parent, counter)
            if (parent / str(log_id)).exists():
                raise RunError(f"run {log_id} exists already in {parent}")
            if log_id > last:
                _write_counter(counter, log_id)
    except OSError as exc:
        raise RunError(f"cannot create a run directory in {parent}: {exc.strerror or exc}") from None
    return log_id


def place(parent: Path, log_id: int, build: Callable[[int, Path], T]) -> T:
    """Build run ``log_id`` (an id reserved by this process) in a staging directory and rename it to
    ``parent/<id>``; returns what ``build`` returned. On any failure the staging directory is removed.

    :raises RunError: the staging directory cannot be made, or ``parent/<id>`` appeared meanwhile.
    """
    try:
        remove_abandoned_staging(parent)
        staging = _staging(parent)
    except OSError as exc:
        raise RunError(f"cannot create a run directory in {parent}: {exc.strerror or exc}") from None
    try:
        built = build(log_id, staging)
        os.rename(staging, parent / str(log_id))  # fails (ENOTEMPTY) rather than replace a run made meanwhile
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise RunError(f"cannot create run {log_id} in {parent}: {exc.strerror or exc}") from None
        raise
    return built
