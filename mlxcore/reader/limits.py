"""Limits on a query: a timeout, a memory limit, and a Ctrl-C that stops a query within a second.

A query runs in a worker thread while the calling thread waits for it in short steps, so that:

- past the timeout the query is interrupted (DuckDB's ``interrupt``) and a :class:`QueryError` says so;
- Ctrl-C (KeyboardInterrupt in the calling thread) interrupts the query at once and is raised again;
- the result is fetched in chunks and counted: one larger than the memory limit stops with a clear error
  instead of growing until the machine swaps (DuckDB's own ``memory_limit``, set from the same figure, bounds
  what it holds while it computes).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from typing import Any

from ..errors import QueryError
from ..signals import block_in_this_thread

#: seconds a query may run (``timeout=``, ``--timeout``)
DEFAULT_TIMEOUT = 300.0
#: rows fetched at a time while counting a result's size
CHUNK_ROWS = 65536
#: bytes a cell of a result is taken to need at most when the number of rows is bounded (see run)
CELL_BOUND = 1024
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def default_memory_limit() -> int:
    """Half of this machine's memory, at most 4 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return min(4 << 30, total // 2)


def parse_memory(value: Any) -> int:
    """``"2GB"``, ``"512M"``, ``"1.5GiB"`` or a number of bytes, as bytes (at least 16 MiB)."""
    if isinstance(value, bool):
        raise QueryError(f"memory limit {value!r}: give a size such as 2GB or 512MB")
    if isinstance(value, (int, float)):
        size = int(value)
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise QueryError(f"memory limit {value!r}: give a size such as 2GB or 512MB")
        size = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if size < 16 << 20:
        raise QueryError(f"memory limit {value!r} is below 16MB; give a size such as 2GB or 512MB")
    return size


def check_timeout(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise QueryError(f"timeout {value!r}: give a number of seconds, e.g. 60") from None
    if not seconds > 0 or math.isnan(seconds) or math.isinf(seconds):
        raise QueryError(f"timeout {value!r}: give a positive number of seconds, e.g. 60")
    return seconds


def human(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


class _TooLarge(Exception):
    pass


def run(con: Any, sql: str, params: dict | None, fmt: str, timeout: float, memory_limit: int, what: str,
        max_rows: int | None = None) -> Any:
    """Run ``sql`` on ``con`` within the limits; ``fmt``: ``pandas`` (a DataFrame) or ``rows``
    (``(names, rows)``). ``max_rows``: a bound on the result's rows known beforehand (a filter returns at most
    one row a run): when even :data:`CELL_BOUND` bytes a cell would stay under the memory limit, the frame is
    built in one go, without counting chunks (the count costs a second, empty fetch: a millisecond on a small
    result)."""
    import duckdb

    outcome: dict[str, Any] = {}
    done = threading.Event()  # waited on, not Thread.join: a join cut by Ctrl-C can take the thread for ended

    def work() -> None:
        block_in_this_thread()
        try:
            result = con.execute(sql, params or {})
            json_columns = [n for n, d in enumerate(result.description) if str(d[1]) == "JSON"]
            if fmt == "pandas" and max_rows is not None and \
                    max_rows * len(result.description) * CELL_BOUND <= memory_limit:
                value = result.df()
            else:
                fetch = _fetch_pandas if fmt == "pandas" else _fetch_rows
                value = fetch(con if fmt == "pandas" else result, memory_limit)
            outcome["value"] = decode_json(value, json_columns) if json_columns else value
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="mlxcore-query", daemon=True).start()
    timed_out = False
    deadline = time.monotonic() + timeout
    try:
        while not done.wait(0.05):
            if time.monotonic() > deadline:
                timed_out = True
                con.interrupt()
                _wait_for(done, con)
                break
    except KeyboardInterrupt:
        con.interrupt()
        _wait_for(done, con)
        raise
    error = outcome.get("error")
    if error is None:
        return outcome["value"]
    if isinstance(error, _TooLarge):
        raise QueryError(f"{what}: the result is larger than the memory limit ({human(memory_limit)}); select "
                         "fewer rows or columns (a filter, LIMIT), or raise the limit (memory_limit=, "
                         "--memory-limit)") from None
    if timed_out:
        raise QueryError(f"{what} stopped after {timeout:g} s (the timeout); narrow it, or give a longer one "
                         "(timeout=, --timeout)") from None
    if isinstance(error, duckdb.OutOfMemoryException):
        raise QueryError(f"{what} needs more memory than the limit ({human(memory_limit)}); narrow it, or raise "
                         "the limit (memory_limit=, --memory-limit)") from None
    if isinstance(error, duckdb.Error):
        raise QueryError(f"{what} failed: {' '.join(str(error).split())[:300]}") from None
    raise error


def decode_json(value: Any, columns: list[int]) -> Any:
    """The scalars of JSON columns (a key holding text and numbers) as the values they are, shown as written: the
    number 9, the text '9', not their JSON text ``9`` and ``"9"``. Lists and mappings stay JSON text, as a JSON
    column has always shown them (decoding thousands of ``info.argv`` lists would double a filter's time)."""
    if isinstance(value, tuple):
        names, rows = value
        decoded = [list(row) for row in rows]
        for row in decoded:
            for n in columns:
                row[n] = _decoded(row[n])
        return names, [tuple(row) for row in decoded]
    for n in columns:
        value.isetitem(n, [_decoded(cell) for cell in value.iloc[:, n]])
    return value


def _decoded(cell: Any) -> Any:
    if not isinstance(cell, str):
        return None
    if cell[:1] in ("[", "{"):
        return cell
    try:
        return json.loads(cell)
    except ValueError:
        return cell


def _wait_for(done: threading.Event, con: Any) -> None:
    """Wait for an interrupted query to end, whatever else interrupts this wait (a second Ctrl-C). The interrupt
    is sent again at each step: one sent before the worker thread had started its query is lost (DuckDB clears
    it when a query starts), and the query would then run to its end."""
    while True:
        try:
            if done.wait(0.05):
                return
            con.interrupt()
        except KeyboardInterrupt:
            continue


def _fetch_rows(result: Any, memory_limit: int) -> tuple[list[str], list[tuple]]:
    names = [d[0] for d in result.description]
    rows: list[tuple] = []
    size = 0
    while True:
        chunk = result.fetchmany(CHUNK_ROWS)
        if not chunk:
            return names, rows
        rows.extend(chunk)
        size += _rows_size(chunk)
        if size > memory_limit:
            raise _TooLarge


def _rows_size(chunk: list[tuple]) -> int:
    """About how much memory Python spends on ``chunk``, from a sample of its rows."""
    sample = chunk[:: max(1, len(chunk) // 64)]
    per_row = sum(64 + sum(48 + (len(v) if isinstance(v, (str, bytes)) else 0) for v in row) for row in sample)
    return per_row * len(chunk) // max(1, len(sample))


def _fetch_pandas(con: Any, memory_limit: int) -> Any:
    import pandas as pd

    frames: list[Any] = []
    size = 0
    while True:
        frame = con.fetch_df_chunk(CHUNK_ROWS // 2048)
        if frames and frame.empty:
            break
        frames.append(frame)
        size += int(frame.memory_usage(index=False, deep=False).sum())
        size += 48 * int(sum(frame[c].size for c in frame.columns if frame[c].dtype == object))
        if size > memory_limit:
            raise _TooLarge
        if frame.empty:
            break
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
