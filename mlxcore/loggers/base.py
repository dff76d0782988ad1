"""The run-logger interface: what ``ctx.logger`` offers a task, and what the launcher needs from a logger.

A logger plugin subclasses :class:`RunLogger` (most will subclass the builtin
:class:`~mlxcore.loggers.files.FileLogger` and add, say, a remote mirror in :meth:`log_metrics`) and registers
it with the ``register_loggers`` hook; users select it with ``mlx.logger.name``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from ..settings import LoggerSettings

#: ``load_checkpoint(name)`` raises when no checkpoint exists, unless a default is given
MISSING: Any = object()


class RunLogger(ABC):
    name: ClassVar[str]

    log_id: int
    log_dir: Path

    @classmethod
    @abstractmethod
    def open(cls, settings: LoggerSettings) -> RunLogger:
        """Create (or, with ``forced_log_id``, reopen) a run directory."""

    # -- lifecycle, called by the launcher ----------------------------------------------------------------
    @property
    @abstractmethod
    def info(self) -> dict[str, Any]:
        """The run's ``info`` record as last written."""

    @abstractmethod
    def update_info(self, **fields: Any) -> None:
        """Merge ``fields`` into the info record and persist it atomically."""

    @abstractmethod
    def write_metadata(self, name: str, data: Any) -> None:
        """Write ``metadata/<name>.yaml`` (``config``, ``mlx``) atomically."""

    @abstractmethod
    def start(self, info: dict[str, Any]) -> None:
        """Mark the run RUNNING with ``info`` and start periodic flushing and the heartbeat."""

    @abstractmethod
    def finish(self, status: str, **fields: Any) -> None:
        """Flush everything, stop background work, record the final ``status`` and end time."""

    @abstractmethod
    def flush(self) -> None:
        """Write every buffered metric row now."""

    # -- what a task calls ----------------------------------------------------------------------------------
    @abstractmethod
    def log_metrics(self, metrics: dict[str, Any], log_name: str = "metrics") -> None:
        """Append one row to the stream ``log_name``."""

    @abstractmethod
    def log_artifacts(self, artifact: Any, artifact_name: str, artifact_format: str = "pickle") -> Path:
        """Save ``artifact`` under ``artifacts/<artifact_format>/<artifact_name>``; return the path."""

    @abstractmethod
    def load_artifacts(self, artifact_name: str, artifact_format: str | None = None) -> Any:
        """Load what :meth:`log_artifacts` saved."""

    @abstractmethod
    def log_checkpoint(self, checkpoint: Any, log_name: str = "checkpoint", artifact_format: str | None = None) -> Path:
        """Save (replace) the checkpoint ``log_name``."""

    @abstractmethod
    def load_checkpoint(self, log_name: str = "checkpoint", default: Any = MISSING) -> Any:
        """The last checkpoint saved as ``log_name`` in this run directory, or ``default`` when there is none."""
