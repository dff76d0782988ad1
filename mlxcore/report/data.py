"""What the report shows, read through the public reader: the runs (every ``runs`` column, typed for the page's
filter evaluator), the failures with the end of their error, totals by status and the command that reruns the
failures.

Each column travels with its kind (``bool``, ``int``, ``float``, ``text``, ``json``: how
:mod:`mlxcore.reader.filters` compares it) so that the page's filter box selects exactly the runs
``Reader.filter`` does. Values JSON cannot carry exactly travel as text: integers beyond 2**53 (read as
``BigInt``), NaN and the infinities. A JSON column (several kinds of value under one key) travels as the triple
the reader's SQL compares: the value's JSON text, its JSON type and, for a string, the string. A column holding
one value in every run is sent once.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import QueryError
from ..reader.filters import BOOL, FLOAT, INT, JSON, TEXT, kind_of

#: statuses whose runs the report lists under "failures" (not PRUNED: a search trial its sweeper stopped on
#: purpose ended as deliberately as a COMPLETE run, has no error to show and is not rerun)
FAILURES = ("FAILED", "DEAD", "TIMEOUT", "CANCELLED")
#: statuses ``+mlx.rerun_failed=true`` runs again (mlxcore.identity.RERUNNABLE; never COMPLETE or PRUNED)
RERUNNABLE = ("FAILED", "INTERRUPTED", "CANCELLED", "PREEMPTED", "DEAD", "TIMEOUT")
TAIL_LINES = 12
TAIL_BYTES = 8192
MAX_FAILURES = 200  # listed in full; the count says how many more there are
MAX_CONFIG_COLUMNS = 16
MAX_OTHER_METRICS = 6
_SAFE = 2**53


@dataclass
class RunsData:
    """The selected runs: the columns for the filter evaluator and what the table and sections show."""

    count: int
    columns: dict[str, dict[str, Any]]  #: name -> {"k": kind, "c": one value} or {"k": kind, "v": [values]}
    shown: list[str]  #: the table's columns, in order
    failures: list[dict[str, Any]] = field(default_factory=list)
    failures_total: int = 0
    totals: list[dict[str, Any]] = field(default_factory=list)
    reruns: list[str] = field(default_factory=list)


def read_runs(reader: Any, filter_string: str, metric: str) -> RunsData:
    """The runs ``filter_string`` selects, with everything the report shows about them.

    :raises QueryError: the filter is bad, or it selects no run.
    """
    records = reader.filter(filter_string, result_format="records")
    if not records:
        where = f" matching {filter_string!r}" if filter_string.strip() else ""
        raise QueryError(f"no run{where} in {reader.path}: nothing to report")
    types = dict(reader.schema().columns) if hasattr(reader, "schema") else {}
    names = list(records[0])
    kinds = {name: kind_of(types.get(name)) or _guess_kind([r[name] for r in records]) for name in names}
    raw = _json_columns(reader, [n for n in names if kinds[n] == JSON], [r["log_id"] for r in records])
    columns: dict[str, dict[str, Any]] = {}
    for name in names:
        kind = kinds[name]
        if kind == JSON:
            values = [raw.get((r["log_id"], name)) for r in records]
        else:
            values = [_encode(kind, r[name]) for r in records]
        first = values[0]
        columns[name] = ({"k": kind, "c": first} if all(v == first for v in values)
                         else {"k": kind, "v": values})
    data = RunsData(len(records), columns, _shown(names, columns, metric, reader))
    data.failures, data.failures_total = _failures(records, Path(reader.path))
    data.totals = _totals(records)
    data.reruns = rerun_commands(records)
    return data


def _guess_kind(values: list[Any]) -> str:
    found = {type(v) for v in values if v is not None}
    if found == {bool}:
        return BOOL
    if found == {int}:
        return INT
    if found and found <= {int, float}:
        return FLOAT
    return TEXT


def _encode(kind: str, value: Any) -> Any:
    """A value as JSON carries it exactly; the page decodes the text forms by the column's kind."""
    if value is None:
        return None
    if kind == INT:
        number = int(value)
        return number if -_SAFE <= number <= _SAFE else str(number)
    if kind == FLOAT:
        double = float(value)
        return double if math.isfinite(double) else repr(double)  # 'nan', 'inf', '-inf'
    if kind == BOOL:
        return bool(value)
    return value if isinstance(value, str) else str(value)


