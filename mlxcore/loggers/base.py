"""The run-logger interface: what ``ctx.logger`` offers a task.

The run store (:mod:`mlxcore.store`) creates the run, holds its writer lease and records its status; a logger
is attached to that run and writes what the task logs inside it. A logger plugin subclasses :class:`RunLogger`
(or the builtin :class:`~mlxcore.loggers.files.FileLogger`) and registers it with the ``register_loggers`` hook;
users select it with ``mlx.logger.name``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..settings import LoggerSettings

if TYPE_CHECKING:
    from ..store import Run

#: ``load_checkpoint(name)`` raises when no checkpoint exists, unless a default is given
MISSING: Any = object()


class RunLogger(ABC):
    name: ClassVar[str]

    def __init__(self, run: Run, settings: LoggerSettings) -> None:
        self.run = run
        self.settings = settings

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

    # -- lifecycle, called by the launcher ----------------------------------------------------------------
    def start(self) -> None:
        """Called once the run is RUNNING: start periodic work (flushing)."""

    @abstractmethod
    def flush(self) -> None:
        """Write every buffered metric row now."""

    @abstractmethod
    def close(self) -> None:
        """Write everything and stop background work; raise :class:`~mlxcore.loggers.metrics.MetricsWriteError`
        when rows could not be written (the run then ends FAILED)."""

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
