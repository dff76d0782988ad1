"""The catalog: a DuckDB file holding one row per run, the metric streams and their per-run summaries.

Where: ``<logs>/.mlxcore/catalog.duckdb``, or ``$XDG_CACHE_HOME/mlxcore/catalogs/<hash of the logs path>/`` when
the logs directory is read-only. It is a cache of the run directories, never a source of truth: a catalog of
another schema version, or one DuckDB cannot open, is rebuilt from the logs.

Tables a query can read (see :mod:`mlxcore.reader.sql_guard`; how they are kept: :mod:`.tables`):

* ``runs`` — ``log_id``, ``status``, every ``config.*`` and ``info.*`` key flattened to a dotted name,
  and the summary columns ``<stream>.<key>.last|min|max|mean|count`` of every stream;
* one view per stream, e.g. ``train`` (also ``metrics.train``): ``log_id``, ``_row`` and the logged keys;
  ``summaries.<stream>``: the summaries alone;
* ``skipped_lines``: ``log_id``, ``stream``, ``lines`` — torn or corrupt lines that were not loaded.

``status`` and ``info.status`` are the status to show: a RUNNING run whose process is gone reads ``DEAD``
(:func:`mlxcore.store.effective_status`), re-evaluated at every refresh.

A refresh stats each finished run once and compares the signature of the others (:mod:`.scan`), then re-reads
only the runs that changed or appeared, in one transaction (a crash leaves the previous catalog); a refresh that
finds nothing to do never opens the file for writing, and reads the catalog with one attach and three small
queries. The files of the changed runs are read by one thread while DuckDB (which releases the GIL) loads what
it has been handed (:class:`mlxcore.reader.workers.RunReader`). A metric file that the logger summarised is not
parsed then: its summary is stored and its rows wait until a query reads the stream (:mod:`.logged`,
:meth:`Catalog.load_histories`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import store
from ..errors import QueryError
from . import isolate, logged, scan, survey, tables
from .catalog_files import (
    default_catalog_path,
    file_identity,
    is_duckdb_file,
    writer_lock,
)
from .connection import ALIAS, CATALOG_FILES, WRITE_WAIT, CatalogBusy, shared
from .metrics import declare_columns, delete_runs, ingest_stream, streams, update_summary, warn_skipped
from .workers import Progress, RunReader

log = logging.getLogger(__name__)

#: ``{catalog path: (identity of its files, what they held)}``: a process reopening a reader over a catalog that
#: nobody wrote since reuses what it read (see Catalog._stored)
_last_read: dict[str, tuple[tuple, _Stored]] = {}


@dataclass
class RefreshStats:
    """What a refresh did: the runs it re-read (``changed``), forgot (``removed``) or found dead."""

    runs: int = 0
    changed: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    status_changed: list[int] = field(default_factory=list)
    skipped_lines: dict[tuple[int, str], int] = field(default_factory=dict)
    #: what could not be loaded of the metric files read, per run (besides what the runs' records say)
    problems: dict[int, list[str]] = field(default_factory=dict)
    rebuilt: bool = False
    #: the catalog could not be written (other processes were reading it): queries see it as it was
    stale: bool = False
    seconds: float = 0.0


@dataclass
class _Stored:
    """What the catalog knows of the runs, read in one go at the start of a refresh."""

    known: set[int] = field(default_factory=set)
    finished: dict[int, int] = field(default_factory=dict)  # log_id -> stamp of a finished run
    signatures: dict[int, str] = field(default_factory=dict)  # log_id -> signature of a run not finished
    running: dict[int, tuple] = field(default_factory=dict)  # log_id -> state row of a run saying RUNNING
    shape: dict[str, Any] | None = None


@dataclass
class _Plan:
    """What a refresh will do: :attr:`needed` is False when the catalog is up to date."""

    stats: RefreshStats
    on_disk: dict[int, str]
    stamps: dict[int, tuple[int | None, str | None]]
    dead: dict[int, str]
    needed: bool


class Catalog:
    """The catalog of the logs directory ``root`` (stored at ``path``, default :func:`default_catalog_path`)."""

    def __init__(self, root: Path | str, path: Path | str | None = None, racy_seconds: float = 2.0,
                 memory_limit: int | None = None) -> None:
        self.root = Path(root).expanduser().absolute()
        if not self.root.is_dir():
            raise QueryError(f"logs directory {str(self.root)!r} does not exist or is not a directory")
        self.path = Path(path).expanduser().absolute() if path else default_catalog_path(self.root)
        #: a path the user chose may name a file of theirs: it is replaced only when it is an mlxcore catalog
        self.chosen = path is not None
        self.racy_ns = int(racy_seconds * 1e9)
        self.connection = shared(self.path, memory_limit)
        #: the columns of ``runs`` and of each stream, and the tables a query may read (see
        #: :func:`mlxcore.reader.tables.save_shape`), as of the last refresh
        self.shape: dict[str, Any] | None = None

    def _stored(self) -> _Stored | None:
        """What the catalog holds, or ``None`` when it must be (re)built."""
        import duckdb

        if not self.path.exists():
            return None
        if self.chosen and not is_duckdb_file(self.path):
            raise QueryError(f"{self.path} exists and is not an mlxcore catalog; refusing to replace it: give the "
                             "path of a new file, or of an mlxcore catalog")
        try:
            with self.connection.attached() as con:
                # the files cannot change while attached (a shared lock): when they are as this process last
                # read them, so is what they hold
                identity = file_identity(self.path, CATALOG_FILES, self.racy_ns)
                last = _last_read.get(str(self.path))
                if identity is not None and last is not None and last[0] == identity:
                    return last[1]
                _last_read.pop(str(self.path), None)
                meta = dict(con.execute("SELECT key, value FROM mlxcore_meta").fetchall())
                if meta.get("schema_version") != tables.SCHEMA_VERSION:
                    log.info("catalog %s has another schema version; rebuilding it", self.path)
                    return None
                stored = _Stored(shape=json.loads(meta["shape"]) if "shape" in meta else None)
                for log_id, stamp, signature in con.execute(
                        "SELECT log_id, stamp, signature FROM mlxcore_state").fetchall():
                    stored.known.add(log_id)
                    if stamp is not None:
                        stored.finished[log_id] = stamp
                    elif signature is not None:
                        stored.signatures[log_id] = signature
                # the columns the dead-run check needs only for the runs that say RUNNING
                stored.running = {row[0]: row for row in con.execute(
                    f"SELECT {', '.join(tables.STATE)} FROM mlxcore_state WHERE raw_status = ?",
                    [store.RUNNING]).fetchall()}
                if identity is not None:
                    _last_read[str(self.path)] = (identity, stored)
        except duckdb.Error as exc:
            log.warning("catalog %s cannot be read (%s); rebuilding it", self.path, str(exc).splitlines()[0])
            return None
        return stored

    def _is_a_catalog(self) -> bool:
        """The file at :attr:`path` is a DuckDB database holding mlxcore's tables (of any schema version)."""
        import duckdb

        if not is_duckdb_file(self.path):
            return False
        try:
            with self.connection.attached() as con:
                return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
                                        " AND table_name = 'mlxcore_meta'").fetchone()[0])
        except (OSError, duckdb.Error, QueryError):
            return False

    def load_shape(self) -> dict[str, Any]:
        """:attr:`shape`, read from the catalog when no refresh read it."""
        if self.shape is None:
            with self.connection.attached() as con:
                found = con.execute("SELECT value FROM mlxcore_meta WHERE key = 'shape'").fetchall()
            if not found:
                raise QueryError(f"the catalog {self.path} is incomplete; refresh the reader")
            self.shape = json.loads(found[0][0])
        return self.shape

    def refresh(self, progress: Progress | None = None, rebuild: bool = False) -> RefreshStats:
        """Bring the catalog up to date with the logs directory; see the module docstring. ``rebuild``: make it
        anew from every run (after files were edited by hand, not through the store).

        Exactly once, however many processes refresh at the same time: what to change is decided from a first
        look (nothing to do: done, without writing), then decided again under the writers' lock from the
        catalog as it is then (another process may have done the work meanwhile), and applied in one
        transaction while that lock is held."""
        import duckdb

        started = time.perf_counter()
        scan_start = time.time_ns()
        # a survey in a thread while DuckDB starts; once started, reading the stored state costs less than a thread
        found, stored = survey.look(self.root, self._stored, racy_ns=self.racy_ns, now_ns=scan_start,
                                    beside=not self.connection.started, full=rebuild)
        plan = self._plan(found, None if rebuild else stored, scan_start)
        if plan.needed:
            with self.writer_lock():
                plan = self._plan(found, None if rebuild else self._stored(), scan_start)
                if plan.needed:
                    try:
                        self.shape = self._apply(plan.on_disk, plan.stamps, plan.stats, plan.dead, scan_start,
                                                 progress, found)
                    except duckdb.Error as exc:  # a run DuckDB refuses: find it, leave it out, load the others
                        self.shape = isolate.apply_in_parts(self, plan, scan_start, progress, found, exc)
                    except CatalogBusy:  # long queries of other processes: answer from the catalog as it is
                        log.warning("the catalog %s is being read by another process (a long query?); answering "
                                    "from it as of its last refresh (%d run(s) changed since)", self.path,
                                    len(plan.stats.changed) + len(plan.stats.removed))
                        plan.stats.stale = True
        stats = plan.stats
        stats.seconds = time.perf_counter() - started
        log.debug("catalog %s: %d runs, %d re-read, %d removed in %.3f s", self.path, stats.runs,
                  len(stats.changed), len(stats.removed), stats.seconds)
        return stats

    def writer_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held by whoever writes the catalog (a refresh, loading rows): :func:`.catalog_files.writer_lock`."""
        return writer_lock(self.path)

    def _plan(self, found: dict[int, int | None], stored: _Stored | None, scan_start: int) -> _Plan:
        """What a refresh must change, from the survey of the logs directory (``{id: stamp}``) and what the catalog
        holds. Runs settled by their stamp cost one dictionary lookup: this runs at every reopen."""
        stats = RefreshStats(rebuilt=stored is None)
        stored = stored or _Stored()
        root = str(self.root)
        finished = stored.finished
        # runs known not finished are compared by signature here; every other run not settled by its stamp
        # (new, or finished and changed) is read again, and the reader thread takes its stamp first
        stamps: dict[int, tuple[int | None, str | None]] = {}
        changed: list[int] = []
        rejected: set[int] = set()
        for log_id in [i for i, stamp in found.items() if stamp is None or finished.get(i) != stamp]:
            path = f"{root}/{log_id}"
            if not scan.is_run_dir(path):
                rejected.add(log_id)
                continue
            if log_id in stored.signatures:
                stamp, signature = scan.signature(path, scan_start, self.racy_ns)
                if signature == stored.signatures[log_id]:
                    continue
                stamps[log_id] = (stamp, signature)
            changed.append(log_id)
        stats.runs = len(found) - len(rejected)
        stats.changed = sorted(changed)
        stats.removed = sorted(stored.known.difference(found) | (stored.known & rejected))
        dead: dict[int, str] = {}
        changed_set = set(changed)
        for log_id, row in stored.running.items():
            if log_id in changed_set or log_id not in found or log_id in rejected:
                continue
            now = store.effective_status({"status": row[4], "hostname": row[6], "pid": row[7],
                                         "heartbeat_interval": row[8]}, Path(f"{root}/{log_id}"))
            if now != row[5]:
                dead[log_id] = now
        stats.status_changed = sorted(dead)
        self.shape = stored.shape
        needed = bool(stats.rebuilt or stats.changed or stats.removed or dead or self.shape is None)
        on_disk = {log_id: f"{root}/{log_id}" for log_id in found if log_id not in rejected} if needed else {}
        return _Plan(stats, on_disk, stamps, dead, needed)

    def _apply(self, on_disk: dict[int, str], stamps: dict[int, tuple[int | None, str | None]],
               stats: RefreshStats, dead: dict[int, str], scan_start: int, progress: Progress | None,
               surveyed: dict[int, int | None]) -> dict[str, Any]:
        import duckdb

        reader = RunReader(on_disk, stats.changed, stamps, scan_start, self.racy_ns, progress, surveyed=surveyed)
        reader.start()  # while DuckDB opens the catalog

        with contextlib.ExitStack() as stack:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if stats.rebuilt:
                    if self.chosen and self.path.exists() and not self._is_a_catalog():
                        reader.stop()
                        raise QueryError(f"{self.path} exists and is not an mlxcore catalog; refusing to replace "
                                         "it: give the path of a new file, or of an mlxcore catalog")
                    self.connection.release()  # a read of the old file may still hold it
                    for suffix in CATALOG_FILES:
                        Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                wait = None if stats.rebuilt else WRITE_WAIT  # without a catalog there is nothing to answer from
                con = stack.enter_context(self.connection.attached(write=True, wait=wait))
            except CatalogBusy:
                reader.stop()
                raise
            except (OSError, duckdb.Error) as exc:
                reader.stop()
                raise QueryError(f"cannot write the catalog {self.path}: {str(exc).splitlines()[0]}; "
                                 "pass another catalog path") from None
            try:
                con.execute("BEGIN TRANSACTION")
                touched = sorted(set(stats.changed) | set(stats.removed))
                if stats.rebuilt:
                    tables.create_tables(con)
                elif touched:  # rows to delete first; another process may have loaded some new runs meanwhile
                    delete_runs(con, [row[0] for row in con.execute(
                        "SELECT log_id FROM mlxcore_state WHERE log_id IN (SELECT unnest($ids))", {"ids": touched}
                    ).fetchall()])
                reshaped = self._load_metrics(con, reader, on_disk, stats, progress)
                rows = reader.rows()
                for record in reader.records:
                    for problem in record.problems:
                        log.warning("run %s: %s", record.log_id, problem)
                reshaped |= tables.upsert_runs(con, rows, stats.removed)
                tables.write_state(con, rows, stats.removed)
                tables.write_problems(con, reader.records, stats.removed, stats.problems)
                tables.set_status(con, dead)
                touched = sorted(set(stats.changed) | set(stats.removed) | set(dead))
                full = reshaped or stats.rebuilt or len(touched) * 4 > max(len(on_disk), 1)
                tables.update_runs_table(con, None if full else touched)
                if reshaped or stats.rebuilt:
                    tables.create_views(con)
                shape = tables.save_shape(con) if reshaped or stats.rebuilt or self.shape is None else self.shape
                con.execute("COMMIT")
                con.execute(f"CHECKPOINT {ALIAS}")
            except BaseException:
                reader.stop()
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
        warn_skipped(stats.skipped_lines)
        return shape

    def load_histories(self, names: Iterable[str], progress: Progress | None = None) -> bool:
        """Load the rows of the streams ``names`` (catalog names) that were left for later (:mod:`.pending`);
        True when rows were loaded (then :attr:`shape` is new)."""
        from .pending import load_rows

        return load_rows(self, names, progress)

    def _load_metrics(self, con: Any, reader: RunReader, on_disk: dict[int, str], stats: RefreshStats,
                      progress: Progress | None) -> bool:
        """Load the metric files of the changed runs (read by ``reader``) and update the summaries; True if a
        table's columns changed (then the views are made again)."""
        existing = {name.lower(): name for name in streams(con)}
        done = 0
        reshaped: set[str] = set()
        for stream, group in itertools.groupby(reader.batches(), key=lambda item: item[0]):
            name = existing.setdefault(stream.lower(), stream)  # SQL names ignore case: Train is train
            skipped, changed = ingest_stream(con, name, (batch for _, batch in group), stats.problems)
            for log_id, lines in skipped.items():
                stats.skipped_lines[(log_id, name)] = lines
            if changed:
                reshaped.add(name)
            done += len(reader.files[stream])
            if progress:
                progress("metrics", done, sum(len(files) for files in reader.files.values()))
        if reader.logged.file_ids:  # complete once the batches are
            names = [existing.setdefault(stream.lower(), stream) for stream in reader.logged.file_streams]
            for name, types in logged.insert(con, reader.logged, names, str(self.root)).items():
                if declare_columns(con, name, types):
                    reshaped.add(name)
        touched = sorted(set(stats.changed) | set(stats.removed))
        many = stats.rebuilt or len(touched) * 4 > max(len(on_disk), 1)  # one full pass beats a delete + insert
        for stream in sorted(set(existing.values())):
            full = many or stream in reshaped
            update_summary(con, stream, None if full else touched)
            reshaped |= {stream} if full else set()
        return bool(reshaped)
