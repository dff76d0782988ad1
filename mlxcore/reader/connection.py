"""The connection every query runs on, and the second lock on user SQL (the first is :mod:`.sql_guard`).

One in-memory DuckDB instance per reader, configured once and then locked:

* the only files it may open are the catalog and DuckDB's files beside it (``allowed_paths``); with
  ``enable_external_access=false`` nothing else can be read or written (``read_csv``, ``COPY``, ``ATTACH``,
  ``INSTALL``, ``EXPORT``, replacement scans of ``'file.csv'``), and extensions are neither installed nor
  autoloaded;
* ``lock_configuration=true``: no ``SET`` can undo the above;
* the catalog is attached ``READ_ONLY`` while calls use it and detached :data:`LINGER` seconds after the last
  one, so no query can change it and a reader kept open in a notebook never blocks another process that
  refreshes the catalog for longer than that.

A refresh writes through the same instance, with the catalog attached read-write (it needs no file access
either: Python reads the logs and hands their text to DuckDB). Attaching costs about a millisecond; starting a
DuckDB instance ten to fifteen, which is why the instance is kept and shared by every reader of the same catalog
in the process (:func:`shared`): reopening a reader in a notebook or a loop then costs what reading the logs
directory's state costs, not a DuckDB start. A process that forked gets an instance of its own (DuckDB's is not
fork-safe).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import QueryError
from .metrics import lit, q

ALIAS = "mlxcore_catalog"
#: the catalog and the files DuckDB keeps beside it (its write-ahead log, and that log's checkpoint and recovery
#: files): the only paths the instance may open
CATALOG_FILES = ("", ".wal", ".wal.checkpoint", ".wal.recovery")
LOCK_TIMEOUT = 60.0
#: how long a refresh waits to write while other processes read (a long query): then it answers from the
#: catalog as it is (:class:`CatalogBusy`)
WRITE_WAIT = 5.0
#: DuckDB instances kept for reuse by later readers (one per catalog and memory limit); the oldest is closed
SHARED_INSTANCES = 8
#: seconds a read-only attach of the catalog is kept after its last use (see QueryConnection.attached)
LINGER = 0.1


class CatalogBusy(QueryError):
    """The catalog could not be opened for writing in time: other processes are reading it."""
#: table functions a query may call (they compute, they read nothing)
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})
#: scalar functions refused although DuckDB lists them: they run SQL given as text or touch profiling files
DENIED_FUNCTIONS = frozenset({
    "json_execute_serialized_sql", "json_deserialize_sql", "enable_profile", "disable_profile", "query",
    "query_table", "getenv", "current_query",
})


class QueryConnection:
    """A restricted, read-only view of the catalog at ``path``; see the module docstring."""

    def __init__(self, path: Path, memory_limit: int | None = None) -> None:
        self.path = path
        #: bytes DuckDB may hold while it computes (queries and refreshes); ``None``: DuckDB's default
        self.memory_limit = memory_limit
        self._con: Any = None
        self._pid = 0  # the process that started the instance
        self._mode: str | None = None  # the catalog is attached: "r" read-only, "w" for writing
        self._inode = -1  # of the file attached
        self._last_use = 0.0
        self._janitor: threading.Thread | None = None
        self._lock = threading.RLock()
        self._functions: tuple[frozenset[str], frozenset[str]] | None = None

    def _connect(self) -> Any:
        import duckdb

        con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                 "autoload_known_extensions": False,
                                                 "allow_community_extensions": False})
        paths = ", ".join(lit(f"{self.path}{suffix}") for suffix in CATALOG_FILES)
        con.execute(f"SET allowed_paths = [{paths}]")
        if self.memory_limit:
            con.execute(f"SET memory_limit = '{int(self.memory_limit)}B'")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con

    @contextmanager
    def attached(self, write: bool = False, wait: float | None = None) -> Iterator[Any]:
        """The connection with the catalog attached and in use (read-only unless ``write``).

        ``write`` is for the catalog's refresh only: it may create the file, waits up to :data:`LOCK_TIMEOUT`
        while another process holds it, and detaches on exit. A read-only attach stays for :data:`LINGER`
        seconds after its last use, so that the calls of one step (a reopen, then its filter) attach once; it
        holds a shared lock, so another process's refresh waits that long at most (:meth:`_linger`)."""
        with self._lock:
            con = self._instance()
            if self._mode is not None and (write or self._mode == "w" or self._replaced()):
                self._detach()
            if self._mode is None:
                if not write and not self.path.exists():
                    raise QueryError(f"the catalog {self.path} does not exist; refresh the reader first")
                self._attach(con, write, wait)
            failed = True
            try:
                con.execute(f"USE {ALIAS}")
                yield con
                failed = False
            finally:
                con.execute("USE memory")
                if write or failed:
                    self._detach()
                else:
                    self._last_use = time.monotonic()
                    if self._janitor is None:
                        self._janitor = threading.Thread(target=self._linger, name="mlxcore-linger",
                                                         daemon=True)
                        self._janitor.start()

    def _replaced(self) -> bool:
        """The catalog's path names another file than the one attached (another process rebuilt it: a lock on
        the old file does not stop that); reading on would answer from the old one."""
        return _inode(self.path) != self._inode

    def _attach(self, con: Any, write: bool, wait: float | None) -> None:
        import duckdb

        mode = "" if write else " (READ_ONLY)"
        patience = wait if wait is not None else LOCK_TIMEOUT
        deadline = time.monotonic() + patience
        delay = 0.01
        while True:
            try:
                before = _inode(self.path)
                con.execute(f"ATTACH {lit(str(self.path))} AS {ALIAS}{mode}")
                self._mode = "w" if write else "r"
                self._inode = _inode(self.path)
                if self._inode == before:
                    break
                self._detach()  # replaced while it was being attached: which file is open is unknown
                continue
            except duckdb.IOException as exc:  # another process is refreshing it: wait
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() > deadline:
                    error = CatalogBusy if write else QueryError
                    raise error(f"the catalog {self.path} stayed locked by another process for "
                                f"{patience:.0f} s: {str(exc).splitlines()[0]}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _detach(self) -> None:
        """Detach every attached database (the catalog; nothing else can be attached)."""
        self._mode = None
        if self._con is None:
            return
        for (name,) in self._con.execute("SELECT database_name FROM duckdb_databases() "
                                         "WHERE NOT internal AND database_name <> 'memory'").fetchall():
            self._con.execute(f"DETACH {q(name)}")

    def _linger(self) -> None:
        """Detach the catalog once it has not been used for :data:`LINGER` seconds (one thread at a time)."""
        while True:
            with self._lock:
                left = self._last_use + LINGER - time.monotonic()
                if self._mode is None or left <= 0:
                    if self._mode is not None and self._pid == os.getpid():
                        self._detach()
                    self._janitor = None
                    return
            time.sleep(left)

    def release(self) -> None:
        """Detach the catalog now (before its files are replaced)."""
        with self._lock:
            if self._mode is not None:
                self._detach()

    def functions(self) -> tuple[frozenset[str], frozenset[str]]:
        """``(callable functions, table functions)`` by lower-case name: the allow-list of
        :func:`mlxcore.reader.sql_guard.check_select` is the first set; the second names what is refused."""
        if self._functions is None:
            with self._lock:
                rows = self._instance().execute("SELECT DISTINCT lower(function_name), function_type IN "
                                         "('table', 'table_macro', 'pragma') FROM duckdb_functions()").fetchall()
            callable_ = frozenset(name for name, is_table in rows if not is_table) - DENIED_FUNCTIONS
            tables = frozenset(name for name, is_table in rows if is_table)
            self._functions = (callable_, tables)
        return self._functions

    def _instance(self) -> Any:
        """The DuckDB instance, started on first use (again in a child process: the parent's is not ours)."""
        if self._con is None or self._pid != os.getpid():
            self._con = self._connect()
            self._pid = os.getpid()
            self._mode = None
            self._janitor = None
        return self._con

    @property
    def started(self) -> bool:
        """This process has a DuckDB instance for the catalog (using it costs no start)."""
        return self._con is not None and self._pid == os.getpid()

    def close(self) -> None:
        """Close the instance (it starts again when next used, also for other readers sharing it)."""
        with self._lock:
            if self._con is not None and self._pid == os.getpid():
                self._con.close()
            self._con = None
            self._mode = None


def _inode(path: Path) -> int:
    """The inode ``path`` names now (-1: none)."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return -1


_shared: OrderedDict[tuple[str, int | None], QueryConnection] = OrderedDict()
_shared_lock = threading.Lock()


@atexit.register
def _close_shared() -> None:
    """Close the shared instances before the interpreter stops its daemon threads: a lingering detach cut off
    inside DuckDB's C++ code would abort the process ("exception not rethrown")."""
    with _shared_lock:
        connections = list(_shared.values())
        _shared.clear()
    for connection in connections:
        connection.close()


def shared(path: Path, memory_limit: int | None = None) -> QueryConnection:
    """The connection to the catalog at ``path`` that every reader of it in this process uses (see the module
    docstring); at most :data:`SHARED_INSTANCES` are kept, the least recently used is closed."""
    key = (str(path), memory_limit)
    with _shared_lock:
        connection = _shared.get(key)
        if connection is None:
            connection = _shared[key] = QueryConnection(path, memory_limit)
        _shared.move_to_end(key)
        evicted = [_shared.popitem(last=False)[1] for _ in range(len(_shared) - SHARED_INSTANCES)]
    for old in evicted:
        old.close()
    return connection
