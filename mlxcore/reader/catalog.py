"""The catalog: a DuckDB file holding one row per run, the metric streams and their per-run summaries.

Where: ``<logs>/.mlxcore/catalog.duckdb``, or ``$XDG_CACHE_HOME/mlxcore/catalogs/<hash of the logs path>/`` when
the logs directory is read-only. It is a cache of the run directories, never a source of truth: a catalog of
another schema version, or one DuckDB cannot open, is rebuilt from the logs.

Tables a query can read (see :mod:`mlxcore.reader.sql_guard`):

* ``runs`` (a view) — ``log_id``, ``status``, every ``config.*`` and ``info.*`` key flattened to a dotted name,
  and the summary columns ``<stream>.<key>.last|min|max|mean|count`` of every stream;
* one view per stream, e.g. ``train`` (also ``metrics.train``): ``log_id``, ``_row`` and the logged keys;
  ``summaries.<stream>``: the summaries alone;
* ``skipped_lines``: ``log_id``, ``stream``, ``lines`` — torn or corrupt lines that were not loaded.

``status`` and ``info.status`` are the status to show: a RUNNING run whose process is gone reads ``DEAD``
(:func:`mlxcore.runs.effective_status`), re-evaluated at every refresh.

A refresh compares each run's signature (:func:`mlxcore.reader.scan.signature`) with the stored one and re-reads
only the runs that changed or appeared, in one transaction (a crash leaves the previous catalog); a refresh that
finds nothing to do never opens the file for writing. The YAML of the changed runs is parsed in a thread while
DuckDB (which releases the GIL) loads their metric files.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import runs
from ..errors import QueryError
from . import scan
from .connection import QueryConnection
from .metrics import create_schema, delete_runs, ingest_stream, q, streams, table_columns, update_summary

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
CATALOG_NAME = "catalog.duckdb"
LOCK_TIMEOUT = 60.0
#: tables every query may read, besides one view per stream
PUBLIC_TABLES = ("runs", "skipped_lines")
_STATE = ("log_id", "signature", "final", "raw_status", "status", "hostname", "pid", "heartbeat_interval")
_STATE_TYPES = ("BIGINT", "VARCHAR", "BOOLEAN", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "DOUBLE")

Progress = Callable[[str, int, int], Any]


@dataclass
class RefreshStats:
    """What a refresh did: the runs it re-read (``changed``), forgot (``removed``) or found dead."""

    runs: int = 0
    changed: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    status_changed: list[int] = field(default_factory=list)
    skipped_lines: dict[tuple[int, str], int] = field(default_factory=dict)
    rebuilt: bool = False
    seconds: float = 0.0


def default_catalog_path(root: Path) -> Path:
    """``<root>/.mlxcore/catalog.duckdb`` when writable, else a per-user cache path unique to ``root``."""
    state = root / runs.STATE_DIR
    probe = state if state.exists() else root
    if os.access(probe, os.W_OK | os.X_OK):
        return state / CATALOG_NAME
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return cache / "mlxcore" / "catalogs" / digest / CATALOG_NAME


def connect_for_writing(path: Path) -> Any:
    """Open ``path`` read-write, waiting (up to :data:`LOCK_TIMEOUT`) while another process uses it."""
    import duckdb

    deadline = time.monotonic() + LOCK_TIMEOUT
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


class Catalog:
    """The catalog of the logs directory ``root`` (stored at ``path``, default :func:`default_catalog_path`)."""

    def __init__(self, root: Path | str, path: Path | str | None = None, racy_seconds: float = 2.0) -> None:
        self.root = Path(root).expanduser().absolute()
        if not self.root.is_dir():
            raise QueryError(f"logs directory {str(self.root)!r} does not exist or is not a directory")
        self.path = Path(path).expanduser().absolute() if path else default_catalog_path(self.root)
        self.racy_ns = int(racy_seconds * 1e9)
        self.connection = QueryConnection(self.path)

    def _stored_state(self) -> tuple[dict[int, tuple[str, bool]], dict[int, tuple]] | None:
        """``({log_id: (signature, final)}, {log_id: state row of a RUNNING run})``, or ``None`` when the catalog
        must be (re)built."""
        import duckdb

        if not self.path.exists():
            return None
        try:
            with self.connection.attached() as con:
                version = con.execute("SELECT value FROM mlxcore_meta WHERE key = 'schema_version'").fetchall()
                if version != [(SCHEMA_VERSION,)]:
                    log.info("catalog %s has another schema version; rebuilding it", self.path)
                    return None
                # the columns the dead-run check needs only for the runs that say RUNNING: 10,000 rows of
                # eight values cost more to turn into Python than the whole listing of the directory
                signatures = con.execute("SELECT log_id, signature, final FROM mlxcore_state").fetchall()
                running = con.execute(f"SELECT {', '.join(_STATE)} FROM mlxcore_state WHERE raw_status = ?",
                                      [runs.RUNNING]).fetchall()
        except duckdb.Error as exc:
            log.warning("catalog %s cannot be read (%s); rebuilding it", self.path, str(exc).splitlines()[0])
            return None
        return {log_id: (sig, final) for log_id, sig, final in signatures}, {row[0]: row for row in running}

    def refresh(self, progress: Progress | None = None) -> RefreshStats:
        """Bring the catalog up to date with the logs directory; see the module docstring."""
        started = time.perf_counter()
        scan_start = time.time_ns()
        on_disk = scan.list_runs(self.root)
        stored = self._stored_state()
        stats = RefreshStats(runs=len(on_disk), rebuilt=stored is None)
        state, running = stored or ({}, {})
        signatures: dict[int, tuple[str, str]] = {}  # log_id -> (signature if final, signature if not)
        for log_id, run_dir in on_disk.items():
            old = state.get(log_id)
            final = bool(old and old[1])
            sig = scan.signature(run_dir, final, scan_start, self.racy_ns)
            if old is None or old[0] != sig:
                other = scan.signature(run_dir, not final, scan_start, self.racy_ns)
                signatures[log_id] = (sig, other) if final else (other, sig)
        stats.changed = sorted(signatures)
        stats.removed = sorted(set(state) - set(on_disk))
        dead: dict[int, str] = {}
        for log_id, row in running.items():
            if log_id in signatures or log_id not in on_disk:
                continue
            now = runs.effective_status({"status": row[3], "hostname": row[5], "pid": row[6],
                                         "heartbeat_interval": row[7]}, Path(on_disk[log_id]))
            if now != row[4]:
                dead[log_id] = now
        stats.status_changed = sorted(dead)
        if stats.rebuilt or stats.changed or stats.removed or dead:
            self._apply(on_disk, signatures, set(state), stats, dead, progress)
        stats.seconds = time.perf_counter() - started
        log.debug("catalog %s: %d runs, %d re-read, %d removed in %.3f s", self.path, stats.runs,
                  len(stats.changed), len(stats.removed), stats.seconds)
        return stats

    def _apply(self, on_disk: dict[int, str], signatures: dict[int, tuple[str, str]], known: set[int],
               stats: RefreshStats, dead: dict[int, str], progress: Progress | None) -> None:
        import duckdb

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if stats.rebuilt:
                for suffix in ("", ".wal"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            con = connect_for_writing(self.path)
        except (OSError, duckdb.Error) as exc:
            raise QueryError(f"cannot write the catalog {self.path}: {str(exc).splitlines()[0]}; "
                             "pass another catalog path") from None
        reader = _MetadataReader(on_disk, stats.changed, progress)
        reader.start()
        try:
            con.execute("BEGIN TRANSACTION")
            if stats.rebuilt:
                _create_schema(con)
            else:  # another process may have loaded some of these runs since we read the state: ask again
                known = {row[0] for row in con.execute("SELECT log_id FROM mlxcore_state").fetchall()}
            delete_runs(con, sorted(known & (set(stats.changed) | set(stats.removed))))  # new runs have no rows
            schema_changed = self._load_metrics(con, on_disk, stats, progress)
            reader.join()
            if reader.error is not None:
                raise reader.error
            for record in reader.records:
                for problem in record.problems:
                    log.warning("run %s: %s", record.log_id, problem)
            schema_changed |= _upsert_runs(con, reader.records, on_disk, stats.removed)
            _write_state(con, reader.records, signatures, on_disk)
            for log_id, status in dead.items():
                con.execute('UPDATE mlxcore_runs SET status = ?, "info.status" = ? WHERE log_id = ?',
                            [status, status, log_id])
                con.execute("UPDATE mlxcore_state SET status = ? WHERE log_id = ?", [status, log_id])
            if schema_changed or stats.rebuilt:
                _create_views(con)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        except BaseException:
            reader.join()
            raise
        finally:
            con.close()
        if stats.skipped_lines:
            total = sum(stats.skipped_lines.values())
            items = sorted(stats.skipped_lines.items())
            where = ", ".join(f"run {i} metrics/{s}.json ({n})" for (i, s), n in items[:5])
            more = f" and {len(items) - 5} more file(s)" if len(items) > 5 else ""
            log.warning("skipped %d unreadable metric line(s): %s%s; the other rows are loaded "
                        "(see the skipped_lines table)", total, where, more)

    def _load_metrics(self, con: Any, on_disk: dict[int, str], stats: RefreshStats, progress: Progress | None
                      ) -> bool:
        """Load the metric files of the changed runs and update the summaries; True if a table's columns changed
        (then the views are made again)."""
        existing = {name.lower(): name for name in streams(con)}
        by_stream: dict[str, list[tuple[int, str]]] = {}
        for log_id in stats.changed:
            for stream, path in scan.metric_files(on_disk[log_id]).items():
                name = existing.setdefault(stream.lower(), stream)  # SQL names ignore case: Train is train
                by_stream.setdefault(name, []).append((log_id, path))
        done, total = 0, sum(len(files) for files in by_stream.values())
        reshaped: set[str] = set()
        for stream, files in sorted(by_stream.items()):
            skipped, changed = ingest_stream(con, stream, files)
            for log_id, lines in skipped.items():
                stats.skipped_lines[(log_id, stream)] = lines
            if changed:
                reshaped.add(stream)
            done += len(files)
            if progress:
                progress("metrics", done, total)
        touched = sorted(set(stats.changed) | set(stats.removed))
        many = stats.rebuilt or len(touched) * 4 > max(len(on_disk), 1)  # one full pass beats a delete + insert
        for stream in sorted(set(existing.values())):
            full = many or stream in reshaped
            update_summary(con, stream, None if full else touched)
            reshaped |= {stream} if full else set()
        return bool(reshaped)


class _MetadataReader(threading.Thread):
    """Parses the YAML metadata of the changed runs while the main thread keeps DuckDB busy."""

    def __init__(self, on_disk: dict[int, str], ids: list[int], progress: Progress | None) -> None:
        super().__init__(name="mlxcore-catalog-metadata", daemon=True)
        self.on_disk, self.ids, self.progress = on_disk, ids, progress
        self.records: list[scan.RunRecord] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            loader = scan.yaml_loader()
            for n, log_id in enumerate(self.ids, 1):
                self.records.append(scan.read_run(log_id, self.on_disk[log_id], loader))
                if self.progress and (n % 200 == 0 or n == len(self.ids)):
                    self.progress("metadata", n, len(self.ids))
        except BaseException as exc:  # re-raised by the main thread
            self.error = exc


def _create_schema(con: Any) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS mlxcore_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT OR REPLACE INTO mlxcore_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
    columns = ", ".join(f"{name} {dtype}" for name, dtype in zip(_STATE, _STATE_TYPES))
    con.execute(f"CREATE TABLE IF NOT EXISTS mlxcore_state ({columns})")
    con.execute('CREATE TABLE IF NOT EXISTS mlxcore_runs (log_id BIGINT, status VARCHAR, "info.status" VARCHAR)')
    create_schema(con)


def _status(record: scan.RunRecord, run_dir: str) -> tuple[str, str]:
    """(status written in info.yaml, status to show)."""
    raw = record.info.get("status")
    raw = raw if isinstance(raw, str) else "UNKNOWN"
    return raw, runs.effective_status(dict(record.info, status=raw), Path(run_dir))


def _insert_columns(con: Any, table: str, data: dict[str, tuple[str, list[Any]]]) -> None:
    """``INSERT ... BY NAME`` from Python lists, one list per column (``{name: (type, values)}``)."""
    params = {f"p{n}": values for n, (_, values) in enumerate(data.values())}
    select = ", ".join(
        f"unnest($p{n}::VARCHAR[])::JSON AS {q(name)}" if ctype == scan.JSON
        else f"unnest($p{n}::{ctype}[]) AS {q(name)}" for n, (name, (ctype, _)) in enumerate(data.items()))
    con.execute(f"INSERT INTO {table} BY NAME SELECT {select}", params)


def _upsert_runs(con: Any, records: list[scan.RunRecord], on_disk: dict[int, str], removed: list[int]) -> bool:
    """Replace the rows of ``records`` and delete those of ``removed``; True when columns were added, widened or
    dropped."""
    existing = {name: dtype.upper() for name, dtype in table_columns(con, "main", "mlxcore_runs").items()}
    before = dict(existing)
    rows, types = [], {}
    for record in records:
        row = record.flat()
        row["log_id"] = record.log_id
        row["status"] = row["info.status"] = _status(record, on_disk[record.log_id])[1]
        for key, value in row.items():
            types[key] = scan.combine_types(types.get(key), scan.value_type(value))
        rows.append(row)
    for name, new in types.items():
        have = existing.get(name)
        if have is None:
            con.execute(f"ALTER TABLE mlxcore_runs ADD COLUMN {q(name)} {new or scan.VARCHAR}")
            existing[name] = new or scan.VARCHAR
        elif scan.combine_types(have, new) != have:
            wanted = scan.combine_types(have, new)
            using = f"to_json({q(name)})" if wanted == scan.JSON else f"CAST({q(name)} AS {wanted})"
            con.execute(f"ALTER TABLE mlxcore_runs ALTER {q(name)} TYPE {wanted} USING {using}")
            existing[name] = wanted
    gone = sorted({row["log_id"] for row in rows} | set(removed))
    if gone:
        con.execute("DELETE FROM mlxcore_runs WHERE log_id IN (SELECT unnest($ids))", {"ids": gone})
    if rows:
        names = [name for name in existing if name in types]
        _insert_columns(con, "mlxcore_runs", {
            name: (existing[name], [scan.convert(row.get(name), existing[name]) for row in rows]) for name in names})
    if removed:
        _drop_empty_columns(con, existing)
    return existing != before


def _drop_empty_columns(con: Any, columns: dict[str, str]) -> None:
    """Columns only deleted runs had: gone with them."""
    names = [n for n in columns if n not in ("log_id", "status", "info.status")]
    if not names:
        return
    counts = con.execute(f"SELECT {', '.join(f'count({q(n)})' for n in names)} FROM mlxcore_runs").fetchall()[0]
    for name, count in zip(names, counts):
        if count == 0:
            con.execute(f"ALTER TABLE mlxcore_runs DROP COLUMN {q(name)}")
            del columns[name]


def _write_state(con: Any, records: list[scan.RunRecord], signatures: dict[int, tuple[str, str]],
                 on_disk: dict[int, str]) -> None:
    con.execute("DELETE FROM mlxcore_state WHERE log_id NOT IN (SELECT unnest($ids))", {"ids": sorted(on_disk)})
    if not records:
        return
    con.execute("DELETE FROM mlxcore_state WHERE log_id IN (SELECT unnest($ids))", {"ids": [r.log_id for r in records]})
    columns: dict[str, list[Any]] = {name: [] for name in _STATE}
    for record in records:
        raw, status = _status(record, on_disk[record.log_id])
        final = raw in runs.FINAL_STATUSES
        host, pid, interval = (record.info.get(k) for k in ("hostname", "pid", "heartbeat_interval"))
        values = (record.log_id, signatures[record.log_id][0 if final else 1], final, raw, status,
                  host if isinstance(host, str) else None,
                  pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                  float(interval) if isinstance(interval, (int, float)) and not isinstance(interval, bool) else None)
        for name, value in zip(_STATE, values):
            columns[name].append(value)
    _insert_columns(con, "mlxcore_state", {name: (dtype, columns[name]) for name, dtype in zip(_STATE, _STATE_TYPES)})


def public_tables(con: Any) -> list[str]:
    """Every name a user query may read: ``runs``, ``skipped_lines``, each stream (bare, ``metrics.`` and
    ``summaries.``)."""
    names = list(PUBLIC_TABLES)
    for stream in streams(con):
        names += [f"metrics.{stream}", f"summaries.{stream}"]
        if _bare_view_allowed(stream):
            names.append(stream)
    return names


def _bare_view_allowed(stream: str) -> bool:
    """A stream named like a catalog table (``runs``, ``mlxcore_state``) is reachable as ``metrics.<name>`` only."""
    lowered = stream.lower()
    return lowered not in (*PUBLIC_TABLES, "metrics", "summaries") and not lowered.startswith("mlxcore_")


def _create_views(con: Any) -> None:
    """``runs`` (metadata joined with every stream's summaries) and one view per stream in ``main``."""
    names = streams(con)
    run_columns = list(table_columns(con, "main", "mlxcore_runs"))
    config = sorted(c for c in run_columns if c.startswith("config."))
    info = sorted(c for c in run_columns if c.startswith("info."))
    other = [c for c in run_columns if c not in config and c not in info and c not in ("log_id", "status")]
    select = ["r.log_id", "r.status", *(f"r.{q(c)}" for c in config + other)]
    joins = []
    for n, stream in enumerate(names):
        summary = [c for c in table_columns(con, "summaries", stream) if c != "log_id"]
        select += [f"s{n}.{q(c)}" for c in summary if c not in run_columns]
        joins.append(f"LEFT JOIN summaries.{q(stream)} s{n} ON s{n}.log_id = r.log_id")
    select += [f"r.{q(c)}" for c in info]
    con.execute(f"CREATE OR REPLACE VIEW runs AS SELECT {', '.join(select)} FROM mlxcore_runs r "
                f"{' '.join(joins)} ORDER BY r.log_id")
    stale = {r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal "
        "AND database_name = current_database()").fetchall()} - {"runs"}
    for stream in names:
        if _bare_view_allowed(stream):
            con.execute(f"CREATE OR REPLACE VIEW main.{q(stream)} AS SELECT * FROM metrics.{q(stream)}")
            stale.discard(stream)
    for view in stale:
        con.execute(f"DROP VIEW IF EXISTS main.{q(view)}")
