"""The writer lease: one process writes a run at a time, and everyone can tell whether it is still alive.

``metadata/lease`` names the writing process: host, pid, the process's start time (so a recycled pid is not
mistaken for the writer) and the machine's boot id. The writer holds an exclusive ``flock`` on that file for
as long as it writes; the kernel drops the lock when the process dies, however it dies, so a second writer is
refused while the first lives and takes over at once when it is gone. On release the file is emptied.

Liveness, as :mod:`mlxcore.store.liveness` judges it:

- on the writer's own host (same hostname and boot id): the pid exists and started when the lease says.
  Nothing else: a live writer is never called dead, whatever its flush or heartbeat interval;
- from another host: ``metadata/heartbeat``, touched by the writer's own timer every ``heartbeat_interval``
  seconds (independent of metric flushing), is younger than three intervals (at least 60 s).

A file system without ``flock`` (some NFS mounts) falls back to those same judgements before taking over.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import RunError
from ..signals import block_in_this_thread
from .files import now_iso
from .layout import RunPaths

log = logging.getLogger(__name__)

#: a heartbeat older than this many intervals (and at least MIN_STALE_S) means the writer on another host is gone
STALE_INTERVALS = 3
MIN_STALE_S = 60.0


class RunBusyError(RunError):
    """Another live process writes this run."""


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_stat(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first); ``None`` without one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        return stat[stat.rindex(b")") + 2 :].split()
    except (OSError, ValueError):
        return None


def process_start(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat``, field 22); ``None`` when unknown
    (no such process, or no ``/proc``)."""
    fields = _proc_stat(pid)
    try:
        return int(fields[19]) if fields else None
    except (ValueError, IndexError):
        return None


def process_running(pid: int, start: int | None = None) -> bool:
    """``pid`` exists, is not a zombie (a killed process nobody has reaped yet: in a container without an init,
    that can last), and, when ``start`` is given, started then (else the pid was reused)."""
    if not process_alive(pid):
        return False
    fields = _proc_stat(pid)
    if fields is None:  # no /proc: the signal test is all there is
        return True
    if fields[0] in (b"Z", b"X"):
        return False
    try:
        return start is None or int(fields[19]) == start
    except (ValueError, IndexError):
        return True


@functools.lru_cache(maxsize=1)
def boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return None


