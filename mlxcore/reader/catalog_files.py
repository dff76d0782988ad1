"""The catalog's files: where it lives, whether a file is a DuckDB database, and the writers' lock beside it."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import store
from ..errors import QueryError

CATALOG_NAME = "catalog.duckdb"
#: how long a writer waits for another process's refresh to end
WRITER_LOCK_TIMEOUT = 120.0


def default_catalog_path(root: Path) -> Path:
    """``<root>/.mlxcore/catalog.duckdb`` when writable, else a per-user cache path unique to ``root``."""
    state = root / store.STATE_DIR
    probe = state if state.exists() else root
    if os.access(probe, os.W_OK | os.X_OK):
        return state / CATALOG_NAME
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return cache / "mlxcore" / "catalogs" / digest / CATALOG_NAME


def file_identity(path: Path, suffixes: tuple[str, ...], racy_ns: int) -> tuple | None:
    """What identifies the catalog's contents on disk: inode, size and ``mtime_ns`` of each of its files (its
    write-ahead log included), or ``None`` when a file changed less than ``racy_ns`` ago (a write in the same
    timestamp tick could go unseen; see :mod:`mlxcore.reader.scan`)."""
    identity: list[tuple[int, int, int, int] | None] = []
    racy_after = time.time_ns() - racy_ns
    for suffix in suffixes:
        try:
            st = os.stat(f"{path}{suffix}")
        except FileNotFoundError:
            identity.append(None)
            continue
        if st.st_mtime_ns >= racy_after or st.st_ctime_ns >= racy_after:
            return None
        identity.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(identity)


def is_duckdb_file(path: Path) -> bool:
    """``path`` starts like a DuckDB database (its magic bytes)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Held by whoever writes the catalog at ``path`` (a refresh, loading rows), across processes and hosts sharing
    the directory: the decision of what to write and the write happen under it (``<catalog>.lock``, flock)."""
    lock_path = Path(f"{path}.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise QueryError(f"cannot write the catalog {path}: {exc.strerror or exc}; pass another catalog path") from None
    try:
        deadline = time.monotonic() + WRITER_LOCK_TIMEOUT
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise QueryError(f"the catalog {path} is being written by another process for more than "
                                     f"{WRITER_LOCK_TIMEOUT:.0f} s; try again later") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        yield
    finally:
        os.close(fd)  # releases the lock
