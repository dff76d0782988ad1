"""The SQL behind :meth:`DuckDBReader.compare` and the curves of :meth:`DuckDBReader.plot`.

Both work in two steps, so that a run counts once however many rows it logged: reduce each run's metric to one
value (``compare``) or to one value per x (``curves``: the last row logged at that x, which is what a resumed
run that re-logged an epoch means), then aggregate over the runs of each group (mean, std, sem, n, min, max).
Groups are plain ``GROUP BY`` keys, so a run lacking a key falls in the NULL group instead of raising.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import overload

from ..errors import QueryError
from .filters import unknown_column
from .metrics import RESERVED, is_numeric, q

REDUCTIONS = ("last", "min", "max", "mean", "at")
STATS = ("mean", "std", "sem", "n", "min", "max")


@dataclass
class Schema:
    """What the catalog holds: the ``runs`` columns and each stream's columns, with DuckDB types."""

    columns: dict[str, str] = field(default_factory=dict)
    streams: dict[str, dict[str, str]] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)

    def column(self, name: str, where: str) -> str:
        """The ``runs`` column called ``name`` (case-insensitive), or an error naming the closest ones."""
        if name in self.columns:
            return name
        lowered = {c.lower(): c for c in self.columns}
        if name.lower() in lowered:
            return lowered[name.lower()]
        raise unknown_column(name, self.columns, where)

    def metric(self, metric: str) -> tuple[str, str]:
        """``"train.loss"`` -> ``("train", "loss")``: a stream and one of its columns."""
        parts = metric.split(".")
        streams = {s.lower(): s for s in self.streams}
        for cut in range(1, len(parts)):
            stream = streams.get(".".join(parts[:cut]).lower())
            if stream is not None:
                key = self.key(stream, ".".join(parts[cut:]), None)
                if key is not None and key not in RESERVED:
                    return stream, key
        known = sorted(f"{s}.{k}" for s, cols in self.streams.items() for k in cols if k not in RESERVED)
        close = difflib.get_close_matches(metric, known, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise QueryError(f"unknown metric {metric!r}{hint}; give <stream>.<key>, one of: "
                         f"{', '.join(known[:20]) or 'none logged'}{' ...' if len(known) > 20 else ''}")

    @overload
    def key(self, stream: str, key: str | None, default: str = "_row") -> str: ...
    @overload
    def key(self, stream: str, key: str | None, default: None) -> str | None: ...

    def key(self, stream: str, key: str | None, default: str | None = "_row") -> str | None:
        """A column of ``stream`` (``None`` -> ``default``); an unknown key raises unless ``default`` is None."""
        if key is None:
            return default
        columns = self.streams[stream]
        lowered = {c.lower(): c for c in columns}
        if key.lower() in lowered:
            return lowered[key.lower()]
        if default is None:
            return None
        raise unknown_column(key, [c for c in columns if c != "log_id"], f"stream {stream!r}")


def compare_sql(schema: Schema, groups: list[str], metric: str, reduce: str, at: object, x: str | None,
                condition: str) -> tuple[str, dict]:
    """``(sql, params)`` of a comparison: one row per group, columns ``groups + STATS``."""
    if reduce not in REDUCTIONS:
        raise QueryError(f"unknown reduce {reduce!r}; valid: {', '.join(REDUCTIONS)} (with at=<x value>)")
    stream, key = schema.metric(metric)
    if not is_numeric(schema.streams[stream][key]):
        raise QueryError(f"metric {metric!r} is not numeric ({schema.streams[stream][key]}); compare needs numbers")
    selected = "".join(f", {q(g)}" for g in groups)
    params: dict = {}
    if reduce == "at":
        if at is None:
            raise QueryError("reduce='at' needs at=<value of x> (x defaults to the row index)")
        x_col = schema.key(stream, x)
        value = (f"(SELECT log_id, arg_max({q(key)}, _row) AS value FROM metrics.{q(stream)} "
                 f"WHERE {q(x_col)} = $at AND {q(key)} IS NOT NULL GROUP BY log_id)")
        source = (f"(SELECT log_id{selected} FROM runs WHERE {condition}) r "
                  f"LEFT JOIN {value} v ON v.log_id = r.log_id")
        value_column = "v.value"
        params["at"] = at
    else:
        column = f"{stream}.{key}.{reduce}"
        if column not in schema.columns:
            raise QueryError(f"no summary column {column!r} in the catalog")
        source = f"(SELECT * FROM runs WHERE {condition}) r"
        value_column = f"r.{q(column)}"
    group_select = "".join(f"r.{q(g)}, " for g in groups)
    order = f" ORDER BY {', '.join(f'{q(g)} NULLS LAST' for g in groups)}" if groups else ""
    sql = (f"SELECT {group_select}avg(value) AS mean, stddev_samp(value) AS std, "
           f"stddev_samp(value) / sqrt(count(value)) AS sem, count(value) AS n, min(value) AS min, "
           f"max(value) AS max FROM (SELECT {group_select}{value_column}::DOUBLE AS value FROM {source}) r "
           f"GROUP BY ALL{order}")
    return sql, params


def curves_sql(schema: Schema, groups: list[str], metric: str, x: str | None, condition: str) -> str:
    """One row per (group, x): ``groups``, ``x``, ``mean``, ``std``, ``sem``, ``n`` over the runs of the group."""
    stream, key = schema.metric(metric)
    if not is_numeric(schema.streams[stream][key]):
        raise QueryError(f"metric {metric!r} is not numeric ({schema.streams[stream][key]}); cannot plot it")
    x_col = schema.key(stream, x)
    group_cols = "".join(f", {q(g)}" for g in groups)
    order = ", ".join([*(f"{q(g)} NULLS LAST" for g in groups), "x"])
    return (f"WITH sel AS (SELECT log_id{group_cols} FROM runs WHERE {condition}), "
            f"pts AS (SELECT m.log_id, m.{q(x_col)} AS x, arg_max(m.{q(key)}, m._row)::DOUBLE AS y "
            f"FROM metrics.{q(stream)} m WHERE m.log_id IN (SELECT log_id FROM sel) AND m.{q(key)} IS NOT NULL "
            f"AND m.{q(x_col)} IS NOT NULL GROUP BY m.log_id, m.{q(x_col)}) "
            f"SELECT {', '.join([*(q(g) for g in groups), 'x'])}, avg(y) AS mean, stddev_samp(y) AS std, "
            f"stddev_samp(y) / sqrt(count(y)) AS sem, count(y) AS n FROM pts JOIN sel USING (log_id) "
            f"GROUP BY ALL ORDER BY {order}")
