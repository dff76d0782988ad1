"""Buffered JSON-lines metric files that never hold half a line and never lose a row silently.

``log_metrics`` checks and serialises the whole row first (a row the reader could not take raises before
anything is buffered or created), appends the line to an in-memory list, and the list is written with
``os.write`` of complete lines: when it grows past :data:`FLUSH_BYTES`, when the logger's background thread
ticks (every ``flush_interval``), and at the end of the run (normal exit, exception, signal).

A write that fails (a full disk, a quota, an I/O error) keeps every row that is not on disk in the buffer, to
be written at the next flush; a write cut short mid-line is cut back to the last whole line first, so the
file never holds half a line. Rows still unwritten when the stream closes raise :class:`MetricsWriteError`
(the run then ends FAILED) and the stream gets no summary, so the summaries describe exactly the rows on disk.
A killed process loses at most the rows of its last unflushed second, never the integrity of the file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError, MlxcoreError
from ..serializers import to_builtin
from . import summaries

log = logging.getLogger(__name__)

FLUSH_BYTES = 1 << 16
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
#: a file name's longest form in bytes on common file systems (ext4, xfs, NFS)
NAME_MAX = 255

_encode = json.JSONEncoder(default=to_builtin, allow_nan=True).encode
#: the same without escaping: only to find text that is not valid Unicode (a lone surrogate)
_encode_raw = json.JSONEncoder(default=to_builtin, allow_nan=True, ensure_ascii=False).encode


class MetricsWriteError(MlxcoreError, OSError):
    """Metric rows could not be written to disk."""


class BadRowError(MlxcoreError, ValueError):
    """A metric row the reader could not take (empty, an empty key, text that is not valid Unicode)."""


def check_name(name: str, what: str, suffix: str = "") -> str:
    """Metric stream, artifact and checkpoint names become file names: no separators, no leading dot, short
    enough for the file system once ``suffix`` (``.json``, ``.pickle``) is added."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or name.endswith(".tmp"):
        raise ConfigError(
            f"invalid {what} {name!r}: use letters, digits, '_', '-' and '.', not starting with '.' or '-'"
        )
    longest = NAME_MAX - len(suffix) - len(".12345678.tmp") - 1  # room for an atomic write's temporary name
    if len(name) > longest:
        raise ConfigError(f"invalid {what} {name[:40]!r}... ({len(name)} characters): at most {longest}")
    return name


def encode_row(row: Any) -> str:
    """One JSON line for ``row``.

    :raises TypeError: ``row`` is not a mapping, or a value cannot be serialised (the message names the key).
    :raises BadRowError: the row is empty, has an empty key, or holds text that is not valid Unicode.
    """
    if not isinstance(row, dict):
        raise TypeError(f"log_metrics expects a dict of metric values, got {type(row).__name__}")
    if not row:
        raise BadRowError("log_metrics: the row is empty; log at least one key")
    try:
        line = _encode(row) + "\n"
    except (TypeError, ValueError, OverflowError):
        _find_bad_value(row)
        raise TypeError("log_metrics: the row cannot be written as JSON") from None  # pragma: no cover
    if "" in row:
        raise BadRowError("log_metrics: a key is the empty string; name every metric")
    if "\\ud" in line:  # a surrogate escaped: a valid pair (an emoji) or a lone one, which no reader takes
        try:
            _encode_raw(row).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRowError(f"log_metrics: {_bad_text(row)} is not valid Unicode (a lone surrogate?)") from None
    return line


def _find_bad_value(row: dict[Any, Any]) -> None:
    for key, value in row.items():  # slow path: find which key is at fault
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise TypeError(f"log_metrics: key {key!r} is a {type(key).__name__}; keys must be strings")
        try:
            _encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"log_metrics: value of key {key!r} cannot be written as JSON: {exc}") from None


def _bad_text(row: dict[Any, Any]) -> str:
    for key, value in row.items():
        try:
            str(key).encode("utf-8")
        except UnicodeEncodeError:
            return f"a key ({key!r})"
        try:
            _encode_raw(value).encode("utf-8")
        except UnicodeEncodeError:
            return f"the value of key {key!r}"
    return "the row"  # pragma: no cover


