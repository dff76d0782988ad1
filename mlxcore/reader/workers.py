"""The threads of a refresh: DuckDB releases the GIL, so Python's file reading can run beside it.

* :class:`Survey` stats every run while DuckDB starts and reads the stored state;
* :class:`MetadataReader` reads the metadata of the changed runs while DuckDB loads their metric files;
* :func:`prefetched` reads the next batch of metric files while DuckDB loads the current one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, TypeVar

from . import scan

T = TypeVar("T")
Progress = Callable[[str, int, int], Any]


class Survey(threading.Thread):
    """:func:`mlxcore.reader.scan.survey` in a thread: its ``stat`` calls release the GIL, and so does DuckDB."""

    def __init__(self, root: Path) -> None:
        super().__init__(name="mlxcore-catalog-survey", daemon=True)
        self.root = root
        self.found: dict[int, tuple[str, int | None]] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.found = scan.survey(self.root)
        except BaseException as exc:  # re-raised by the main thread
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


class MetadataReader(threading.Thread):
    """Parses the YAML metadata of the changed runs while the main thread keeps DuckDB busy."""

    def __init__(self, on_disk: dict[int, str], ids: list[int], progress: Progress | None) -> None:
        super().__init__(name="mlxcore-catalog-metadata", daemon=True)
        self.on_disk, self.ids, self.progress = on_disk, ids, progress
        self.records: list[scan.RunRecord] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            loader = scan.yaml_loader()
            for n, log_id in enumerate(self.ids, 1):
                self.records.append(scan.read_run(log_id, self.on_disk[log_id], loader))
                if self.progress and (n % 200 == 0 or n == len(self.ids)):
                    self.progress("metadata", n, len(self.ids))
        except BaseException as exc:  # re-raised by the main thread
            self.error = exc


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced by a thread that stays at most ``depth`` items ahead of the consumer. An exception in
    the producer is raised in the consumer; a consumer that stops early stops the producer."""
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            offer(_Failed(exc))

    thread = threading.Thread(target=produce, name="mlxcore-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
