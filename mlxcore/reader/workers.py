"""The threads of a refresh: DuckDB releases the GIL, so Python's file reading can run beside it.

* :class:`mlxcore.reader.survey.Survey` stats every run while DuckDB starts and reads the stored state;
* :class:`RunReader` reads the metric files and the metadata of the changed runs while DuckDB loads them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..loggers import summaries
from ..signals import block_in_this_thread
from ..store.files import read_bytes
from . import scan, tables
from .logged import LoggedSummaries
from .metrics import read_batches

Progress = Callable[[str, int, int], Any]


class RunReader(threading.Thread):
    """Reads what a refresh loads while the main thread keeps DuckDB busy, in the order DuckDB needs it:

    1. for each changed run, the stamp of its ``metadata/`` (the survey's, taken before anything of the run is
       read: a write after the stamp makes the next refresh read the run again), the list of its metric files
       and the logger's summaries of them (:mod:`mlxcore.reader.logged`): a file a summary describes is not
       read now, the others are;
    2. the metric files, batch by batch (:func:`mlxcore.reader.metrics.read_batches`), at most ``depth`` batches
       ahead of DuckDB (:meth:`batches`); the sizes read make the signature of a run not finished;
    3. the metadata of the runs, flattened, with the status to show, and the rows to write, column by column
       (:meth:`rows`), while DuckDB loads the last batches.

    One thread, not one per step: Python threads share one interpreter lock, and a second reader would slow the
    first down while DuckDB waited for both.
    """

    def __init__(self, on_disk: dict[int, str], ids: list[int], stamps: dict[int, tuple[int | None, str | None]],
                 scan_start_ns: int, racy_ns: int, progress: Progress | None = None, depth: int = 2,
                 surveyed: dict[int, int | None] | None = None) -> None:
        super().__init__(name="mlxcore-catalog-reader", daemon=True)
        self.on_disk, self.ids, self.stamps, self.progress = on_disk, ids, stamps, progress
        self.scan_start_ns, self.racy_ns = scan_start_ns, racy_ns
        self.surveyed = surveyed or {}  # log_id -> mtime_ns of metadata/ found by the survey
        self.files: dict[str, list[tuple[int, str]]] = {}  # stream -> (log_id, path), complete before any batch
        self.logged = LoggedSummaries()  # complete before any batch
        self.records: list[scan.RunRecord] = []
        self.error: BaseException | None = None
        self._rows: tables.Rows | None = None
        self._done = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._halt = threading.Event()
        self._handed_over = False  # every batch (and the end marker) is in the queue

    def run(self) -> None:
        block_in_this_thread()
        try:
            meta_ns: dict[int, int] = {}
            sizes: dict[int, list[tuple[str, int, int]]] = {}
            for log_id in self.ids:
                if self._halt.is_set():
                    return
                run_dir = self.on_disk[log_id]
                surveyed = self.surveyed.get(log_id)  # taken before anything of the run is read: it will do
                meta_ns[log_id] = surveyed if surveyed is not None else scan.metadata_stamp(run_dir)
                files = scan.metric_files(run_dir)[0]
                taken: set[str] = set()
                if files:
                    try:
                        raw = read_bytes(f"{run_dir}/{scan.METRICS}/{summaries.SUMMARIES_NAME}")
                    except OSError:
                        raw = b""
                    if raw:
                        taken = self.logged.offer(log_id, raw, files, sizes.setdefault(log_id, []))
                for stream, path in files.items():
                    if stream not in taken:
                        self.files.setdefault(stream, []).append((log_id, path))
            for stream, stream_files in sorted(self.files.items()):
                for batch in read_batches(stream, stream_files, sizes):
                    if not self._offer((stream, batch)):
                        return
            self._handed_over = self._offer(_DONE)
            loader = scan.yaml_loader()
            for n, log_id in enumerate(self.ids, 1):
                if self._halt.is_set():
                    return
                record = scan.read_run(log_id, self.on_disk[log_id], loader)
                record.settle(self.on_disk[log_id])
                self.records.append(record)
                if log_id not in self.stamps:
                    self.stamps[log_id] = scan.compose(meta_ns[log_id], sizes.get(log_id, []), self.scan_start_ns,
                                                       self.racy_ns)
                if self.progress and (n % 500 == 0 or n == len(self.ids)):
                    self.progress("metadata", n, len(self.ids))
            self._rows = tables.prepare(self.records, self.stamps)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            self.error = exc
            if not self._handed_over:
                self._offer(_DONE)
        finally:
            self._done.set()

    def _offer(self, item: Any) -> bool:
        while not self._halt.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def batches(self) -> Iterator[tuple[str, tuple[list[int], list[str]]]]:
        """``(stream, (ids, texts))`` of every batch, in stream order."""
        while True:
            item = self._queue.get()
            if item is _DONE:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def rows(self) -> tables.Rows:
        """The rows to write, once the thread is done (its error, if any, is raised here)."""
        self._done.wait()
        self.join()
        if self.error is not None:
            raise self.error
        assert self._rows is not None
        return self._rows

    def stop(self) -> None:
        """Stop early (the refresh failed): the thread ends at its next hand-over."""
        self._halt.set()
        self.join()


_DONE = object()
