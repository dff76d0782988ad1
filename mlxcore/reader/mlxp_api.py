"""MLXP's reading API on the DuckDB reader: ``reader.search(query_string, result_format)``.

MLXP 1.0's ``mlxp.Reader(logs).filter(query_string=q, result_format="pandas"|"datadict")`` gives a pandas frame
whose metric columns (``"train.loss"``) hold each run's list of logged values, or (the default) a lazy list of
runs, :class:`DataFrame`, whose metric values load when first read, with MLXP's ``toPandas``, ``diff``,
``groupby``, ``aggregate``, ``transform``, ``map``, ``apply``, ``filter``, ``sort``, ``merge`` and, on groups,
``select`` and ``ungroup``; maps are MLXP's ``(function, input keys[, output names])``, outputs named
``f<function>.<key>``. mlxcore's ``reader.filter`` has its own meaning, so MLXP's call is ``reader.search`` with
MLXP's arguments (and ``asPandas``, as ``mlxpy``, MLXP's early name, spelled it). A stream's lists are loaded for
every run of a result by one SQL query, when one is first needed. Every run has every column (``None`` where it
lacks a key, ``[]`` where it logged no value), so grouping never raises for a missing key; nothing changes a run
or a frame in place. README.md, "Coming from MLXP", lists what differs from MLXP.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..errors import UnknownChoiceError
from .metrics import q
from .mlxp_frames import LAZY, DataDict, DataFrame, GroupedDataFrame

__all__ = ["DataDict", "DataFrame", "GroupedDataFrame", "search"]

RESULT_FORMATS = ("datadict", "pandas")


def search(reader: Any, query_string: str = "", result_format: str = "datadict",
           asPandas: bool | None = None) -> Any:
    """The runs of ``reader`` matching ``query_string`` (an MLXP filter string; ``""``: all), in ``log_id``
    order: a :class:`DataFrame`, or with ``result_format="pandas"`` (or ``asPandas=True``) a pandas frame with
    every metric list loaded."""
    if asPandas is not None:
        result_format = "pandas" if asPandas else "datadict"
    if result_format not in RESULT_FORMATS:
        raise UnknownChoiceError("result_format", result_format, RESULT_FORMATS)
    records = reader.filter(query_string, result_format="records")
    schema = reader.schema()
    metrics = {f"{s}.{k}": (s, k) for s, keys in reader.streams.items() for k in keys}
    summaries = {f"{m}.{stat}" for m in metrics for stat in ("last", "min", "max", "mean", "count")}
    json_columns = {c for c, kind in schema.columns.items() if kind == "JSON"}
    loader = _Loader(reader, [r["log_id"] for r in records], metrics)
    rows = []
    for record in records:
        values = {k: _decode(v, k in json_columns) for k, v in record.items() if k not in summaries}
        rows.append(DataDict({**values, **dict.fromkeys(metrics, LAZY)}, loader, record["log_id"]))
    frame = DataFrame(rows)
    return frame.toPandas(lazy=False) if result_format == "pandas" else frame


def _decode(value: Any, is_json: bool) -> Any:
    return json.loads(value) if is_json and isinstance(value, str) else value


class _Loader:
    """Loads the metric lists of the runs of one result, one query per stream for all of them."""

    def __init__(self, reader: Any, log_ids: list[int], metrics: dict[str, tuple[str, str]]) -> None:
        self.reader, self.log_ids, self.metrics = reader, log_ids, metrics
        self.loaded: dict[str, dict[int, dict[str, list]]] = {}  # stream -> log_id -> column -> values

    def value(self, log_id: int, column: str) -> list:
        self.load([column])
        return self.loaded[self.metrics[column][0]][log_id][column]

    def load(self, columns: Iterable[str]) -> None:
        """Load the streams of ``columns`` for every run of the result (whichever part of it asks)."""
        for stream in dict.fromkeys(self.metrics[c][0] for c in columns if c in self.metrics):
            if stream in self.loaded:
                continue
            self.reader.load_rows([stream])
            types = self.reader.schema().streams[stream]
            keys = [k for s, k in self.metrics.values() if s == stream]
            lists = ", ".join(f"list({q(k)} ORDER BY _row) FILTER (WHERE {q(k)} IS NOT NULL)" for k in keys)
            sql = (f"SELECT log_id, {lists} FROM metrics.{q(stream)} WHERE log_id IN (SELECT unnest($ids)) "
                   "GROUP BY log_id")
            _, rows = self.reader.rows(sql, {"ids": self.log_ids}, "metrics")
            cache: dict[int, dict[str, list]] = {i: {f"{stream}.{k}": [] for k in keys} for i in self.log_ids}
            for log_id, *values in rows:
                cache[log_id] = {f"{stream}.{k}": [_decode(v, types.get(k) == "JSON") for v in (got or [])]
                                 for k, got in zip(keys, values)}
            self.loaded[stream] = cache
