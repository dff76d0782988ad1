"""The catalog's tables other than the metric streams (:mod:`.metrics`): what a refresh writes, in one place.

* ``mlxcore_runs``: one row per run, ``log_id``, ``status`` and the flattened ``info.*`` / ``config.*`` keys;
* ``runs``: the table queries read — ``mlxcore_runs`` joined with every stream's summaries, kept up to date
  row by row (a view making that join at every query cost 10 ms of a 40 ms filter at 10,000 runs);
* ``mlxcore_state``: what the next refresh compares (:mod:`.scan`) and the facts the dead-run check needs;
* ``mlxcore_meta``: the schema version, and the *shape* (columns of ``runs`` and of each stream, the names a
  query may read) so that opening a reader asks DuckDB nothing more than one read of this table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .. import store
from . import logged, scan
from .metrics import create_schema, q, streams, table_columns

SCHEMA_VERSION = "7"
#: tables every query may read, besides one view per stream
PUBLIC_TABLES = ("runs", "skipped_lines", "problems")
STATE = ("log_id", "stamp", "signature", "final", "raw_status", "status", "hostname", "pid", "heartbeat_interval")
_STATE_TYPES = ("BIGINT", "BIGINT", "VARCHAR", "BOOLEAN", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "DOUBLE")
_FIXED = ("log_id", "status", "info.status")


def create_tables(con: Any) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS mlxcore_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT OR REPLACE INTO mlxcore_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
    columns = ", ".join(f"{name} {dtype}" for name, dtype in zip(STATE, _STATE_TYPES))
    con.execute(f"CREATE TABLE IF NOT EXISTS mlxcore_state ({columns})")
    con.execute('CREATE TABLE IF NOT EXISTS mlxcore_runs (log_id BIGINT, status VARCHAR, "info.status" VARCHAR)')
    con.execute("CREATE TABLE IF NOT EXISTS problems (log_id BIGINT, problem VARCHAR)")
    # which runs wrote a float under which key: a DOUBLE column made of integers and floats becomes BIGINT again
    # once no run holding a float is left (the column's values alone cannot say whether 2.0 was written 2)
    con.execute("CREATE TABLE IF NOT EXISTS mlxcore_floats (log_id BIGINT, col VARCHAR)")
    create_schema(con)


def write_problems(con: Any, records: list[scan.RunRecord], removed: list[int],
                   more: dict[int, list[str]] | None = None) -> None:
    """What could not be read of the runs just read (a file that does not parse, a run left out; ``more``: what
    loading their metric files found): the table ``problems``, one row per problem; those of the runs read
    again or removed are replaced."""
    gone = [*removed, *(record.log_id for record in records)]
    if gone:
        con.execute("DELETE FROM problems WHERE log_id IN (SELECT unnest($ids))", {"ids": gone})
    found = [(record.log_id, problem) for record in records for problem in record.problems]
    found += [(log_id, problem) for log_id, problems in (more or {}).items() for problem in problems]
    if found:
        con.executemany("INSERT INTO problems VALUES (?, ?)", found)


def leave_out(con: Any, problems: dict[int, str], stamps: dict[int, int | None]) -> None:
    """Runs left out of the catalog (:mod:`.isolate`): no row in ``runs``, one problem each, and a state that
    settles them until their metadata changes (``stamps``; ``None``: tried again at the next refresh)."""
    ids = sorted(problems)
    for table in ("mlxcore_runs", "mlxcore_state", "problems"):
        con.execute(f"DELETE FROM {table} WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})
    con.executemany("INSERT INTO mlxcore_state (log_id, stamp, final) VALUES (?, ?, TRUE)",
                    [(i, stamps.get(i)) for i in ids])
    con.executemany("INSERT INTO problems VALUES (?, ?)", [(i, problems[i]) for i in ids])


def add_problems(con: Any, problems: dict[int, list[str]]) -> None:
    """Problems found while loading rows left for later (their runs' other problems stay)."""
    found = [(log_id, problem) for log_id, items in problems.items() for problem in items]
    if found:
        con.executemany("INSERT INTO problems VALUES (?, ?)", found)


def _insert_columns(con: Any, table: str, data: dict[str, tuple[str, list[Any]]]) -> None:
    """``INSERT ... BY NAME`` from Python lists, one list per column (``{name: (type, values)}``)."""
    params = {f"p{n}": values for n, (_, values) in enumerate(data.values())}
    select = ", ".join(
        f"unnest($p{n}::VARCHAR[])::JSON AS {q(name)}" if ctype == scan.JSON
        else f"unnest($p{n}::{ctype}[]) AS {q(name)}" for n, (name, (ctype, _)) in enumerate(data.items()))
    con.execute(f"INSERT INTO {table} BY NAME SELECT {select}", params)


@dataclass
class Rows:
    """The rows a refresh writes for the changed runs, prepared by :func:`prepare` in the reader thread."""

    ids: list[int] = field(default_factory=list)
    columns: dict[str, list[Any]] = field(default_factory=dict)  # mlxcore_runs: name -> one value per run
    types: dict[str, str | None] = field(default_factory=dict)  # the narrowest type of each column's values
    wide: set[str] = field(default_factory=set)  # columns holding an integer a double would round
    state: dict[str, list[Any]] = field(default_factory=dict)  # mlxcore_state: name -> one value per run


def prepare(records: list[scan.RunRecord], stamps: dict[int, tuple[int | None, str | None]]) -> Rows:
    """The rows of ``mlxcore_runs`` and ``mlxcore_state`` for ``records`` (settled,
    :meth:`mlxcore.reader.scan.RunRecord.settle`; ``stamps``: :func:`mlxcore.reader.scan.compose` of each), column
    by column: the types and conversions of 10,000 runs x 50 keys are then a few passes in C."""
    rows = Rows(ids=[record.log_id for record in records], state={name: [] for name in STATE})
    for n, record in enumerate(records):
        for key, value in record.row.items():
            values = rows.columns.get(key)
            if values is None:
                values = rows.columns[key] = [None] * len(records)
            values[n] = value
        final = record.raw_status in store.FINAL_STATUSES
        stamp, signature = stamps[record.log_id]
        host, pid, interval = (record.info.get(k) for k in ("hostname", "pid", "heartbeat_interval"))
        state = (record.log_id, stamp if final else None, None if final else signature, final, record.raw_status,
                 record.status, host if isinstance(host, str) else None,
                 pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                 float(interval) if isinstance(interval, (int, float)) and not isinstance(interval, bool) else None)
        for name, value in zip(STATE, state):
            rows.state[name].append(value)
    rows.types = {name: scan.column_type(values) for name, values in rows.columns.items()}
    rows.wide = {name for name, values in rows.columns.items() if rows.types[name] in (scan.BIGINT, scan.DOUBLE)
                 and scan.has_wide_int(values)}
    return rows


def upsert_runs(con: Any, rows: Rows, removed: list[int]) -> bool:
    """Replace the rows of ``rows.ids`` in ``mlxcore_runs`` and delete those of ``removed``; True when columns were
    added, widened or dropped."""
    existing = {name: dtype.upper() for name, dtype in table_columns(con, "main", "mlxcore_runs").items()}
    _fold_case(rows, existing)
    before = dict(existing)
    added = {name: new or scan.VARCHAR for name, new in rows.types.items() if name not in existing}
    if len(added) > 1 and not con.execute("SELECT count(*) FROM mlxcore_runs").fetchall()[0][0]:
        # a new catalog: one CREATE instead of one ALTER per column (0.4 ms each)
        existing.update(added)
        columns = ", ".join(f"{q(name)} {dtype}" for name, dtype in existing.items())
        con.execute(f"CREATE OR REPLACE TABLE mlxcore_runs ({columns})")
    for name, new in rows.types.items():
        have = existing.get(name)
        if have is None:
            con.execute(f"ALTER TABLE mlxcore_runs ADD COLUMN {q(name)} {new or scan.VARCHAR}")
            existing[name] = new or scan.VARCHAR
        else:
            wanted = scan.combine_types(have, new) or have
            if wanted == scan.DOUBLE and (name in rows.wide or (have == scan.BIGINT and _has_wide_int(con, name))):
                wanted = scan.JSON  # a double would round these integers (scan.column_type)
            if wanted != have:
                con.execute(f"ALTER TABLE mlxcore_runs ALTER {q(name)} TYPE {wanted} USING {_widened(name, wanted)}")
                existing[name] = wanted
    gone = sorted(set(rows.ids) | set(removed))
    deleted = 0
    if gone:
        deleted = con.execute("DELETE FROM mlxcore_runs WHERE log_id IN (SELECT unnest($ids))",
                              {"ids": gone}).fetchall()[0][0]
    if gone:
        con.execute("DELETE FROM mlxcore_floats WHERE log_id IN (SELECT unnest($ids))", {"ids": gone})
    if rows.ids:
        _insert_columns(con, "mlxcore_runs", {
            name: (existing[name], scan.column_values(values, existing[name]))
            for name, values in rows.columns.items()})
        floats = [(log_id, name) for name, values in rows.columns.items()
                  for log_id, value in zip(rows.ids, values) if type(value) is float]
        if floats:
            con.execute("INSERT INTO mlxcore_floats SELECT unnest($ids), unnest($cols)",
                        {"ids": [i for i, _ in floats], "cols": [c for _, c in floats]})
    if deleted:  # the runs that made a column wider may be gone, or hold other values now
        _narrow_json_columns(con, existing)
        _narrow_double_columns(con, existing)
    if removed:
        _drop_empty_columns(con, existing)
    return existing != before


def _has_wide_int(con: Any, name: str) -> bool:
    return bool(con.execute(f"SELECT coalesce(bool_or(abs({q(name)}) > {scan.EXACT_INT}), false) "
                            "FROM mlxcore_runs").fetchall()[0][0])


def _fold_case(rows: Rows, existing: dict[str, str]) -> None:
    """Give each column of ``rows`` the spelling its column already has (SQL names ignore case: ``config.N`` of
    one run and ``config.n`` of another are one column, as a query sees them). A run never holds both: it is
    left out of the catalog instead (:meth:`mlxcore.reader.scan.RunRecord.settle`)."""
    spelling = {name.lower(): name for name in existing}
    for name in list(rows.columns):
        canonical = spelling.setdefault(name.lower(), name)
        if canonical == name:
            continue
        values = rows.columns.pop(name)
        kept = rows.columns.setdefault(canonical, [None] * len(values))
        for n, value in enumerate(values):
            if value is not None:
                kept[n] = value
        rows.types[canonical] = scan.combine_types(rows.types.get(canonical), rows.types.pop(name))


def _widened(name: str, wanted: str) -> str:
    """The ``USING`` expression that turns a column into ``wanted``: a JSON column keeps each value's type (a
    text column holds text only, so its values become JSON strings), as a catalog built afresh would hold them."""
    col = q(name)
    return f"to_json({col})" if wanted == scan.JSON else f"CAST({col} AS {wanted})"


_INT_TEXT = "'-?[0-9]+'"


def _narrow_json_columns(con: Any, columns: dict[str, str]) -> None:
    """Give each JSON column the type a catalog built afresh from the runs it holds now would give it: a run
    that widened a column (``lr=abc`` among numbers) and is then fixed or removed leaves it as it was before.
    JSON keeps what decides it: each value's JSON type, and whether a number was written as an integer."""
    names = [n for n, t in columns.items() if t == scan.JSON and n not in _FIXED]
    if not names:
        return
    probes = []
    for name in names:
        c, text = q(name), f"CAST({q(name)} AS VARCHAR)"
        is_int = f"regexp_full_match({text}, {_INT_TEXT})"
        probes += [f"bool_or(json_type({c}) IN ('ARRAY', 'OBJECT'))", f"bool_or(json_type({c}) = 'VARCHAR')",
                   f"bool_or(json_type({c}) = 'BOOLEAN')", f"bool_or({is_int})",
                   f"bool_or(json_type({c}) IN ('DOUBLE', 'UBIGINT', 'BIGINT') AND NOT {is_int})",
                   f"bool_or({is_int} AND TRY_CAST({text} AS BIGINT) IS NULL)",
                   f"bool_or({is_int} AND abs(TRY_CAST({text} AS HUGEINT)) > {scan.EXACT_INT})"]
    found = con.execute(f"SELECT {', '.join(probes)} FROM mlxcore_runs").fetchall()[0]
    for n, name in enumerate(names):
        nested, texts, flag, ints, floats, huge, wide = (bool(v) for v in found[7 * n: 7 * n + 7])
        kinds = {kind for kind, present in ((scan.VARCHAR, texts), (scan.BOOLEAN, flag), (scan.BIGINT, ints),
                                            (scan.DOUBLE, floats)) if present}
        wanted = scan.JSON
        if not nested and not huge and len(kinds) == 1:
            wanted = kinds.pop()
        elif not nested and not huge and not wide and kinds == {scan.BIGINT, scan.DOUBLE}:
            wanted = scan.DOUBLE
        if wanted == scan.JSON:
            continue
        # TRY_CAST: DuckDB also converts the rows deleted earlier in this transaction (the run that widened it)
        using = f"({q(name)} ->> '$')" if wanted == scan.VARCHAR else f"TRY_CAST({q(name)} AS {wanted})"
        con.execute(f"ALTER TABLE mlxcore_runs ALTER {q(name)} TYPE {wanted} USING {using}")
        columns[name] = wanted


def _narrow_double_columns(con: Any, columns: dict[str, str]) -> None:
    """A DOUBLE column that no remaining run wrote a float in holds integers only: BIGINT, as a fresh build."""
    doubles = [n for n, t in columns.items() if t == scan.DOUBLE and n not in _FIXED]
    if not doubles:
        return
    with_floats = {c for (c,) in con.execute("SELECT DISTINCT col FROM mlxcore_floats WHERE col IN "
                                             "(SELECT unnest($cols))", {"cols": doubles}).fetchall()}
    for name in doubles:
        if name in with_floats:
            continue
        # TRY_CAST: the rows deleted earlier in this transaction are converted too (see _narrow_json_columns)
        con.execute(f"ALTER TABLE mlxcore_runs ALTER {q(name)} TYPE BIGINT USING TRY_CAST({q(name)} AS BIGINT)")
        columns[name] = scan.BIGINT


def _drop_empty_columns(con: Any, columns: dict[str, str]) -> None:
    """Columns only deleted runs had: gone with them."""
    names = [n for n in columns if n not in _FIXED]
    if not names:
        return
    counts = con.execute(f"SELECT {', '.join(f'count({q(n)})' for n in names)} FROM mlxcore_runs").fetchall()[0]
    for name, count in zip(names, counts):
        if count == 0:
            con.execute(f"ALTER TABLE mlxcore_runs DROP COLUMN {q(name)}")
            del columns[name]


def set_status(con: Any, statuses: dict[int, str]) -> None:
    """Record the status to show of runs found dead (their files still say RUNNING)."""
    for log_id, status in statuses.items():
        con.execute('UPDATE mlxcore_runs SET status = ?, "info.status" = ? WHERE log_id = ?', [status, status, log_id])
        con.execute("UPDATE mlxcore_state SET status = ? WHERE log_id = ?", [status, log_id])


def write_state(con: Any, rows: Rows, removed: list[int]) -> None:
    """The rows of ``mlxcore_state`` for ``rows.ids`` (a finished run keeps its stamp, another run its signature);
    the rows of ``removed`` are deleted."""
    gone = [*removed, *rows.ids]
    if gone:
        con.execute("DELETE FROM mlxcore_state WHERE log_id IN (SELECT unnest($ids))", {"ids": gone})
    if rows.ids:
        _insert_columns(con, "mlxcore_state",
                        {name: (dtype, rows.state[name]) for name, dtype in zip(STATE, _STATE_TYPES)})


# -- what queries read -----------------------------------------------------------------------------------------
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


def _runs_select(con: Any) -> str:
    """``SELECT ... FROM mlxcore_runs r LEFT JOIN summaries...``: the rows of ``runs``, columns in the order a
    reader shows them (log_id, status, config, other keys, metric summaries, info)."""
    run_columns = list(table_columns(con, "main", "mlxcore_runs"))
    config = sorted(c for c in run_columns if c.startswith("config."))
    info = sorted(c for c in run_columns if c.startswith("info."))
    other = [c for c in run_columns if c not in config and c not in info and c not in ("log_id", "status")]
    select = ["r.log_id", "r.status", *(f"r.{q(c)}" for c in config + other)]
    joins = []
    for n, stream in enumerate(streams(con)):
        summary = [c for c in table_columns(con, "summaries", stream) if c != "log_id"]
        select += [f"s{n}.{q(c)}" for c in summary if c not in run_columns]
        joins.append(f"LEFT JOIN summaries.{q(stream)} s{n} ON s{n}.log_id = r.log_id")
    select += [f"r.{q(c)}" for c in info]
    return f"SELECT {', '.join(select)} FROM mlxcore_runs r {' '.join(joins)}"


def update_runs_table(con: Any, ids: list[int] | None) -> None:
    """Bring ``runs`` up to date for the runs ``ids`` (changed, removed or found dead), or make it anew (``None``:
    after columns changed, or when most runs changed).

    Its rows stay in ``log_id`` order, so that ``SELECT * FROM runs`` lists the runs in order: rows of new runs
    are appended (their ids are the highest), and a change to an older run (resumed, found dead) makes the table
    anew, which costs a few milliseconds per thousand runs."""
    select = _runs_select(con)
    if ids:
        con.execute("DELETE FROM runs WHERE log_id IN (SELECT unnest($ids))", {"ids": ids})
        before = con.execute("SELECT max(log_id) FROM runs").fetchall()[0][0]
        if before is None or before < min(ids):
            con.execute(f"INSERT INTO runs {select} WHERE r.log_id IN (SELECT unnest($ids)) ORDER BY r.log_id",
                        {"ids": ids})
            return
        ids = None
    if ids is None:
        con.execute(f"CREATE OR REPLACE TABLE runs AS {select} ORDER BY r.log_id")


def create_views(con: Any) -> None:
    """One view per stream in ``main`` (``train`` for ``metrics.train``); views of streams gone are dropped."""
    names = streams(con)
    stale = {r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal "
        "AND database_name = current_database()").fetchall()}
    for stream in names:
        if _bare_view_allowed(stream):
            con.execute(f"CREATE OR REPLACE VIEW main.{q(stream)} AS SELECT * FROM metrics.{q(stream)}")
            stale.discard(stream)
    for view in stale:
        con.execute(f"DROP VIEW IF EXISTS main.{q(view)}")


def save_shape(con: Any) -> dict[str, Any]:
    """Store (and return) the columns of ``runs`` and of each stream, the names a query may read and the number of
    files per stream whose rows are not loaded yet (:mod:`.logged`)."""
    shape = {"columns": table_columns(con, "main", "runs"),
             "streams": {s: {c: t for c, t in table_columns(con, "metrics", s).items() if c != "log_id"}
                         for s in streams(con)},
             "tables": public_tables(con), "pending": logged.pending(con)}
    con.execute("INSERT OR REPLACE INTO mlxcore_meta VALUES ('shape', ?)", [json.dumps(shape)])
    return shape
