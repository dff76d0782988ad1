"""Summaries the logger wrote (``metrics/.summaries.json``, :mod:`mlxcore.loggers.summaries`), and the lazy loading
of the rows they stand for.

A stream file that a valid summary describes exactly (same size) is not parsed at refresh: its summary goes to
``mlxcore_logged`` (one row per run, stream and key; values as JSON text, cast to the column's type when the
``summaries.<stream>`` table is made, exactly as the rows would be), the stream's columns are added or widened
from the summary's types, and the file goes to ``mlxcore_pending``. Its rows are loaded when a query first
reads the stream's table (:mod:`mlxcore.reader.pending`): a filter over ``runs``, which
holds the summaries, parses no metric file at all.

Which source a run's summary comes from never changes while the run does not: the logged one when
``mlxcore_logged`` has the run and stream, even once the rows are loaded (the two agree, but a recomputed mean
could differ in its last bit, and a query should not see a number change because another query ran).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..loggers.summaries import FORMAT, TYPES, well_formed
from . import scan

#: keys of a stream file whose summary is taken (see mlxcore.reader.metrics.MAX_KEYS)
MAX_KEYS = 256

#: ``mlxcore_logged`` columns; ``key`` is NULL in the one row marking that the run has the stream
LOGGED_COLUMNS = (("log_id", "BIGINT"), ("stream", "VARCHAR"), ("key", "VARCHAR"), ("count", "BIGINT"),
                  ("last", "VARCHAR"), ("min", "VARCHAR"), ("max", "VARCHAR"), ("mean", "DOUBLE"))


def create_tables(con: Any) -> None:
    columns = ", ".join(f'"{name}" {dtype}' for name, dtype in LOGGED_COLUMNS)
    con.execute(f"CREATE TABLE IF NOT EXISTS mlxcore_logged ({columns})")
    con.execute("CREATE TABLE IF NOT EXISTS mlxcore_pending (log_id BIGINT, stream VARCHAR, path VARCHAR)")


@dataclass
class LoggedSummaries:
    """The summaries files of the changed runs (as text: DuckDB takes them apart, without the GIL) and the metric
    files they describe exactly, found by the reader thread (:meth:`offer`)."""

    ids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    file_ids: list[int] = field(default_factory=list)
    file_streams: list[str] = field(default_factory=list)  # the stream's name on disk
    paths: list[str] = field(default_factory=list)

    def offer(self, log_id: int, raw: bytes, files: dict[str, str], sizes: list[tuple[str, int, int]]) -> set[str]:
        """Take the streams of ``files`` (``{stream: path}``) that the summaries file ``raw`` describes exactly
        (same size); returns them (the others are parsed). ``sizes`` receives ``(file name, size, mtime_ns)`` of
        each file taken (:func:`mlxcore.reader.scan.compose`)."""
        try:
            data = json.loads(raw)
            stored = data["streams"] if data.get("format") == FORMAT else None
        except (ValueError, TypeError, KeyError, AttributeError):
            return set()
        if not isinstance(stored, dict):
            return set()
        taken = set()
        for stream, path in files.items():
            entry = stored.get(stream)
            if not isinstance(entry, dict) or not well_formed(entry.get("keys")) or len(entry["keys"]) > MAX_KEYS:
                continue  # a file of very many keys is parsed now: its keys beyond the limit are reported then
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_size != entry.get("bytes"):
                continue
            sizes.append((f"{stream}.json", st.st_size, st.st_mtime_ns))
            self.file_ids.append(log_id)
            self.file_streams.append(stream)
            self.paths.append(path)
            taken.add(stream)
        if taken:
            self.ids.append(log_id)
            self.texts.append(raw.decode("utf-8", "replace"))
        return taken


def insert(con: Any, summaries: LoggedSummaries, names: list[str], root: str) -> dict[str, dict[str, str | None]]:
    """Store ``summaries`` (``names``: the catalog's name of each file's stream) in ``mlxcore_logged`` and their
    files in ``mlxcore_pending`` (relative to the logs directory ``root``: a logs directory moved with its catalog
    still finds them); returns ``{stream: {key: type}}`` over these runs, keys in the order they were
    first logged, for the stream tables' columns (:func:`mlxcore.reader.metrics.declare_columns`).

    A key whose values are not of the form the logger writes is left out (its summary reads NULL)."""
    prefix = root.rstrip("/") + "/"  # the paths are the survey's, "<root>/<id>/metrics/<file>" (relpath: 5x slower)
    cut = len(prefix)
    pointers = ["/streams/" + s.replace("~", "~0").replace("/", "~1") + "/keys" for s in summaries.file_streams]
    # in steps, as in mlxcore.reader.metrics: the same in one query takes three times as long
    con.execute("CREATE OR REPLACE TEMP TABLE _mlx_docs AS SELECT unnest($ids) AS log_id, unnest($texts)::JSON AS doc",
                {"ids": summaries.ids, "texts": summaries.texts})
    con.execute("CREATE OR REPLACE TEMP TABLE _mlx_files AS SELECT unnest($ids) AS log_id, unnest($names) AS stream, "
                "unnest($pointers) AS pointer, unnest($paths) AS path",
                {"ids": summaries.file_ids, "names": names, "pointers": pointers,
                 "paths": [path[cut:] if path.startswith(prefix) else path for path in summaries.paths]})
    con.execute("CREATE OR REPLACE TEMP TABLE _mlx_entries AS SELECT f.log_id, f.stream, "
                "json_extract(d.doc, f.pointer) AS keys FROM _mlx_files f JOIN _mlx_docs d USING (log_id)")
    con.execute("CREATE OR REPLACE TEMP TABLE _mlx_logged AS SELECT log_id, stream, k.key, "
                "TRY_CAST(k.value AS JSON[]) AS v, k.id FROM _mlx_entries, json_each(keys) k")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _mlx_logged AS SELECT * FROM (SELECT log_id, stream, key, "
        "TRY_CAST(v[2] AS BIGINT) AS count, CAST(v[3] AS VARCHAR) AS last, CAST(v[4] AS VARCHAR) AS min, "
        "CAST(v[5] AS VARCHAR) AS max, TRY_CAST(v[6] AS DOUBLE) / nullif(TRY_CAST(v[2] AS BIGINT), 0) AS mean, "
        "v[1] ->> '$' AS type, id FROM _mlx_logged WHERE len(v) = 6) "
        f"WHERE (type IS NULL AND count = 0) OR (type IN ({', '.join(repr(t) for t in sorted(TYPES))}) AND count > 0)")
    con.execute("INSERT INTO mlxcore_logged SELECT log_id, stream, key, count, last, min, max, mean FROM _mlx_logged")
    con.execute("INSERT INTO mlxcore_logged (log_id, stream) SELECT log_id, stream FROM _mlx_files")
    con.execute("INSERT INTO mlxcore_pending SELECT log_id, stream, path FROM _mlx_files")
    found: dict[str, dict[str, str | None]] = {}
    for stream, key, types in con.execute(
            "SELECT stream, key, list(DISTINCT type) FILTER (WHERE type IS NOT NULL) FROM _mlx_logged "
            "GROUP BY stream, key ORDER BY stream, min(log_id), arg_min(id, log_id)").fetchall():
        kind = None
        for one in types or ():
            kind = scan.combine_types(kind, one)
        found.setdefault(stream, {})[key] = kind
    for table in ("_mlx_logged", "_mlx_entries", "_mlx_files", "_mlx_docs"):
        con.execute(f"DROP TABLE temp.{table}")
    return found
def delete_runs(con: Any, ids: list[int]) -> None:
    con.execute("DELETE FROM mlxcore_logged WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})
    con.execute("DELETE FROM mlxcore_pending WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})


def pending(con: Any) -> dict[str, int]:
    """``{stream: files whose rows are not loaded}``."""
    return dict(con.execute("SELECT stream, count(*) FROM mlxcore_pending GROUP BY stream ORDER BY stream").fetchall())


def pending_files(con: Any, stream: str, root: str) -> list[tuple[int, str]]:
    """``(log_id, path)`` of the files of ``stream`` whose rows are not loaded, under the logs directory ``root``."""
    return [(int(i), os.path.join(root, p)) for i, p in con.execute(
        "SELECT log_id, path FROM mlxcore_pending WHERE stream = ? ORDER BY log_id", [stream]).fetchall()]
