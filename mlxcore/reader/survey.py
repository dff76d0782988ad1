"""Which runs the logs directory holds, with the stamp of each: what a refresh compares with the catalog.

A full survey stats every run (:func:`mlxcore.reader.scan.survey`): at 2,000 runs it is about half of a warm
reopen and a filter. A process that surveyed the directory a moment ago skips it when the directory and its
change stamp (:mod:`mlxcore.store.changes`) are as they were then: no run appeared or went, and no run's
metadata was written through the store. The runs that were not finished are still looked at one by one (their
metric files grow without a metadata write, :meth:`mlxcore.reader.catalog.Catalog._plan`). Whatever happens, a
process surveys every run again after :data:`FULL_SURVEY_EVERY` seconds, and ``rebuild`` surveys and reads
everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..signals import block_in_this_thread
from ..store import changes
from . import scan

#: seconds after which a process surveys every run again, even when nothing says a run changed
FULL_SURVEY_EVERY = 10.0

T = TypeVar("T")


@dataclass(frozen=True)
class _Surveyed:
    identity: tuple
    found: dict[int, int | None]
    at: float


#: ``{logs directory: its last full survey in this process}``
_last: dict[str, _Surveyed] = {}


class Survey(threading.Thread):
    """:func:`mlxcore.reader.scan.survey` in a thread: its ``stat`` calls release the GIL, and so does DuckDB."""

    def __init__(self, root: Path) -> None:
        super().__init__(name="mlxcore-catalog-survey", daemon=True)
        self.root = root
        self.found: dict[int, int | None] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        block_in_this_thread()
        try:
            self.found = scan.survey(self.root)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


def look(root: Path, read_stored: Callable[[], T], *, racy_ns: int, now_ns: int, beside: bool,
         full: bool = False) -> tuple[dict[int, int | None], T]:
    """``(found, stored)``: the runs of ``root`` (``{id: stamp}``, shared: never change it) and what
    ``read_stored()`` returns. ``beside``: the survey runs in a thread while ``read_stored`` runs (worth it when
    DuckDB must start first); ``full``: never reuse an earlier survey."""
    key = str(root)
    identity = changes.identity(root, racy_ns, now_ns)  # before the survey: a change during it shows next time
    last = _last.get(key)
    if not full and identity is not None and last is not None and last.identity == identity \
            and time.monotonic() - last.at < FULL_SURVEY_EVERY:
        return last.found, read_stored()
    at = time.monotonic()
    if beside:
        survey = Survey(root)
        survey.start()
        try:
            stored = read_stored()
        finally:
            survey.join()
        found = survey.found
    else:
        stored = read_stored()
        found = scan.survey(root)
    if identity is None:
        _last.pop(key, None)
    else:
        _last[key] = _Surveyed(identity, found, at)
    return found, stored
