"""The builtin ``files`` logger: one numbered directory per run, plain files inside (see :mod:`mlxcore.runs`)."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .. import runs
from ..errors import ArtifactError, CheckpointNotFoundError, ConfigError, UnknownChoiceError
from ..plugins import get_plugin_manager
from ..serializers import FunctionSerializer, Serializer
from ..settings import LoggerSettings
from . import summaries
from .base import MISSING, RunLogger
from .metrics import MetricStream, check_name, encode_row

log = logging.getLogger(__name__)


class FileLogger(RunLogger):
    name = "files"

    def __init__(self, settings: LoggerSettings, log_id: int, log_dir: Path) -> None:
        self.settings = settings
        self.log_id = log_id
        self.log_dir = log_dir
        self.metadata_dir = log_dir / "metadata"
        self.metrics_dir = log_dir / "metrics"
        # metrics/ and artifacts/ appear with their first file: a submission creating 1,000 run directories
        # pays one mkdir per run, not three
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        info_file = self.metadata_dir / "info.yaml"
        self._info: dict[str, Any] = (runs.read_yaml(info_file) or {}) if info_file.exists() else {}
        self._streams: dict[str, MetricStream] = {}
        self._stored_summaries: dict[str, Any] | None = None
        self._formats: dict[str, Serializer] = {}
        self._ticker: _Ticker | None = None

    @classmethod
    def open(cls, settings: LoggerSettings) -> FileLogger:
        parent = Path(settings.parent_log_dir).expanduser().absolute()
        if settings.forced_log_id is not None:
            if settings.forced_log_id < 1:
                raise ConfigError(f"mlx.logger.forced_log_id must be a positive integer, got {settings.forced_log_id}")
            return cls(settings, settings.forced_log_id, runs.forced_run_dir(parent, settings.forced_log_id))
        log_id, log_dir = runs.allocate_run_dir(parent)
        return cls(settings, log_id, log_dir)

    # -- metadata ---------------------------------------------------------------------------------------
    @property
    def info(self) -> dict[str, Any]:
        return self._info

    def update_info(self, **fields: Any) -> None:
        """Merge and persist. A run that ended and starts again (resume, rerun, requeue) keeps the story of the
        attempt that ended in ``history``."""
        previous = self._info.get("status")
        if fields.get("status") in (runs.SUBMITTED, runs.RUNNING) and (
                previous in runs.FINAL_STATUSES or (previous == runs.RUNNING and self._info.get("start_time"))):
            ended = {k: self._info.get(k) for k in ("status", "start_time", "end_time") if k in self._info}
            if previous == runs.RUNNING:  # the attempt before died without a word (SIGKILL, lost node)
                ended["status"] = runs.DEAD
            self._info["history"] = [*self._info.get("history", []), ended]
            self._info.pop("error", None)
        self._info.update(fields)
        runs.write_yaml(self.metadata_dir / "info.yaml", self._info)

    def write_metadata(self, name: str, data: Any) -> None:
        if isinstance(data, str):
            runs.write_atomic(self.metadata_dir / f"{name}.yaml", data)
        else:
            runs.write_yaml(self.metadata_dir / f"{name}.yaml", data)

    def start(self, info: dict[str, Any]) -> None:
        fields = dict(info)
        fields["attempt"] = int(self._info.get("attempt", 0)) + 1
        fields.update(status=runs.RUNNING, heartbeat_interval=self.settings.heartbeat_interval, end_time=None)
        self.update_info(**fields)
        self._touch_heartbeat()
        self._ticker = _Ticker(self)
        self._ticker.start()

    def finish(self, status: str, **fields: Any) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self.close_streams()
        end = time.time()
        start = self._info.get("start_timestamp")
        duration = round(end - start, 3) if isinstance(start, (int, float)) else None
        self.update_info(status=status, end_time=runs.now_iso(), duration_s=duration, **fields)

    def _touch_heartbeat(self) -> None:
        (self.metadata_dir / runs.HEARTBEAT).touch()

    # -- metrics ----------------------------------------------------------------------------------------
    def log_metrics(self, metrics: dict[str, Any], log_name: str = "metrics") -> None:
        stream = self._streams.get(log_name)
        if stream is None:
            self.metrics_dir.mkdir(exist_ok=True)
            path = self.metrics_dir / f"{check_name(log_name, 'log_name')}.json"
            if self._stored_summaries is None and path.exists():
                self._stored_summaries = summaries.load(self.metrics_dir)
            stream = self._streams[log_name] = MetricStream(path, self._stored_summaries)
        line = encode_row(metrics)
        stream.append(line)
        stream.summary.add(metrics, line)

    def flush(self) -> None:
        for stream in list(self._streams.values()):
            stream.flush()

    def close_streams(self) -> None:
        """Close the metric files and store their summaries (:mod:`mlxcore.loggers.summaries`)."""
        entries = {name: stream.close() for name, stream in list(self._streams.items())}
        self._streams.clear()
        if entries:
            summaries.save(self.metrics_dir, entries)
            self._stored_summaries = None

    # -- artifacts and checkpoints ------------------------------------------------------------------------
    def register_artifact_type(self, name: str, save: Callable[[Any, str], None], load: Callable[[str], Any]) -> None:
        """Add an in-memory format for this run only: ``save(obj, path)`` and ``load(path)``. Nothing is stored."""
        self._formats[check_name(name, "artifact format")] = FunctionSerializer(name, save, load)

    def _serializer(self, artifact_format: str) -> Serializer:
        if artifact_format in self._formats:
            return self._formats[artifact_format]
        registry = get_plugin_manager().registry("serializers")
        if artifact_format not in registry:
            raise UnknownChoiceError("artifact format", artifact_format, [*registry.names(), *self._formats])
        return registry.get(artifact_format)

    def _inside(self, path: Path) -> Path:
        """``path``, refusing any that resolves outside this run directory (a symlink planted in the logs)."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.log_dir.resolve()):
            raise ArtifactError(f"refusing {path}: it resolves outside run directory {self.log_dir}")
        return resolved

    def _save(self, obj: Any, path: Path, serializer: Serializer) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._inside(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, runs.file_mode())  # as open() would: readable by those the umask allows, not 0600
        os.close(fd)
        try:
            with open(tmp, "wb") as handle:  # opened by path: ``handle.name`` is the path for function formats
                serializer.save(obj, handle)
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, Exception) and not isinstance(exc, ArtifactError):
                raise ArtifactError(f"cannot save {path.name!r} as {serializer.name}: {type(exc).__name__}: {exc}") from exc
            raise
        return path

    def _load(self, path: Path, serializer: Serializer) -> Any:
        with open(self._inside(path), "rb") as handle:
            return serializer.load(handle)

    def log_artifacts(self, artifact: Any, artifact_name: str, artifact_format: str = "pickle") -> Path:
        serializer = self._serializer(artifact_format)
        path = self.log_dir / "artifacts" / artifact_format / check_name(artifact_name, "artifact name")
        return self._save(artifact, path, serializer)

    def load_artifacts(self, artifact_name: str, artifact_format: str | None = None) -> Any:
        check_name(artifact_name, "artifact name")
        root = self.log_dir / "artifacts"
        if artifact_format is None:
            found = sorted(p.parent.name for p in root.glob(f"*/{artifact_name}"))
            if len(found) != 1:
                where = f"in formats {', '.join(found)}; pass artifact_format" if found else "in any format"
                raise ArtifactError(f"artifact {artifact_name!r} of run {self.log_id} found {where}")
            artifact_format = found[0]
        path = root / artifact_format / artifact_name
        if not path.exists():
            raise ArtifactError(f"run {self.log_id} has no artifact {artifact_name!r} in format {artifact_format!r}")
        return self._load(path, self._serializer(artifact_format))

    def log_checkpoint(self, checkpoint: Any, log_name: str = "checkpoint", artifact_format: str | None = None) -> Path:
        artifact_format = artifact_format or self.settings.checkpoint_format
        serializer = self._serializer(artifact_format)
        directory = self.log_dir / "checkpoints"
        path = self._save(checkpoint, directory / f"{check_name(log_name, 'checkpoint name')}.{artifact_format}", serializer)
        for other in directory.glob(f"{log_name}.*"):  # one checkpoint per name, whatever its format
            if other != path and not other.name.startswith(".") and other.suffix != ".tmp":
                other.unlink(missing_ok=True)
        return path

    def load_checkpoint(self, log_name: str = "checkpoint", default: Any = MISSING) -> Any:
        check_name(log_name, "checkpoint name")
        # ``<log_name>.<format>``; temporary files start with '.' and never match
        candidates = {p.name[len(log_name) + 1 :]: p for p in (self.log_dir / "checkpoints").glob(f"{log_name}.*")}
        candidates = {fmt: p for fmt, p in candidates.items() if fmt and "." not in fmt}
        if not candidates:
            if default is not MISSING:
                return default
            raise CheckpointNotFoundError(f"run {self.log_id} has no checkpoint {log_name!r} (in {self.log_dir / 'checkpoints'})")
        fmt, path = max(candidates.items(), key=lambda item: item[1].stat().st_mtime)
        return self._load(path, self._serializer(fmt))


class _Ticker(threading.Thread):
    """Flushes metric rows every ``flush_interval`` and touches the heartbeat every ``heartbeat_interval``."""

    def __init__(self, owner: FileLogger) -> None:
        super().__init__(name=f"mlxcore-run-{owner.log_id}", daemon=True)
        self.owner = owner
        self._stop_event = threading.Event()

    def run(self) -> None:
        settings = self.owner.settings
        last_beat = time.monotonic()
        while not self._stop_event.wait(max(settings.flush_interval, 0.05)):
            try:
                self.owner.flush()
                if time.monotonic() - last_beat >= settings.heartbeat_interval:
                    self.owner._touch_heartbeat()
                    last_beat = time.monotonic()
            except OSError as exc:  # a full disk must not kill the task; the final flush will raise
                log.warning("run %s: background flush failed: %s", self.owner.log_id, exc)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

