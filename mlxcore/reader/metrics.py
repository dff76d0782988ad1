"""Loading metric streams (``metrics/<stream>.json``, JSON lines) into the catalog with DuckDB's JSON reader.

Each stream becomes the table ``metrics."<stream>"``: ``log_id``, ``_row`` (the 0-based index of the row in
its file) and one column per logged key. Its per-run summaries live in ``summaries."<stream>"`` as columns
``<stream>.<key>.last|min|max|mean|count`` (``last|count`` only for non-numeric keys).

Why ``read_ndjson_objects`` and not ``read_json``'s typed reader: the typed reader guesses the schema from a
sample (a key first logged at epoch 500 would be dropped; sampling every file costs 32 MiB each), and a line
that is valid JSON but not an object fails the whole read. Here each batch of files is read once into a temporary
table of raw lines (a torn or corrupt line reads as NULL, so it is *counted* and the lines after it are kept),
DuckDB computes one exact structure over every line of the batch, and ``json_transform`` casts each line to it.
Types only widen (BIGINT -> DOUBLE -> VARCHAR -> JSON), so reloading a run never breaks the others.

A key whose column name would collide with ``log_id``, ``_row`` or (case-insensitively, as SQL compares names)
another key of the stream gets a suffixed column name; the choice is stored in ``mlxcore_keys`` so it never
changes from one refresh to the next.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .scan import BIGINT, BOOLEAN, DOUBLE, JSON, VARCHAR, combine_types

log = logging.getLogger(__name__)

#: files read by one ``read_ndjson_objects`` call (bounds the memory of the raw-lines table)
BATCH_FILES = 2000
RESERVED = ("log_id", "_row")
_STRUCTURE_TYPES = {"UBIGINT": BIGINT, "BIGINT": BIGINT, "HUGEINT": BIGINT, "DOUBLE": DOUBLE, "BOOLEAN": BOOLEAN,
                    "VARCHAR": VARCHAR, "JSON": VARCHAR, "NULL": None}
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


def structure_type(value: Any) -> str | None:
    """Our column type for one entry of ``json_group_structure``; ``None`` when only nulls were seen."""
    if isinstance(value, str):
        return _STRUCTURE_TYPES.get(value.upper(), VARCHAR)
    return JSON  # an object or a list


def create_schema(con: Any) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS metrics")
    con.execute("CREATE SCHEMA IF NOT EXISTS summaries")
    con.execute("CREATE TABLE IF NOT EXISTS mlxcore_keys (stream VARCHAR, key VARCHAR, col VARCHAR)")
    con.execute("CREATE TABLE IF NOT EXISTS skipped_lines (log_id BIGINT, stream VARCHAR, lines BIGINT)")


def streams(con: Any) -> list[str]:
    """The streams that have a table in the catalog (only the catalog has a ``metrics`` schema)."""
    return sorted(r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'metrics'").fetchall())


def delete_runs(con: Any, ids: list[int]) -> None:
    """Forget the metric rows (and skipped-line counts) of ``ids`` in every stream."""
    if not ids:
        return
    for stream in streams(con):
        con.execute(f"DELETE FROM metrics.{q(stream)} WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})
    con.execute("DELETE FROM skipped_lines WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})


def ingest_stream(con: Any, stream: str, files: list[tuple[int, str]]) -> tuple[dict[int, int], bool]:
    """Load the files of ``stream`` (``(log_id, path)``; their old rows must be deleted already).

    :returns: ``{log_id: number of lines skipped}`` for the runs that had unreadable lines, and whether the
        stream's table was created or got new or wider columns.
    """
    table = f"metrics.{q(stream)}"
    exists = bool(table_columns(con, "metrics", stream, missing_ok=True))
    if not exists:
        con.execute(f"CREATE TABLE {table} (log_id BIGINT, _row BIGINT)")
    skipped: dict[int, int] = {}
    reshaped = not exists
    for start in range(0, len(files), BATCH_FILES):
        batch_skipped, batch_reshaped = _ingest_batch(con, stream, files[start : start + BATCH_FILES])
        skipped.update(batch_skipped)
        reshaped |= batch_reshaped
    if skipped:
        rows = sorted(skipped.items())
        con.executemany("INSERT INTO skipped_lines VALUES (?, ?, ?)", [(i, stream, n) for i, n in rows])
    return skipped, reshaped


def _ingest_batch(con: Any, stream: str, files: list[tuple[int, str]]) -> tuple[dict[int, int], bool]:
    """Load one batch; a file DuckDB cannot open (deleted since the listing, unreadable) is isolated by bisection
    and skipped with a warning, and the other files load."""
    import duckdb

    try:
        _read_lines(con, [path for _, path in files])
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        if len(files) == 1:
            log.warning("run %s: metrics/%s.json cannot be read (%s); skipped", files[0][0], stream,
                        str(exc).splitlines()[0])
            return {}, False
        middle = len(files) // 2
        first, first_reshaped = _ingest_batch(con, stream, files[:middle])
        second, second_reshaped = _ingest_batch(con, stream, files[middle:])
        return {**first, **second}, first_reshaped or second_reshaped
    result = _insert_lines(con, stream, [log_id for log_id, _ in files])
    con.execute("DROP TABLE temp._mlx_lines")
    return result


def _read_lines(con: Any, paths: list[str]) -> None:
    """``temp._mlx_lines``: file index, row index in the file, and the line as JSON (NULL when unreadable)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _mlx_lines AS SELECT f, o - min(o) OVER (PARTITION BY f) AS r, json "
        "FROM (SELECT file_index::BIGINT AS f, ordinality::BIGINT AS o, "
        "CASE WHEN json_type(json) = 'OBJECT' THEN json END AS json "
        "FROM read_ndjson_objects($paths, ignore_errors = true) WITH ORDINALITY)", {"paths": paths})