def cut_torn_tail(path: Path, fd: int) -> int:
    """Cut a line left unfinished at the end of ``path`` (its writer was killed mid-write) so that appended rows
    start on a line of their own; returns the size. Safe: the caller is the run's only writer."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    with open(path, "rb") as handle:
        handle.seek(max(0, size - (1 << 16)))
        tail = handle.read()
    if tail.endswith(b"\n"):
        return size
    end = tail.rfind(b"\n")
    if end < 0 and size > len(tail):  # a last line longer than 64 KiB: look further back
        with open(path, "rb") as handle:
            end = handle.read().rfind(b"\n")
        keep = end + 1
    else:
        keep = size - len(tail) + end + 1
    log.warning("%s: cutting a torn last line (%d bytes) left by a writer that was killed", path, size - keep)
    os.ftruncate(fd, keep)
    return keep


class MetricStream:
    """One ``metrics/<name>.json`` file opened for appending, with its running summary (:mod:`.summaries`).

    :param stored: the summaries file's entries, to continue a stream whose file exists (a resumed run).
    """

    def __init__(self, path: Path, stored: dict[str, Any] | None = None) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        size = cut_torn_tail(path, self._fd)
        self.summary = summaries.resume(path.stem, size, stored or {})
        self._lines: list[str] = []
        self._size = 0
        self._lock = threading.Lock()
        #: the last write error, while rows wait in the buffer because of it
        self.error: OSError | None = None

    def append(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            if self._size >= FLUSH_BYTES and self.error is None:
                self._write_buffer()

    def flush(self) -> None:
        """Write the buffered rows. A failure keeps them buffered (and in :attr:`error`) and raises."""
        with self._lock:
            if self._lines:
                self._write_buffer()
            if self.error is not None and self._lines:
                raise self.error

    @property
    def pending(self) -> int:
        """Rows not yet on disk."""
        return len(self._lines)

    def _write_buffer(self) -> None:
        """Write the buffer. What reached the file is measured by its size (this process is the run's only
        writer), so an interrupt (Ctrl-C, SIGTERM) landing anywhere here never leaves written rows buffered
        to be written twice, nor a torn line."""
        data = "".join(self._lines).encode("utf-8")
        start = os.fstat(self._fd).st_size
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            self.error = None
        except OSError as exc:
            self.error = exc
        finally:
            self._keep_unwritten(data, os.fstat(self._fd).st_size - start)

    def _keep_unwritten(self, data: bytes, written: int) -> None:
        """After a failed write of ``data`` of which ``written`` bytes reached the file: cut the file back to the
        last whole line written and keep every line after it for the next flush."""
        if written >= len(data):
            self._lines, self._size = [], 0
            return
        whole = data.rfind(b"\n", 0, written) + 1  # bytes of complete lines on disk
        if whole < written:
            try:
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - (written - whole))
            except OSError:  # cannot cut back: the torn tail stays; the reader skips a torn line with a warning
                pass
        rest = data[whole:].decode("utf-8")
        self._lines = [line + "\n" for line in rest.split("\n") if line]
        self._size = len(rest)

    def close(self) -> dict[str, Any] | None:
        """Flush and close; returns the stream's summaries entry (``None`` when it cannot be summarised).

        :raises MetricsWriteError: rows are still not on disk (they are lost; the stream gets no summary).
        """
        if self._fd < 0:
            return None
        try:
            self.flush()
        except OSError:
            pass
        lost, error = len(self._lines), self.error
        size = os.fstat(self._fd).st_size
        os.close(self._fd)
        self._fd = -1
        if lost:
            raise MetricsWriteError(f"{lost} row(s) of metric stream {self.path.stem!r} could not be written to "
                                    f"{self.path}: {error.strerror if error else 'unknown error'}")
        return self.summary.entry(size) if self.summary.valid else None