def _json_columns(reader: Any, names: list[str], ids: list[int]) -> dict[tuple[int, str], Any]:
    """``{(log_id, column): [JSON text, JSON type, string value] or None}`` for the JSON columns, from SQL."""
    if not names:
        return {}
    found: dict[tuple[int, str], Any] = {}
    selected = set(ids)
    for start in range(0, len(names), 40):
        chunk = names[start:start + 40]
        parts = []
        for i, name in enumerate(chunk):
            c = '"' + name.replace('"', '""') + '"'
            parts.append(f"CAST({c} AS VARCHAR) AS t{i}, json_type({c}) AS j{i}, {c} ->> '$' AS s{i}")
        for row in reader.sql(f"SELECT log_id, {', '.join(parts)} FROM runs", result_format="records"):
            if row["log_id"] not in selected:
                continue
            for i, name in enumerate(chunk):
                if row[f"t{i}"] is not None:
                    found[(row["log_id"], name)] = [row[f"t{i}"], row[f"j{i}"], row[f"s{i}"]]
    return found


def _shown(names: list[str], columns: dict[str, dict[str, Any]], metric: str, reader: Any) -> list[str]:
    """log_id, status, the config keys that vary, the duration, the metric's summaries and a few other metrics."""
    config = [n for n in names if n.startswith("config.") and "v" in columns[n]][:MAX_CONFIG_COLUMNS]
    lowered = {n.lower(): n for n in names}
    chosen = [lowered[f"{metric}.{s}".lower()] for s in ("last", "min", "max", "count")
              if f"{metric}.{s}".lower() in lowered]
    others = [n for n in names if n.endswith(".last") and n not in chosen and columns[n]["k"] in (INT, FLOAT)
              and not n.startswith(("config.", "info."))][:MAX_OTHER_METRICS]
    extra = [n for n in ("info.duration_s",) if n in columns]
    return ["log_id", "status", *config, *extra, *chosen, *others]


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file (at most its last 8 KiB); '' when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _failures(records: list[dict[str, Any]], root: Path) -> tuple[list[dict[str, Any]], int]:
    """The failed runs (the first :data:`MAX_FAILURES`), each with its error, the end of its traceback and of its
    ``log.stderr`` (looked for in the run's directory under ``root``, then where the run recorded it was: logs
    copied elsewhere keep their layout), and how many there are."""
    failed = [r for r in records if r.get("status") in FAILURES]
    listed = []
    for r in failed[:MAX_FAILURES]:
        error = " ".join(str(r.get(k) or "") for k in ("info.error.type", "info.error.message")).strip()
        if r.get("info.error.type") and r.get("info.error.message"):
            error = f"{r['info.error.type']}: {r['info.error.message']}"
        trace = "\n".join(str(r.get("info.error.traceback") or "").rstrip().splitlines()[-TAIL_LINES:])
        places = [root / str(r["log_id"]), *([Path(str(r["info.log_dir"]))] if r.get("info.log_dir") else [])]
        stderr = next((text for text in (tail(p / "log.stderr") for p in places) if text), "")
        listed.append({"log_id": r["log_id"], "status": r["status"], "error": error[:2000],
                       "traceback": trace[-4000:], "stderr": stderr[-4000:],
                       "host": r.get("info.hostname"), "dir": r.get("info.log_dir")})
    return listed, len(failed)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _totals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per status: the runs, and the sums of their durations, CPU-hours and GPU-hours with how many runs know."""
    totals: dict[str, dict[str, Any]] = {}
    for r in records:
        entry = totals.setdefault(str(r.get("status")), {"status": str(r.get("status")), "runs": 0})
        entry["runs"] += 1
        for key in ("duration_s", "cpu_hours", "gpu_hours"):
            value = _number(r.get(f"info.{key}"))
            entry.setdefault(key, 0.0)
            entry.setdefault(f"{key}_known", 0)
            if value is not None:
                entry[key] += value
                entry[f"{key}_known"] += 1
    return sorted(totals.values(), key=lambda e: (-e["runs"], e["status"]))


def rerun_command(record: dict[str, Any]) -> str | None:
    """The sweep's own command with ``+mlx.rerun_failed=true``, run where it was run (``None``: unknown)."""
    command = str(record.get("info.sweep_command") or "").strip()
    if not command:
        argv = record.get("info.submit_argv")
        if isinstance(argv, str) and argv.startswith("["):
            import json

            argv = json.loads(argv)
        if not isinstance(argv, list) or not argv:
            return None
        command = shlex.join(str(a) for a in argv)
    words = [w for w in command.split() if not w.lstrip("+").startswith("mlx.rerun_failed=")]
    if words and words[0].endswith(".py"):
        words.insert(0, "python")
    text = " ".join([*words, "+mlx.rerun_failed=true"])
    where = record.get("info.working_directory")
    return f"cd {shlex.quote(str(where))} && {text}" if where else text


def rerun_commands(records: list[dict[str, Any]]) -> list[str]:
    """One command per sweep that has runs to rerun, in the order of their first such run."""
    found: dict[str, None] = {}
    for r in records:
        if r.get("status") in RERUNNABLE:
            command = rerun_command(r)
            if command:
                found.setdefault(command)
    return list(found)
