"""The connection every query runs on, and the second lock on user SQL (the first is :mod:`.sql_guard`).

One in-memory DuckDB instance per reader, configured once and then locked:

* the only files it may open are the catalog and DuckDB's files beside it (``allowed_paths``); with
  ``enable_external_access=false`` nothing else can be read or written (``read_csv``, ``COPY``, ``ATTACH``,
  ``INSTALL``, ``EXPORT``, replacement scans of ``'file.csv'``), and extensions are neither installed nor
  autoloaded;
* ``lock_configuration=true``: no ``SET`` can undo the above;
* the catalog is attached ``READ_ONLY`` for the duration of one call and detached after it, so no query can
  change it and a reader kept open in a notebook never blocks another process that refreshes the catalog.

A refresh writes through the same instance, with the catalog attached read-write (it needs no file access
either: Python reads the logs and hands their text to DuckDB). Attaching costs about a millisecond; starting a
DuckDB instance about fifteen, which is why the instance is kept, and shared.
"""

from __future__ import annotations

import threading
import time
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
        """The connection with the catalog attached and in use (read-only unless ``write``); detached on exit.

        ``write`` is for the catalog's refresh only: it may create the file, and waits up to
        :data:`LOCK_TIMEOUT` while another process holds it."""
        import duckdb

        with self._lock:
            if self._con is None:
                self._con = self._connect()
            con = self._con
            if not write and not self.path.exists():
                raise QueryError(f"the catalog {self.path} does not exist; refresh the reader first")
            mode = "" if write else " (READ_ONLY)"
            patience = wait if wait is not None else LOCK_TIMEOUT
            deadline = time.monotonic() + patience
            delay = 0.01
            while True:
                try:
                    con.execute(f"ATTACH {lit(str(self.path))} AS {ALIAS}{mode}")
                    break
                except duckdb.IOException as exc:  # another process is refreshing it: wait
                    if "lock" not in str(exc).lower():
                        raise
                    if time.monotonic() > deadline:
                        error = CatalogBusy if write else QueryError
                        raise error(f"the catalog {self.path} stayed locked by another process for "
                                    f"{patience:.0f} s: {str(exc).splitlines()[0]}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            try:
                con.execute(f"USE {ALIAS}")
                yield con
            finally:
                con.execute("USE memory")
                for (name,) in con.execute("SELECT database_name FROM duckdb_databases() "
                                           "WHERE NOT internal AND database_name <> 'memory'").fetchall():
                    con.execute(f"DETACH {q(name)}")

    def functions(self) -> tuple[frozenset[str], frozenset[str]]:
        """``(callable functions, table functions)`` by lower-case name: the allow-list of
        :func:`mlxcore.reader.sql_guard.check_select` is the first set; the second names what is refused."""
        if self._functions is None:
            with self._lock:
                if self._con is None:
                    self._con = self._connect()
                rows = self._con.execute("SELECT DISTINCT lower(function_name), function_type IN "
                                         "('table', 'table_macro', 'pragma') FROM duckdb_functions()").fetchall()
            callable_ = frozenset(name for name, is_table in rows if not is_table) - DENIED_FUNCTIONS
            tables = frozenset(name for name, is_table in rows if is_table)
            self._functions = (callable_, tables)
        return self._functions

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
