"""Buffered JSON-lines metric files that never hold half a line.

``log_metrics`` serialises the whole row first (an unserialisable value raises before anything is buffered),
appends the line to an in-memory list, and the list is written with one ``os.write`` of complete lines: when
it grows past :data:`FLUSH_BYTES`, when the logger's background thread ticks (every ``flush_interval``), and at
the end of the run (normal exit, exception, signal). A killed process loses at most the last unflushed second,
never the integrity of the file.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..serializers import to_builtin
from . import summaries

FLUSH_BYTES = 1 << 16
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")

_encode = json.JSONEncoder(default=to_builtin, allow_nan=True).encode


def check_name(name: str, what: str) -> str:
    """Metric stream, artifact and checkpoint names become file names: no separators, no leading dot."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or name.endswith(".tmp"):
        raise ConfigError(
            f"invalid {what} {name!r}: use letters, digits, '_', '-' and '.', not starting with '.' or '-'"
        )
    return name


def encode_row(row: Any) -> str:
    """One JSON line for ``row``.

    :raises TypeError: ``row`` is not a mapping, or a value cannot be serialised (the message names the key).
    """
    if not isinstance(row, dict):
        raise TypeError(f"log_metrics expects a dict of metric values, got {type(row).__name__}")
    try:
        return _encode(row) + "\n"
    except (TypeError, ValueError, OverflowError):
        pass
    for key, value in row.items():  # slow path: find which key is at fault
        try:
            _encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"log_metrics: value of key {key!r} cannot be written as JSON: {exc}") from None
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise TypeError(f"log_metrics: key {key!r} is a {type(key).__name__}; keys must be strings")
    raise TypeError("log_metrics: the row cannot be written as JSON")  # pragma: no cover


class MetricStream:
    """One ``metrics/<name>.json`` file opened for appending, with its running summary (:mod:`.summaries`).

    :param stored: the summaries file's entries, to continue a stream whose file exists (a resumed run).
    """

    def __init__(self, path: Path, stored: dict[str, Any] | None = None) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        self.summary = summaries.resume(path.stem, size, stored or {})
        self._lines: list[str] = []
        self._size = 0
        self._lock = threading.Lock()

    def append(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            if self._size < FLUSH_BYTES:
                return
            lines, self._lines, self._size = self._lines, [], 0
            self._write(lines)

    def flush(self) -> None:
        with self._lock:
            if not self._lines:
                return
            lines, self._lines, self._size = self._lines, [], 0
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        data = memoryview("".join(lines).encode())
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def close(self) -> dict[str, Any] | None:
        """Flush and close; returns the stream's summaries entry (``None`` when it cannot be summarised)."""
        self.flush()
        if self._fd < 0:
            return None
        size = os.fstat(self._fd).st_size
        os.close(self._fd)
        self._fd = -1
        return self.summary.entry(size) if self.summary.valid else None

