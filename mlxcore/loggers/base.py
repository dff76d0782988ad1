"""The run logger: what ``ctx.logger`` offers a task, writing through the run store.

The run store (:mod:`mlxcore.store`) creates the run, holds its writer lease and records its status; the
logger is attached to that run and writes what the task logs inside it, in the store's format: metric streams
as JSON lines with their summaries (:mod:`.metrics`, :mod:`.summaries`: what the reader reads instead of the
rows, so any logger's runs are read at full speed), artifacts and checkpoints through the serializer plugins
(the ``register_serializers`` hook), atomically and only inside the run directory.

A logger plugin subclasses :class:`RunLogger` and registers it with the ``register_loggers`` hook; users select
it with ``mlx.logger.name``. What a plugin adds (sending rows to a dashboard, copying checkpoints elsewhere)
goes in the extension methods :meth:`~RunLogger.on_metrics`, :meth:`~RunLogger.on_artifact`,
:meth:`~RunLogger.on_checkpoint` and :meth:`~RunLogger.on_close`, called after the store has the data: a plugin
cannot lose a row or break the format. A plugin overriding the writing methods themselves must call ``super()``;
:class:`mlxcore.testing.LoggerContract` checks that every row reaches the run directory once, in order.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import (
    ArtifactError,
    CheckpointNotFoundError,
    ConfigError,
)
from ..serializers import Serializer
from ..signals import block_in_this_thread
from ..store import file_mode, layout
from . import summaries
from .metrics import MetricStream, MetricsWriteError, check_name, encode_row

if TYPE_CHECKING:
    from ..settings import LoggerSettings
    from ..store import Run

log = logging.getLogger(__name__)

#: ``load_checkpoint(name)`` raises when no checkpoint exists, unless a default is given
MISSING: Any = object()


class RunLogger:
    """The logger of one run; see the module docstring. Subclasses set :attr:`name`."""

    name: ClassVar[str] = ""
    #: the logger interface this class implements (``mlxcore plugins`` shows it)
    interface_version: ClassVar[str] = "0.2"

    def __init__(self, run: Run, settings: LoggerSettings) -> None:
        self.run = run
        self.settings = settings
        self.paths = run.paths
        self._streams: dict[str, MetricStream] = {}
        self._stream_keys: dict[str, str] | None = None  # lower-cased stream name -> name, on disk and here
        self._stored_summaries: dict[str, Any] | None = None
        self._ticker: _Ticker | None = None

    def start(self) -> None:
        """Called once the run is RUNNING: rows are flushed every ``flush_interval`` from now on."""
        self._ticker = _Ticker(self)
        self._ticker.start()

    def close(self) -> None:
        """Stop flushing, close the metric files and store their summaries (:mod:`mlxcore.loggers.summaries`).

        :raises MetricsWriteError: rows could not all be written (the streams that could are closed anyway).
        """
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        entries: dict[str, dict[str, Any] | None] = {}
        errors = []
        for name, stream in list(self._streams.items()):
            try:
                entries[name] = stream.close()
            except MetricsWriteError as exc:
                entries[name] = None
                errors.append(str(exc))
        self._streams.clear()
        if entries:
            summaries.save(self.paths.metrics, entries)
            self._stored_summaries = None
        self.on_close()
        if errors:
            raise MetricsWriteError("; ".join(errors))

    # -- metrics ----------------------------------------------------------------------------------------
    def log_metrics(self, metrics: dict[str, Any], log_name: str = "metrics") -> None:
        line = encode_row(metrics)  # a row refused here leaves nothing behind, not even a new empty file
        stream = self._streams.get(log_name)
        if stream is None:
            stream = self._open_stream(log_name)
        try:
            stream.append(line)
            stream.summary.add(metrics, line)
        except BaseException:  # an interrupt between the two: the summary may miss this row; the reader parses
            stream.summary.valid = False
            raise
        self.on_metrics(metrics, log_name)

    def _open_stream(self, log_name: str) -> MetricStream:
        check_name(log_name, "log_name", layout.STREAM_SUFFIX)
        self.paths.metrics.mkdir(exist_ok=True)
        if self._stream_keys is None:
            self._stream_keys = {p.stem.lower(): p.stem for p in self.paths.metrics.glob(f"*{layout.STREAM_SUFFIX}")
                                 if not p.name.startswith(".")}
        other = self._stream_keys.get(log_name.lower())
        if other is not None and other != log_name:
            raise ConfigError(f"log_name {log_name!r} differs from this run's stream {other!r} only by case; the "
                              "reader cannot tell them apart: use the same name or another one")
        self._stream_keys[log_name.lower()] = log_name
        path = self.paths.stream(log_name)
        if self._stored_summaries is None and path.exists():
            self._stored_summaries = summaries.load(self.paths.metrics)
        stream = self._streams[log_name] = MetricStream(path, self._stored_summaries)
        return stream

    def flush(self) -> None:
        """Write every buffered row now; a failed write keeps its rows for the next flush and raises."""
        errors = []
        for stream in list(self._streams.values()):
            try:
                stream.flush()
            except OSError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    # -- artifacts and checkpoints ------------------------------------------------------------------------
    def register_artifact_type(self, name: str, save: Callable[[Any, str], None], load: Callable[[str], Any]) -> None:
        """Add the format ``name`` made of ``save(obj, path)`` and ``load(path)``, in this process's memory; it is
        registered through the serializers hook (:mod:`mlxcore.builtins.artifact_types`). Nothing is stored.

        :raises ConfigError: the name is malformed or a plugin already provides it.
        """
        from ..builtins import artifact_types

        artifact_types.add(name, save, load)

    def _serializer(self, artifact_format: str) -> Serializer:
        from ..plugins import get_plugin_manager

        return get_plugin_manager().registry("serializers").get(artifact_format)

    def _inside(self, path: Path) -> Path:
        """``path``, refusing any that resolves outside this run directory (a symlink planted in the logs)."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.log_dir.resolve()):
            raise ArtifactError(f"refusing {path}: it resolves outside run directory {self.log_dir}")
        return resolved

    def _save(self, obj: Any, path: Path, serializer: Serializer) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._inside(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{layout.TEMP_PREFIX}{path.name}.",
                                   suffix=layout.TEMP_SUFFIX)
        os.fchmod(fd, file_mode())  # as open() would: readable by those the umask allows, not 0600
        os.close(fd)
        try:
            with open(tmp, "wb") as handle:  # opened by path: ``handle.name`` is the path for function formats
                serializer.save(obj, handle)
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, Exception) and not isinstance(exc, ArtifactError):
                raise ArtifactError(
                    f"cannot save {path.name!r} as {serializer.name}: {type(exc).__name__}: {exc}") from exc
            raise
        return path

    def _load(self, path: Path, serializer: Serializer) -> Any:
        with open(self._inside(path), "rb") as handle:
            return serializer.load(handle)

    def log_artifacts(self, artifact: Any, artifact_name: str, artifact_format: str = "pickle") -> Path:
        serializer = self._serializer(artifact_format)
        path = self.paths.artifact(artifact_format, check_name(artifact_name, "artifact name"))
        self._save(artifact, path, serializer)
        self.on_artifact(path, artifact_name, artifact_format)
        return path

    def load_artifacts(self, artifact_name: str, artifact_format: str | None = None) -> Any:
        check_name(artifact_name, "artifact name")
        if artifact_format is None:
            found = sorted(p.parent.name for p in self.paths.artifacts.glob(f"*/{artifact_name}"))
            if len(found) != 1:
                where = f"in formats {', '.join(found)}; pass artifact_format" if found else "in any format"
                raise ArtifactError(f"artifact {artifact_name!r} of run {self.log_id} found {where}")
            artifact_format = found[0]
        path = self.paths.artifact(artifact_format, artifact_name)
        if not path.exists():
            raise ArtifactError(f"run {self.log_id} has no artifact {artifact_name!r} in format {artifact_format!r}")
        return self._load(path, self._serializer(artifact_format))

    def log_checkpoint(self, checkpoint: Any, log_name: str = "checkpoint", artifact_format: str | None = None) -> Path:
        artifact_format = artifact_format or self.settings.checkpoint_format
        serializer = self._serializer(artifact_format)
        check_name(log_name, "checkpoint name", f".{artifact_format}")
        path = self._save(checkpoint, self.paths.checkpoint(log_name, artifact_format), serializer)
        for other in self.paths.checkpoints.glob(f"{log_name}.*"):  # one checkpoint per name, whatever its format
            if other != path and not other.name.startswith(layout.TEMP_PREFIX) and other.suffix != layout.TEMP_SUFFIX:
                other.unlink(missing_ok=True)
        self.on_checkpoint(path, log_name, artifact_format)
        return path

    def load_checkpoint(self, log_name: str = "checkpoint", default: Any = MISSING) -> Any:
        check_name(log_name, "checkpoint name")
        # ``<log_name>.<format>``; temporary files start with '.' and never match
        candidates = {p.name[len(log_name) + 1 :]: p for p in self.paths.checkpoints.glob(f"{log_name}.*")}
        candidates = {fmt: p for fmt, p in candidates.items() if fmt and "." not in fmt}
        if not candidates:
            if default is not MISSING:
                return default
            raise CheckpointNotFoundError(
                f"run {self.log_id} has no checkpoint {log_name!r} (in {self.paths.checkpoints})")
        fmt, path = max(candidates.items(), key=lambda item: item[1].stat().st_mtime)
        return self._load(path, self._serializer(fmt))

    # -- extension methods: a plugin overrides these; the store already has the data --------------------------
    def on_metrics(self, metrics: dict[str, Any], log_name: str) -> None:
        """Called after each row is accepted (buffered for its stream file)."""

    def on_artifact(self, path: Path, artifact_name: str, artifact_format: str) -> None:
        """Called after an artifact is saved at ``path``."""

    def on_checkpoint(self, path: Path, log_name: str, artifact_format: str) -> None:
        """Called after a checkpoint is saved at ``path`` (the previous one of that name is gone)."""

    def on_close(self) -> None:
        """Called when the run's streams are closed (the run is ending), before a write error is raised."""

    # -- the run ------------------------------------------------------------------------------------------
    @classmethod
    def attach(cls, run: Run, settings: LoggerSettings) -> RunLogger:
        """The logger of ``run``, which the store created or resumed and this process writes."""
        return cls(run, settings)

    @property
    def log_id(self) -> int:
        return self.run.log_id

    @property
    def log_dir(self) -> Path:
        return self.run.root

    @property
    def info(self) -> dict[str, Any]:
        """The run's info record as last written."""
        return self.run.info


class _Ticker(threading.Thread):
    """Flushes metric rows every ``flush_interval`` (the heartbeat has a timer of its own, in the run's lease).
    A failed flush keeps its rows and is tried again at the next tick; it is reported once until it recovers."""

    def __init__(self, owner: RunLogger) -> None:
        super().__init__(name=f"mlxcore-flush-{owner.log_id}", daemon=True)
        self.owner = owner
        self._stop_event = threading.Event()

    def run(self) -> None:
        block_in_this_thread()
        failing = False
        while not self._stop_event.wait(max(self.owner.settings.flush_interval, 0.01)):
            try:
                self.owner.flush()
                if failing:
                    log.warning("run %s: metric rows written again after the failure", self.owner.log_id)
                failing = False
            except OSError as exc:  # a full disk must not kill the task; the rows wait for the next tick
                if not failing:
                    log.warning("run %s: cannot write metric rows (%s); they are kept and written when it "
                                "becomes possible", self.owner.log_id, exc.strerror or exc)
                failing = True

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