def process_record() -> dict[str, Any]:
    """This process as a run records who submitted it (``info.submitter``): host, boot, pid and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": boot_id(), "pid": pid, "start": process_start(pid)}


def process_gone(record: Any) -> bool:
    """Whether the process that ``record`` (:func:`process_record`) describes has certainly ended: on this host
    its pid no longer runs, or runs another process, or the host rebooted since. On another host it cannot be
    told: False."""
    if not isinstance(record, dict) or not isinstance(record.get("pid"), int) or isinstance(record["pid"], bool):
        return False
    if record.get("host") != socket.gethostname():
        return False
    if record.get("boot") is not None and record.get("boot") != boot_id():
        return True
    start = record.get("start")
    return not process_running(record["pid"], start if isinstance(start, int) else None)


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a run's lease."""

    host: str
    pid: int
    start: int | None  #: process start time, clock ticks since boot
    boot: str | None
    since: str
    heartbeat_interval: float

    @classmethod
    def me(cls, heartbeat_interval: float) -> Holder:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, process_start(pid), boot_id(), now_iso(), heartbeat_interval)

    @classmethod
    def parse(cls, raw: bytes) -> Holder | None:
        try:
            data = json.loads(raw)
            return cls(str(data["host"]), int(data["pid"]), data.get("start"), data.get("boot"),
                       str(data.get("since", "")), float(data.get("heartbeat_interval") or 10.0))
        except (ValueError, TypeError, KeyError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (since {self.since})"

    def on_this_host(self) -> bool:
        return self.host == socket.gethostname() and (self.boot is None or self.boot == boot_id())


def read_holder(paths: RunPaths) -> Holder | None:
    """The lease's holder as written; ``None`` when there is no lease file or it is empty (released)."""
    try:
        with open(paths.lease, "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return Holder.parse(raw) if raw.strip() else None


def holder_alive(holder: Holder, paths: RunPaths, now: float | None = None) -> bool:
    """Whether ``holder`` still runs: by its pid and start time on its own host, by the heartbeat elsewhere."""
    if holder.on_this_host():
        return process_running(holder.pid, holder.start)
    if holder.host == socket.gethostname():  # same name, another boot: the machine restarted since
        return False
    return heartbeat_fresh(paths, holder.heartbeat_interval, now)


def heartbeat_fresh(paths: RunPaths, interval: float, now: float | None = None) -> bool:
    try:
        beat = paths.heartbeat.stat().st_mtime
    except FileNotFoundError:
        return True  # a writer on another host that has not beaten yet: not known to be dead
    age = (now if now is not None else time.time()) - beat
    return age <= max(STALE_INTERVALS * interval, MIN_STALE_S)


class Lease:
    """This process's lease on one run (see the module docstring). :meth:`acquire` takes it; :attr:`previous` is
    the holder of a lease left behind by a writer that died (the caller records the takeover)."""

    def __init__(self, paths: RunPaths, fd: int, holder: Holder, previous: Holder | None) -> None:
        self.paths = paths
        self.holder = holder
        self.previous = previous
        self._fd = fd
        self._beat: _Heartbeat | None = None

    @classmethod
    def acquire(cls, paths: RunPaths, log_id: int, heartbeat_interval: float) -> Lease:
        """Take the lease of run ``log_id``.

        :raises RunBusyError: another live process holds it (the message names it).
        """
        try:
            fd = os.open(paths.lease, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise RunError(f"cannot open the lease of run {log_id} ({paths.lease}): {exc.strerror}") from None
        try:
            locked = _try_lock(fd)
            raw = os.pread(fd, 4096, 0)
            previous = Holder.parse(raw) if raw.strip() else None
            alive = previous is not None and holder_alive(previous, paths)
            if locked is False or alive:
                who = previous.describe() if previous else "another process"
                if previous is not None and not alive:  # the lock outlived the writer: a child it forked
                    who = f"a child process of {previous.describe()}, which has exited"
                raise RunBusyError(f"run {log_id} is being written by {who}: a run has one writer at a time; "
                                   f"wait for it to end, or stop it (mlxcore cancel LOGS {log_id})")
            me = Holder.me(heartbeat_interval)
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(asdict(me)) + "\n").encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        paths.heartbeat.touch()
        if previous is not None:
            log.warning("run %s: taking over from %s, which is gone", log_id, previous.describe())
        return cls(paths, fd, me, previous)

    def start_heartbeat(self) -> None:
        """Touch the heartbeat every ``heartbeat_interval`` seconds, on a timer of its own, until :meth:`release`."""
        if self._beat is None:
            self._beat = _Heartbeat(self.paths, self.holder.heartbeat_interval)
            self._beat.start()

    def release(self) -> None:
        """Stop the heartbeat and give the lease up: the file is emptied, then unlocked."""
        if self._beat is not None:
            self._beat.stop()
            self._beat = None
        if self._fd < 0:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError as exc:  # a full disk cannot refuse a truncation, an I/O error can: the lock still goes
            log.warning("cannot empty the lease %s: %s", self.paths.lease, exc)
        finally:
            os.close(self._fd)  # closing drops the lock
            self._fd = -1


def _try_lock(fd: int) -> bool | None:
    """``True`` when locked, ``False`` when another open file holds the lock, ``None`` when the file system
    has no locks (then the holder recorded in the file decides)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise


class _Heartbeat(threading.Thread):
    def __init__(self, paths: RunPaths, interval: float) -> None:
        super().__init__(name="mlxcore-heartbeat", daemon=True)
        self.paths = paths
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        block_in_this_thread()
        while not self._stop_event.wait(self.interval):
            try:
                os.utime(self.paths.heartbeat)
            except FileNotFoundError:
                self.paths.heartbeat.touch()
            except OSError as exc:
                log.warning("cannot touch the heartbeat %s: %s", self.paths.heartbeat, exc)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

