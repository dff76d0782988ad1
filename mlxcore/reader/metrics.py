"""Loading metric streams (``metrics/<stream>.json``, JSON lines) into the catalog with DuckDB's JSON reader.

Each stream becomes the table ``metrics."<stream>"``: ``log_id``, ``_row`` (the 0-based index of the row in
its file) and one column per logged key. Its per-run summaries live in ``summaries."<stream>"`` as columns
``<stream>.<key>.last|min|max|mean|count`` (``last|count`` only for non-numeric keys), computed from the rows,
or taken from the logger's summaries for the files whose rows are not loaded yet (:mod:`.logged`).

How: mlxcore reads each batch of files (a few thousand files are opened faster from Python than by DuckDB's
multi-file reader) and DuckDB does the rest: it splits the lines, keeps those that are JSON objects (a torn or
corrupt line is *counted*, and the lines after it are kept), finds every key and the types of its values over
the whole batch, and casts each line to them. Not ``read_json``'s typed reader: it guesses the schema from a
sample (a key first logged at epoch 500 would be dropped) and a line that is valid JSON but not an object fails
the whole read. Types only widen (BIGINT -> DOUBLE -> VARCHAR -> JSON), so reloading a run never breaks the
others.

A key whose column name would collide with ``log_id``, ``_row`` or (case-insensitively, as SQL compares names)
another key of the stream gets a suffixed column name; the choice is stored in ``mlxcore_keys`` so it never
changes from one refresh to the next.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from . import logged
from .scan import BIGINT, BOOLEAN, DOUBLE, JSON, VARCHAR, combine_types

log = logging.getLogger(__name__)

#: files, and bytes, loaded at once: they bound the memory of the raw-lines table, and small batches let
#: the next one be read while DuckDB loads this one
BATCH_FILES = 2000
BATCH_BYTES = 64 * 1024 * 1024
RESERVED = ("log_id", "_row")
#: keys whose types one query finds: DuckDB plans hundreds of aggregates in one SELECT with gigabytes of memory
KINDS_AT_ONCE = 64
#: columns a stream's table may have: keys beyond them are left out, and the runs logging them are listed in
#: ``problems`` (each key of a stream is a column of its table and five of ``runs``)
MAX_KEYS = 1000
#: summary columns one query computes (see update_summary)
SUMMARIES_AT_ONCE = 160
#: our column type for each ``json_type`` of a value
_VALUE_TYPES = {"UBIGINT": BIGINT, "BIGINT": BIGINT, "DOUBLE": DOUBLE, "BOOLEAN": BOOLEAN, "VARCHAR": VARCHAR,
                "NULL": None, "OBJECT": JSON, "ARRAY": JSON}
_NUMERIC_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "FLOAT", "DOUBLE", "REAL"}


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def table_columns(con: Any, schema: str, table: str, missing_ok: bool = False) -> dict[str, str]:
    """``{column: DuckDB type}`` of ``schema.table`` (a table or a view), in column order; ``{}`` when it does not
    exist and ``missing_ok``. Read from an empty result's description: ten times faster than ``duckdb_columns()``,
    which matters when a refresh of ten runs asks it a dozen times."""
    if missing_ok and not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                                      [schema, table]).fetchall()[0][0]:
        return {}
    description = con.execute(f"SELECT * FROM {q(schema)}.{q(table)} LIMIT 0").description
    return {name: str(dtype) for name, dtype, *_ in description}


def is_numeric(duck_type: str) -> bool:
    return duck_type.upper() in _NUMERIC_TYPES or duck_type.upper().startswith("DECIMAL")


def create_schema(con: Any) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS metrics")
    con.execute("CREATE SCHEMA IF NOT EXISTS summaries")
    con.execute("CREATE TABLE IF NOT EXISTS mlxcore_keys (stream VARCHAR, key VARCHAR, col VARCHAR)")
    con.execute("CREATE TABLE IF NOT EXISTS skipped_lines (log_id BIGINT, stream VARCHAR, lines BIGINT)")
    logged.create_tables(con)


def streams(con: Any) -> list[str]:
    """The streams that have a table in the catalog (only the catalog has a ``metrics`` schema)."""
    return sorted(r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'metrics'").fetchall())


def delete_runs(con: Any, ids: list[int]) -> None:
    """Forget the metric rows, logged summaries and skipped-line counts of ``ids`` in every stream."""
    if not ids:
        return
    logged.delete_runs(con, ids)
    for stream in streams(con):
        con.execute(f"DELETE FROM metrics.{q(stream)} WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})
    con.execute("DELETE FROM skipped_lines WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})


def read_batches(stream: str, files: list[tuple[int, str]], sizes: dict[int, list[tuple[str, int, int]]] | None = None
                 ) -> Iterator[tuple[list[int], list[str]]]:
    """``(ids, texts)`` of the files of ``stream`` (``(log_id, path)``), :data:`BATCH_FILES` at most at a time.
    A file that cannot be read (removed since the listing, unreadable) is skipped with a warning.

    :param sizes: receives, per run, ``(file name, bytes read, mtime_ns)`` of each file read: the signature of what
        was loaded (:func:`mlxcore.reader.scan.compose`)."""
    ids: list[int] = []
    contents: list[str] = []
    size = 0
    for log_id, path in files:
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
                mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
        except OSError as exc:
            log.warning("run %s: metrics/%s.json cannot be read (%s); skipped", log_id, stream,
                        " ".join(str(exc).split()))
            continue
        if sizes is not None:
            sizes.setdefault(log_id, []).append((f"{stream}.json", len(raw), mtime_ns))
        ids.append(log_id)
        contents.append(raw.decode("utf-8", "replace"))
        size += len(raw)
        if len(ids) >= BATCH_FILES or size >= BATCH_BYTES:
            yield ids, contents
            ids, contents, size = [], [], 0
    if ids:
        yield ids, contents


def ingest_stream(con: Any, stream: str, batches: Iterable[tuple[list[int], list[str]]],
                  problems: dict[int, list[str]] | None = None) -> tuple[dict[int, int], bool]:
    """Load the batches of ``stream`` (:func:`read_batches`; the old rows of these runs must be deleted already);
    ``problems`` receives, per run, what could not be loaded (keys beyond :data:`MAX_KEYS`).

    :returns: ``{log_id: number of lines skipped}`` for the runs that had unreadable lines, and whether the
        stream's table was created or got new or wider columns.
    """
    exists = bool(table_columns(con, "metrics", stream, missing_ok=True))
    if not exists:
        con.execute(f"CREATE TABLE metrics.{q(stream)} (log_id BIGINT, _row BIGINT)")
    skipped: dict[int, int] = {}
    reshaped = not exists
    for ids, contents in batches:
        batch_skipped, batch_reshaped = _load_lines(con, stream, ids, contents, problems)
        skipped.update(batch_skipped)
        reshaped |= batch_reshaped
    if skipped:
        rows = sorted(skipped.items())
        con.executemany("INSERT INTO skipped_lines VALUES (?, ?, ?)", [(i, stream, n) for i, n in rows])
    return skipped, reshaped


def _load_lines(con: Any, stream: str, ids: list[int], contents: list[str],
                problems: dict[int, list[str]] | None = None) -> tuple[dict[int, int], bool]:
    """Insert the rows of one batch of files (``contents[n]`` is the text of run ``ids[n]``'s file).

    Each file is split into lines by DuckDB (``\n`` or ``\r\n``; empty lines are passed over); a line that is
    not a JSON object (torn by a crash, corrupt) is counted, not loaded. The keys come from ``json_keys``, each
    key's type from the types of its values (``json_group_structure`` would do both, at four times the cost), and
    the rows are cast from one ``json_transform`` to JSON values, so each line is parsed three times, never more."""
    # in steps: DuckDB runs each of these in milliseconds, and takes four times as long for the same in one query
    con.execute("CREATE OR REPLACE TEMP TABLE _mlx_files AS SELECT generate_subscripts($c, 1) - 1 AS f, "
                "unnest($c) AS text", {"c": contents})
    con.execute("CREATE OR REPLACE TEMP TABLE _mlx_split AS SELECT f, generate_subscripts(ls, 1) - 1 AS r, "
                "unnest(ls) AS line FROM (SELECT f, string_split(replace(text, chr(13), ''), chr(10)) AS ls "
                "FROM _mlx_files)")  # Windows line ends: a raw CR is whitespace or invalid JSON, never data
    con.execute("CREATE OR REPLACE TEMP TABLE _mlx_lines AS SELECT f, r, CASE WHEN json_valid(line) AND "
                "(starts_with(line, '{') OR json_type(line) = 'OBJECT') THEN line END AS json "
                "FROM _mlx_split WHERE line <> ''")
    con.execute("DROP TABLE temp._mlx_split")
    con.execute("DROP TABLE temp._mlx_files")
    keys = [k for (k,) in con.execute(
        "SELECT k FROM (SELECT f * 4294967296 + r AS pos, unnest(ks) AS k, generate_subscripts(ks, 1) AS i "
        "FROM (SELECT f, r, json_keys(json) AS ks FROM _mlx_lines WHERE json IS NOT NULL)) "
        "GROUP BY k ORDER BY min(pos), arg_min(i, pos)").fetchall()]
    keys = _within_limit(con, stream, ids, keys, problems)
    # keys equal but for case ("loss", "Loss"): DuckDB's struct fields ignore case, so json_transform takes the
    # first and the others are extracted by JSON pointer (which does not)
    spec: dict[str, str] = {}
    values = ""
    for n, key in enumerate(keys):
        if key and key.lower() not in {k.lower() for k in spec}:  # "" cannot be a struct field: by pointer
            spec[key] = "JSON"
            values += f", struct_extract(s, {lit(key)}) AS v{n}"
        else:
            pointer = lit("/" + key.replace("~", "~0").replace("/", "~1"))
            values += f", json_extract(json, {pointer}) AS v{n}"
    transform = f"json_transform(json, {lit(json.dumps(spec))})" if spec else "NULL"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _mlx_values AS SELECT f, r{values} FROM "
                f"(SELECT f, r, json, {transform} AS s FROM _mlx_lines WHERE json IS NOT NULL)")
    found: dict[str, str | None] = {}
    kinds: list[Any] = []
    for start in range(0, len(keys), KINDS_AT_ONCE):  # one aggregate per key: a few at a time (memory, stack)
        kinds += con.execute("SELECT " + ", ".join(
            f"list(DISTINCT json_type(v{n})) FILTER (WHERE v{n} IS NOT NULL)"
            for n in range(start, min(start + KINDS_AT_ONCE, len(keys)))) + " FROM _mlx_values").fetchone()
    for key, seen in zip(keys, kinds):
        kind: str | None = None
        for name in seen or ():
            kind = combine_types(kind, _VALUE_TYPES.get(name, JSON))
        found[key] = kind
    columns, reshaped = _merge_columns(con, stream, found)
    names = "".join(f", {q(col)}" for col, _ in columns.values())
    casts = "".join(f", {_cast(f'v{n}', columns[key][1])}" for n, key in enumerate(keys) if key in columns)
    con.execute(f"INSERT INTO metrics.{q(stream)} (log_id, _row{names}) SELECT $ids[f + 1], r{casts} "
                "FROM _mlx_values", {"ids": ids})
    rows = con.execute("SELECT $ids[f + 1], count(*) FROM _mlx_lines WHERE json IS NULL GROUP BY ALL",
                       {"ids": ids}).fetchall()
    con.execute("DROP TABLE temp._mlx_values")
    con.execute("DROP TABLE temp._mlx_lines")
    return {int(log_id): int(n) for log_id, n in rows}, reshaped


def _within_limit(con: Any, stream: str, ids: list[int], keys: list[str],
                  problems: dict[int, list[str]] | None) -> list[str]:
    """``keys`` that the stream's table can take (:data:`MAX_KEYS`, keys it has first, then in the order they
    were first logged); the runs that logged the others get a problem naming the stream and what to do."""
    known = {k for (k,) in con.execute("SELECT key FROM mlxcore_keys WHERE stream = ?", [stream]).fetchall()}
    room = MAX_KEYS - len(known)
    kept, dropped = [], []
    for key in keys:
        if key in known or room > 0:
            kept.append(key)
            room -= key not in known
        else:
            dropped.append(key)
    if dropped:
        runs = con.execute("SELECT DISTINCT $ids[f + 1] FROM (SELECT f, unnest(json_keys(json)) AS k FROM _mlx_lines "
                           "WHERE json IS NOT NULL) WHERE k IN (SELECT unnest($dropped))",
                           {"ids": ids, "dropped": dropped}).fetchall()
        for (log_id,) in runs:
            message = (f"metrics/{stream}.json: keys beyond the {MAX_KEYS} a stream can have were left out "
                       f"({len(dropped)} in this batch, e.g. {dropped[0]!r}); log them under another log_name")
            log.warning("run %s: %s", log_id, message)
            if problems is not None:
                problems.setdefault(int(log_id), []).append(message)
    return kept


def declare_columns(con: Any, stream: str, types: dict[str, str | None]) -> bool:
    """Make sure the table of ``stream`` has columns for keys of ``types`` (rows to come: :mod:`.logged`); True
    when the table was created or got new or wider columns."""
    exists = bool(table_columns(con, "metrics", stream, missing_ok=True))
    if not exists:
        con.execute(f"CREATE TABLE metrics.{q(stream)} (log_id BIGINT, _row BIGINT)")
    return _merge_columns(con, stream, types)[1] or not exists


def _cast(value: str, ctype: str) -> str:
    """A JSON value as a column of type ``ctype`` (see :func:`mlxcore.reader.scan.combine_types`)."""
    if ctype == JSON:
        return value
    if ctype == VARCHAR:
        return f"({value} ->> '$')"
    return f"TRY_CAST({value} AS {ctype})"


def _merge_columns(con: Any, stream: str, batch: dict[str, str | None]) -> tuple[dict[str, tuple[str, str]], bool]:
    """``{key: (column, type)}`` for the keys of a batch, adding or widening the stream's columns as needed (then
    the second value is True)."""
    table = f"metrics.{q(stream)}"
    existing = {name: dtype.upper() for name, dtype in table_columns(con, "metrics", stream).items()}
    mapping = dict(con.execute("SELECT key, col FROM mlxcore_keys WHERE stream = ?", [stream]).fetchall())
    taken = {name.lower() for name in existing} | {r.lower() for r in RESERVED}
    out: dict[str, tuple[str, str]] = {}
    reshaped = False
    room = MAX_KEYS - len(mapping)
    for key, batch_type in batch.items():
        col = mapping.get(key)
        if col is None and room <= 0:  # declared from logged summaries: the rows report it when loaded
            continue
        if col is None:
            room -= 1
            col = key or "_"
            while col.lower() in taken:
                col += "_"
            con.execute("INSERT INTO mlxcore_keys VALUES (?, ?, ?)", [stream, key, col])
            taken.add(col.lower())
        have = existing.get(col)
        if have is None:
            wanted = batch_type or DOUBLE  # only nulls so far: the most likely type; it widens later if wrong
            con.execute(f"ALTER TABLE {table} ADD COLUMN {q(col)} {wanted}")
            reshaped = True
        else:
            wanted = combine_types(have, batch_type) or have
            if wanted != have:
                using = f"to_json({q(col)})" if wanted == JSON else f"CAST({q(col)} AS {wanted})"
                con.execute(f"ALTER TABLE {table} ALTER {q(col)} TYPE {wanted} USING {using}")
                reshaped = True
        existing[col] = wanted
        out[key] = (col, wanted)
    return out, reshaped


# -- summaries ---------------------------------------------------------------------------------------------
def summary_select(stream: str, columns: dict[str, str], keys: dict[str, str]) -> list[tuple[str, str, str]]:
    """``(expression over the rows, expression over mlxcore_logged, column name)`` of each summary of
    ``summaries."<stream>"``; ``keys``: ``{column: logged key}`` (``mlxcore_keys``)."""
    out = []
    for col, dtype in columns.items():
        if col in RESERVED:
            continue
        c, prefix = q(col), f"{stream}.{col}"
        where = f' FILTER (WHERE "key" = {lit(keys.get(col, col))})'
        out.append((f"arg_max({c}, _row) FILTER (WHERE {c} IS NOT NULL)",
                    "any_value(" + _cast('CAST("last" AS JSON)', dtype.upper()) + ")" + where, f"{prefix}.last"))
        if is_numeric(dtype):
            out += [(f"min({c})", f'any_value(TRY_CAST(CAST("min" AS JSON) AS {dtype})){where}', f"{prefix}.min"),
                    (f"max({c})", f'any_value(TRY_CAST(CAST("max" AS JSON) AS {dtype})){where}', f"{prefix}.max"),
                    (f"avg({c})", f'any_value("mean"){where}', f"{prefix}.mean")]
        out.append((f"count({c})", f'coalesce(any_value("count"){where}, 0)', f"{prefix}.count"))
    return out


def update_summary(con: Any, stream: str, ids: list[int] | None) -> None:
    """Recompute the summaries of ``ids``; of every run when ``ids`` is ``None`` or the stream's columns changed.
    A run's summary comes from its logged summary when there is one (:mod:`.logged`), else from its rows."""
    keys = {col: key for key, col in con.execute("SELECT key, col FROM mlxcore_keys WHERE stream = ?",
                                                   [stream]).fetchall()}
    select = summary_select(stream, table_columns(con, "metrics", stream), keys)
    table = f"summaries.{q(stream)}"
    expected = ["log_id", *(name for _, _, name in select)]
    full = ids is None or list(table_columns(con, "summaries", stream, missing_ok=True)) != expected
    only = "" if full else " AND log_id IN (SELECT unnest($ids))"
    params = {"stream": stream} if full else {"stream": stream, "ids": ids}
    # a few aggregates at a time, joined on log_id: DuckDB plans a SELECT of thousands of filtered aggregates
    # (a stream of a thousand keys) with gigabytes of memory; every part lists each run once
    parts = []
    for n, start in enumerate(range(0, max(len(select), 1), SUMMARIES_AT_ONCE)):
        chunk = select[start:start + SUMMARIES_AT_ONCE]
        rows = "".join(f", {expr} AS {q(name)}" for expr, _, name in chunk)
        from_logged = "".join(f", {expr} AS {q(name)}" for _, expr, name in chunk)
        body = (f"SELECT log_id{rows} FROM metrics.{q(stream)} WHERE log_id NOT IN "
                f"(SELECT log_id FROM mlxcore_logged WHERE stream = $stream){only} GROUP BY log_id "
                f"UNION ALL SELECT log_id{from_logged} FROM mlxcore_logged WHERE stream = $stream{only} "
                "GROUP BY log_id")
        parts.append((f"_mlx_summary{n}", [name for _, _, name in chunk], body))
    if len(parts) == 1:
        body = parts[0][2]
    else:
        for name, _, part in parts:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {part}", params)
        columns = ", ".join(f"{name}.{q(c)}" for name, chunk, _ in parts for c in chunk)
        joins = " ".join(f"JOIN {name} USING (log_id)" for name, _, _ in parts[1:])
        body, params = f"SELECT log_id, {columns} FROM {parts[0][0]} {joins}", {}
    if full:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {body}", params)
    else:
        con.execute(f"DELETE FROM {table} WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})
        con.execute(f"INSERT INTO {table} {body}", params)
    if len(parts) > 1:
        for name, _, _ in parts:
            con.execute(f"DROP TABLE temp.{name}")


def warn_skipped(skipped_lines: dict[tuple[int, str], int]) -> None:
    """One warning for the torn or corrupt metric lines a load skipped (``{(log_id, stream): lines}``)."""
    if not skipped_lines:
        return
    total = sum(skipped_lines.values())
    items = sorted(skipped_lines.items())
    where = ", ".join(f"run {i} metrics/{s}.json ({n})" for (i, s), n in items[:5])
    more = f" and {len(items) - 5} more file(s)" if len(items) > 5 else ""
    log.warning("skipped %d unreadable metric line(s): %s%s; the other rows are loaded "
                "(see the skipped_lines table)", total, where, more)