def _insert_lines(con: Any, stream: str, ids: list[int]) -> tuple[dict[int, int], bool]:
    structure = con.execute("SELECT json_group_structure(json) FROM _mlx_lines WHERE json IS NOT NULL").fetchone()[0]
    fields = json.loads(structure) if structure else {}
    columns, reshaped = _merge_columns(con, stream, {key: structure_type(value) for key, value in fields.items()})
    # one json_transform for every key, except keys equal but for case ("loss", "Loss"): DuckDB's struct fields
    # ignore case, so those are extracted one by one (by JSON pointer, which does not)
    spec: dict[str, str] = {}
    values = names = ""
    for key, (col, ctype) in columns.items():
        names += f", {q(col)}"
        if key.lower() not in {k.lower() for k in spec}:
            spec[key] = ctype
            values += f", struct_extract(s, {lit(key)})"
        else:
            values += f", {_extract(key, ctype)}"
    transform = f"json_transform(json, {lit(json.dumps(spec))})" if spec else "NULL"
    con.execute(f"INSERT INTO metrics.{q(stream)} (log_id, _row{names}) SELECT $ids[f + 1], r{values} FROM "
                f"(SELECT f, r, json, {transform} AS s FROM _mlx_lines WHERE json IS NOT NULL)", {"ids": ids})
    rows = con.execute("SELECT $ids[f + 1], count(*) FROM _mlx_lines WHERE json IS NULL GROUP BY ALL",
                       {"ids": ids}).fetchall()
    return {int(log_id): int(n) for log_id, n in rows}, reshaped


def _extract(key: str, ctype: str) -> str:
    pointer = lit("/" + key.replace("~", "~0").replace("/", "~1"))
    if ctype == JSON:
        return f"json_extract(json, {pointer})"
    if ctype == VARCHAR:
        return f"json_extract_string(json, {pointer})"
    return f"TRY_CAST(json_extract(json, {pointer}) AS {ctype})"


def _merge_columns(con: Any, stream: str, batch: dict[str, str | None]) -> tuple[dict[str, tuple[str, str]], bool]:
    """``{key: (column, type)}`` for the keys of a batch, adding or widening the stream's columns as needed (then
    the second value is True)."""
    table = f"metrics.{q(stream)}"
    existing = {name: dtype.upper() for name, dtype in table_columns(con, "metrics", stream).items()}
    mapping = dict(con.execute("SELECT key, col FROM mlxcore_keys WHERE stream = ?", [stream]).fetchall())
    taken = {name.lower() for name in existing} | {r.lower() for r in RESERVED}
    out: dict[str, tuple[str, str]] = {}
    reshaped = False
    for key, batch_type in batch.items():
        col = mapping.get(key)
        if col is None:
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
def summary_select(stream: str, columns: dict[str, str]) -> list[tuple[str, str]]:
    """``(expression, column name)`` of each summary of ``summaries."<stream>"``."""
    out = []
    for col, dtype in columns.items():
        if col in RESERVED:
            continue
        c, prefix = q(col), f"{stream}.{col}"
        out.append((f"arg_max({c}, _row) FILTER (WHERE {c} IS NOT NULL)", f"{prefix}.last"))
        if is_numeric(dtype):
            out += [(f"min({c})", f"{prefix}.min"), (f"max({c})", f"{prefix}.max"), (f"avg({c})", f"{prefix}.mean")]
        out.append((f"count({c})", f"{prefix}.count"))
    return out


def update_summary(con: Any, stream: str, ids: list[int] | None) -> None:
    """Recompute the summaries of ``ids``; of every run when ``ids`` is ``None`` or the stream's columns changed."""
    select = summary_select(stream, table_columns(con, "metrics", stream))
    exprs = "".join(f", {expr} AS {q(name)}" for expr, name in select)
    body = f"SELECT log_id{exprs} FROM metrics.{q(stream)}"
    table = f"summaries.{q(stream)}"
    expected = ["log_id", *(name for _, name in select)]
    if ids is None or list(table_columns(con, "summaries", stream, missing_ok=True)) != expected:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {body} GROUP BY log_id")
        return
    con.execute(f"DELETE FROM {table} WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})
    con.execute(f"INSERT INTO {table} {body} WHERE log_id IN (SELECT unnest($ids)) GROUP BY log_id", {"ids": ids})
