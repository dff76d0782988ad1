"""The builtin ``duckdb`` reader: MLXP-style filters, read-only SQL, comparisons over seeds and plots.

Everything reads the catalog (:mod:`.catalog`) through one restricted connection (:mod:`.connection`); user SQL
is checked first (:mod:`.sql_guard`) and filter strings, parsed by MLXP's grammar (:mod:`.filter_grammar`),
are translated to SQL with Python's semantics (:mod:`.filters`).
Results are pandas DataFrames (pandas is imported when a result is built, not before); ``records`` gives a
list of dicts instead, without pandas.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import QueryError
from . import limits
from .base import RESULT_FORMATS, Reader
from .catalog import Catalog, Progress, RefreshStats
from .compare import Schema, compare_sql, curves_sql
from .filters import parse_filter
from .metrics import RESERVED, q
from .sql_guard import check_select

log = logging.getLogger(__name__)



class DuckDBReader(Reader):
    """Query the logs directory ``path``.

    :param catalog: where to keep the catalog (default ``<path>/.mlxcore/catalog.duckdb``, or a user cache
        directory when ``path`` is read-only).
    :param refresh: bring the catalog up to date now (re-reading only the runs that changed).
    :param progress: ``progress(phase, done, total)``, called while a refresh reads many runs.
    :param timeout: seconds a query may run before it is stopped with a :class:`QueryError` (default 300).
    :param memory_limit: what a query may take, in bytes or as ``"2GB"``: DuckDB's working memory and the
        result's size (default half the machine's memory, at most 4 GiB). Ctrl-C stops a query at once.
    :param rebuild: make the catalog anew from every run (needed only after files of finished runs were edited
        by hand rather than through mlxcore: a refresh trusts the store's stamps, :mod:`mlxcore.store.changes`).
    """

    name = "duckdb"

    def __init__(self, path: str | Path, *, catalog: str | Path | None = None, refresh: bool = True,
                 progress: Progress | None = None, timeout: float = limits.DEFAULT_TIMEOUT,
                 memory_limit: int | str | None = None, rebuild: bool = False) -> None:
        self.timeout = limits.check_timeout(timeout)
        self.memory_limit = limits.parse_memory(memory_limit) if memory_limit is not None \
            else limits.default_memory_limit()
        self.catalog = Catalog(path, catalog, memory_limit=self.memory_limit)
        self.path = self.catalog.root
        self.last_refresh: RefreshStats | None = None
        self._schema: Schema | None = None
        #: told how far a refresh, or the loading of rows left for later, has got
        self.progress = progress
        if refresh or rebuild:
            self.refresh(progress, rebuild=rebuild)

    def refresh(self, progress: Progress | None = None, rebuild: bool = False) -> RefreshStats:
        """Re-read what changed on disk since the last refresh (by any process); returns what was done.
        ``rebuild``: read every run again (see the class)."""
        self.last_refresh = self.catalog.refresh(progress or self.progress, rebuild=rebuild)
        self._schema = None
        return self.last_refresh

    def close(self) -> None:
        """Detach the catalog now. The DuckDB instance stays for the next reader of this catalog in the process
        (:func:`mlxcore.reader.connection.shared`); it is closed when the process ends."""
        self.catalog.connection.release()

    # -- what the catalog holds ------------------------------------------------------------------------------
    def schema(self) -> Schema:
        """The columns of ``runs`` and of each stream, as of the last refresh (a catalog refreshed meanwhile by
        another process shows its new columns here after :meth:`refresh`)."""
        if self._schema is None:
            shape = self.catalog.load_shape()
            self._schema = Schema(columns=dict(shape["columns"]),
                                  streams={s: dict(c) for s, c in shape["streams"].items()},
                                  tables=list(shape["tables"]))
        return self._schema

    def column(self, name: str, what: str = "column") -> str:
        return self.schema().column(name, what)

    @property
    def columns(self) -> list[str]:
        """The columns of ``runs`` (and of every :meth:`filter` result)."""
        return list(self.schema().columns)

    @property
    def streams(self) -> dict[str, list[str]]:
        """``{stream: logged keys}``."""
        return {s: [c for c in cols if c not in RESERVED] for s, cols in self.schema().streams.items()}

    # -- running queries -------------------------------------------------------------------------------------
    def rows(self, sql: str, params: dict | None = None, what: str = "query") -> tuple[list[str], list[tuple]]:
        """``(column names, rows)`` of SQL that was built or checked here (the command line formats them
        without pandas)."""
        return self._run(sql, params, what, "rows")

    def _run(self, sql: str, params: dict | None, what: str, fmt: str, max_rows: int | None = None) -> Any:
        """Run ``sql`` within the reader's limits (:mod:`.limits`): ``fmt`` ``rows`` or ``pandas``."""
        with self.catalog.connection.attached() as con:
            return limits.run(con, sql, params, fmt, self.timeout, self.memory_limit, what, max_rows)

    def _execute(self, sql: str, params: dict | None, result_format: str, what: str,
                 max_rows: int | None = None) -> Any:
        if result_format == "pandas":
            return self._run(sql, params, what, "pandas", max_rows)
        if result_format == "rows":
            return self.rows(sql, params, what)
        if result_format == "records":
            names, rows = self.rows(sql, params, what)
            return [dict(zip(names, row)) for row in rows]
        raise QueryError(f"unknown result_format {result_format!r}; valid: {', '.join(RESULT_FORMATS)}")

    def condition(self, query: str) -> str:
        """The SQL condition of a filter string over the ``runs`` columns."""
        return parse_filter(query, self.schema().columns)[0]  # names with their types: the typed, shorter SQL

    def filter_sql(self, query: str = "", columns: Iterable[str] | None = None, ordered: bool = True) -> str:
        """The SQL of :meth:`filter`. ``ordered=False`` leaves out the ``ORDER BY``: ``runs`` is kept in
        ``log_id`` order (:func:`mlxcore.reader.tables.update_runs_table`) and DuckDB keeps a table's order in a
        plain scan, so the sort only costs time (a millisecond at 2,000 runs); :meth:`filter` checks the order."""
        schema = self.schema()
        chosen = ", ".join(q(schema.column(c, "columns")) for c in columns) if columns else "*"
        return f"SELECT {chosen} FROM runs WHERE {self.condition(query)}" + (" ORDER BY log_id" if ordered else "")

    def _groups(self, group_by: Sequence[str] | str) -> list[str]:
        schema = self.schema()
        return [schema.column(g, "group_by") for g in ([group_by] if isinstance(group_by, str) else group_by)]

    def check_sql(self, query: str) -> str:
        """The SQL that :meth:`sql` would run for ``query``, or a :class:`QueryError` saying why it is refused.
        The stream tables it reads are made complete first (their rows may have been left for later)."""
        functions, table_functions = self.catalog.connection.functions()
        read: set[str] = set()
        checked = check_select(query, self.schema().tables, functions, table_functions, read)
        known = {s.lower(): s for s in self.schema().streams}
        bare = {name.removeprefix("metrics.") if name not in known else name for name in read}
        self.load_rows(known[name] for name in bare if name in known)
        return checked

    def load_rows(self, streams: Iterable[str]) -> None:
        """Load the rows of ``streams`` that the catalog left for later: a refresh takes each run's summaries from
        the logger when it can and parses a stream's files only when a query first reads its rows
        (:mod:`mlxcore.reader.logged`). Queries call it; nothing else needs to."""
        if self.catalog.load_histories(streams, self.progress):
            self._schema = None

    # -- the API ---------------------------------------------------------------------------------------------
    def filter(self, query: str = "", result_format: str = "pandas", columns: Iterable[str] | None = None) -> Any:
        """The runs matching an MLXP filter string, one row a run (every ``runs`` column, or ``columns``).

        ``"config.optimizer.lr <= 1e-2 & info.status == 'COMPLETE'"``, ``"config.model.depth in [4, 8]"``,
        ``"train.loss.last < 0.1 | ~(config.seed == 1)"``; an empty filter selects every run.
        """
        # at most one row a run: twice the runs of the last refresh, should another process have added some since
        bound = 2 * self.last_refresh.runs + 1000 if self.last_refresh else None
        chosen = list(columns) if columns else None
        if chosen and "log_id" not in (c.lower() for c in chosen):
            return self._execute(self.filter_sql(query, chosen), None, result_format, "filter", bound)
        return _by_log_id(self._execute(self.filter_sql(query, chosen, ordered=False), None, result_format, "filter",
                                        bound))

    def sql(self, query: str, result_format: str = "pandas") -> Any:
        """Run a read-only query (SELECT or WITH) over ``runs``, the stream tables and ``skipped_lines``."""
        return self._execute(self.check_sql(query), None, result_format, "query")

    def metrics(self, stream: str, filter: str = "", keys: Sequence[str] | None = None,
                result_format: str = "pandas") -> Any:
        """The rows of ``stream`` logged by the runs matching ``filter``: ``log_id``, ``_row`` and the keys."""
        schema = self.schema()
        known = {s.lower(): s for s in schema.streams}
        if stream.lower() not in known:
            raise QueryError(f"unknown stream {stream!r}; valid: {', '.join(sorted(schema.streams)) or 'none'}")
        stream = known[stream.lower()]
        self.load_rows([stream])
        chosen = ["log_id", "_row", *(schema.key(stream, k) for k in keys)] if keys else list(schema.streams[stream])
        chosen = ["log_id", *(c for c in chosen if c != "log_id")]
        sql = (f"SELECT {', '.join(q(c) for c in chosen)} FROM metrics.{q(stream)} WHERE log_id IN "
               f"(SELECT log_id FROM runs WHERE {self.condition(filter)}) ORDER BY log_id, _row")
        return self._execute(sql, None, result_format, "metrics")

    @property
    def problems(self) -> list[dict[str, Any]]:
        """What could not be read, one ``{"log_id", "problem"}`` per problem: a metadata file that does not parse,
        a run left out of the catalog (its keys would collide), a metric file that cannot be read. Every other run
        stays queryable; the table ``problems`` holds the same."""
        return self._execute("SELECT log_id, problem FROM problems ORDER BY log_id, problem", None, "records",
                             "problems")

    def skipped_lines(self, result_format: str = "pandas") -> Any:
        """Torn or corrupt metric lines that were skipped: ``log_id``, ``stream``, ``lines``."""
        return self._execute("SELECT * FROM skipped_lines ORDER BY log_id, stream", None, result_format, "query")

    def compare(self, group_by: Sequence[str] | str = (), metric: str = "", reduce: str = "last",
                at: Any = None, x: str | None = None, filter: str = "", result_format: str = "pandas") -> Any:
        """Reduce each run's ``metric`` (``"<stream>.<key>"``) to one value, then aggregate over the runs of each
        group: ``mean``, ``std`` (sample), ``sem``, ``n``, ``min``, ``max``.

        :param reduce: ``last`` | ``min`` | ``max`` | ``mean`` over the run's rows, or ``at``: the value logged
            where ``x`` (a key of the same stream; default the row index ``_row``) equals ``at``.
        :param group_by: ``runs`` columns; runs lacking one are grouped under NULL.
        """
        if reduce == "at":  # the other reductions read the summaries
            self.load_rows([self.schema().metric(metric)[0]])
        sql, params = compare_sql(self.schema(), self._groups(group_by), metric, reduce, at, x, self.condition(filter))
        return self._execute(sql, params, result_format, "compare")

    def curves(self, metric: str, x: str | None = None, group_by: Sequence[str] | str = (), filter: str = "",
               result_format: str = "pandas") -> Any:
        """The data of :meth:`plot`: per group and x, the ``mean``, ``std``, ``sem`` and ``n`` over runs."""
        self.load_rows([self.schema().metric(metric)[0]])
        sql = curves_sql(self.schema(), self._groups(group_by), metric, x, self.condition(filter))
        return self._execute(sql, None, result_format, "plot")

    def search(self, query_string: str = "", result_format: str = "datadict",
               asPandas: bool | None = None) -> Any:
        """MLXP's reading call (MLXP 1.0's ``Reader.filter(query_string, result_format)``; ``asPandas=True`` is
        ``result_format="pandas"`` as ``mlxpy``, MLXP's early name, spelled it): the runs matching the filter
        string as a lazy :class:`~mlxcore.reader.mlxp_api.DataFrame`, whose metric columns (``"train.loss"``) hold
        each run's list of logged values, loaded by one query per stream when first read; or a pandas frame with
        the lists loaded. ``groupby``, ``aggregate`` and MLXP's other methods work on the result (:mod:`.mlxp_api`)."""
        from .mlxp_api import search

        return search(self, query_string, result_format, asPandas)


def _by_log_id(result: Any) -> Any:
    """``result`` (a frame, records or rows) in ``log_id`` order: it already is unless the table's order was
    lost."""
    if isinstance(result, tuple):
        names, rows = result
        at = [n.lower() for n in names].index("log_id")
        ids = [row[at] for row in rows]
        return result if ids == sorted(ids) else (names, sorted(rows, key=lambda row: row[at]))
    if isinstance(result, list):
        ids = [row["log_id"] for row in result]
        return result if ids == sorted(ids) else sorted(result, key=lambda row: row["log_id"])
    if result["log_id"].is_monotonic_increasing:
        return result
    return result.sort_values("log_id", kind="stable", ignore_index=True)
