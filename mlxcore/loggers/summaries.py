"""Per-stream summaries kept by the logger while it writes: ``metrics/.summaries.json``.

Why: the reader's ``runs`` table has the columns ``<stream>.<key>.last|min|max|mean|count``. Computing them from
the files means parsing every line of every run: at 2,000 runs x 100 rows that was half of the first index.
The logger already holds each row as Python values, so it keeps the running count, last, min, max and sum of
every key for a few hundred nanoseconds a value, and writes them when the streams close (end of the run,
interrupt, preemption). The reader then reads one small file per run and loads a stream's rows only when a
query first needs them.

The summaries are a cache, never the record: each stream's entry holds the size of the file it describes, and
a reader uses it only when the file has exactly that size; otherwise (a run killed before it closed its
streams, a file edited or appended by another tool) the file is parsed as before. Only *plain* streams are
summarised: every value of a key is a finite number (integers within 64 bits), or every value is a string, or
every value is a boolean. A stream with anything else (NaN, nested values, mixed kinds) gets no entry and is
parsed, so the two ways of reading never disagree.

Format (``FORMAT`` 1)::

    {"format": 1, "streams": {"train": {"bytes": 5120, "keys": {"loss": ["DOUBLE", 100, 0.1, 0.05, 2.3, 41.7]}}}}

a key maps to ``[type, count, last, min, max, sum]``; ``type`` is the reader's column type (``BIGINT``,
``DOUBLE``, ``VARCHAR``, ``BOOLEAN``, or ``null`` for a key only ever logged as null), ``count`` counts non-null
values, and ``min``, ``max``, ``sum`` are ``null`` for strings and booleans.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..store import layout
from ..store.files import read_bytes, write_atomic

log = logging.getLogger(__name__)

SUMMARIES_NAME = layout.SUMMARIES
FORMAT = 1
BIGINT, DOUBLE, VARCHAR, BOOLEAN = "BIGINT", "DOUBLE", "VARCHAR", "BOOLEAN"
TYPES = frozenset({BIGINT, DOUBLE, VARCHAR, BOOLEAN})
NUMERIC = frozenset({BIGINT, DOUBLE})
_KINDS: dict[type, str] = {float: DOUBLE, int: BIGINT, str: VARCHAR, bool: BOOLEAN}
_CANONICAL = {name: name for name in TYPES}
_TYPE_NAMES = {None, *TYPES}
_INT64_MIN, _INT64_END = -(2**63), 2**63


class StreamSummary:
    """The running summary of one stream; ``valid`` turns False for good at the first value it cannot summarise
    exactly as the reader would (then the stream gets no entry and the reader parses its file).

    Each key's entry is the stored ``[type, count, last, min, max, sum]`` followed by the Python class of its
    last value and whether that class is ``float`` (1), ``int`` (2) or neither (0): a value of the same class
    as the one before, the common case, takes :meth:`add`'s short path (about 0.15 us a key).
    """

    __slots__ = ("keys", "valid")

    def __init__(self) -> None:
        self.keys: dict[str, list[Any]] = {}
        self.valid = True

    def add(self, row: dict[Any, Any], line: str) -> None:
        """Account for ``row``, just written as ``line``."""
        if not self.valid:
            return
        keys = self.keys
        for key, value in row.items():
            entry = keys.get(key)
            if entry is not None and value.__class__ is entry[6]:
                code = entry[7]
                if code:
                    if value - value if code == 1 else not _INT64_MIN <= value < _INT64_END:
                        self.valid = False  # NaN or infinite (DuckDB orders NaN above every number, Python does
                        return  # not), or an integer DuckDB would not read as BIGINT
                    entry[1] += 1
                    entry[2] = value
                    if value < entry[3]:
                        entry[3] = value
                    elif value > entry[4]:
                        entry[4] = value
                    entry[5] += value
                elif value is not None:
                    entry[1] += 1
                    entry[2] = value
                continue
            if not self._add_other(key, value, line, entry):
                self.valid = False
                return

    def _add_other(self, key: Any, value: Any, line: str, entry: list[Any] | None) -> bool:
        """:meth:`add`'s long path: a new key, or a value of another class than the key's last one. Values that
        are not plain Python numbers, strings or booleans (numpy scalars, for instance) are taken from ``line``,
        as the file holds them. False when the stream cannot be summarised."""
        if key.__class__ is not str:  # JSON makes it a string, maybe one the row already has
            return False
        cls = value.__class__
        if value is not None and cls not in _KINDS:
            value = json.loads(line).get(key)
        kind = _KINDS.get(value.__class__)
        if value is not None and kind is None:  # nested: the reader's column would be JSON
            return False
        if (kind is DOUBLE and value - value) or (kind is BIGINT and not _INT64_MIN <= value < _INT64_END):
            return False
        code = 1 if kind is DOUBLE else 2 if kind is BIGINT else 0
        if entry is None or entry[0] is None:
            if kind is None:
                self.keys[key] = [None, 0, None, None, None, None, cls, 0]
            elif code:
                self.keys[key] = [kind, 1, value, value, value, value, cls, code]
            else:
                self.keys[key] = [kind, 1, value, None, None, None, cls, 0]
            return True
        if kind is None:  # a null under a key that has values: counted nowhere
            return True
        have = entry[0]
        if have is not kind:
            if not (have in NUMERIC and kind in NUMERIC):  # strings and numbers under one key: text column
                return False
            entry[0] = DOUBLE
        entry[1] += 1
        entry[2] = value
        if code:
            entry[3] = min(entry[3], value)
            entry[4] = max(entry[4], value)
            entry[5] += value
        if cls is value.__class__:  # a numpy scalar keeps the long path: its value must come from the line
            entry[6], entry[7] = cls, code
        return True

    def entry(self, size: int) -> dict[str, Any]:
        """What the summaries file stores for this stream, describing a file of ``size`` bytes."""
        return {"bytes": size, "keys": {key: entry[:6] for key, entry in self.keys.items()}}


def load(metrics_dir: str | Path) -> dict[str, Any]:
    """``{stream: entry}`` of ``metrics_dir``'s summaries file; ``{}`` when missing, unreadable or of another
    format."""
    try:
        data = json.loads(read_bytes(f"{metrics_dir}/{SUMMARIES_NAME}"))
    except (OSError, ValueError):
        return {}
    streams = data.get("streams") if isinstance(data, dict) and data.get("format") == FORMAT else None
    return streams if isinstance(streams, dict) else {}


def resume(stream: str, size: int, stored: dict[str, Any]) -> StreamSummary:
    """The summary to continue for a stream whose file already holds ``size`` bytes (a resumed run): the stored
    entry when it describes exactly that file, else an invalid summary (the reader will parse the file)."""
    summary = StreamSummary()
    if size == 0:
        return summary
    entry = stored.get(stream)
    keys = entry.get("keys") if isinstance(entry, dict) and entry.get("bytes") == size else None
    if keys is None or not well_formed(keys):
        summary.valid = False
        return summary
    # the type names compare by identity in add(): the stored strings become the module's own; the class of the
    # last value is unknown, so each key's next value takes the long path
    summary.keys = {k: [None if v[0] is None else _CANONICAL[v[0]], *v[1:6], None, 0] for k, v in keys.items()}
    return summary


def well_formed(keys: Any) -> bool:
    """``keys`` has the shape this module writes: ``{key: [type, count, last, min, max, sum]}`` (the values
    themselves are checked by whoever reads them: the reader lets DuckDB cast them)."""
    if not isinstance(keys, dict):
        return False
    return all(isinstance(v, list) and len(v) == 6 and v[0] in _TYPE_NAMES and v[1].__class__ is int
               for v in keys.values())


def save(metrics_dir: Path, entries: dict[str, dict[str, Any] | None]) -> None:
    """Store the entries of the streams just closed (``None``: the stream cannot be summarised; its old entry is
    dropped), keeping those of streams this process did not write. A failure only costs reading speed: it is
    logged, not raised."""
    stored = load(metrics_dir)
    for stream, entry in entries.items():
        if entry is None:
            stored.pop(stream, None)
        else:
            stored[stream] = entry
    try:
        write_atomic(metrics_dir / SUMMARIES_NAME, json.dumps({"format": FORMAT, "streams": stored}, allow_nan=False))
    except (OSError, ValueError) as exc:
        log.debug("cannot write %s: %s", metrics_dir / SUMMARIES_NAME, exc)
