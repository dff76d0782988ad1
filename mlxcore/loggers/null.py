"""``+mlx.use_logger=false``: the task runs, and nothing is written.

For a quick try or a debugging session that should leave no run directory (MLXP's ``use_logger=False``).
``ctx.logger`` is then a :class:`NullLogger`: it takes what the task logs and keeps nothing, and a checkpoint
is never found (``load_checkpoint`` returns its default), so the task's code runs unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ArtifactError, CheckpointNotFoundError
from .base import MISSING
from .metrics import encode_row


class NullLogger:
    """The logger of a launch with logging off: the same methods as a run logger, no files."""

    name = "null"
    log_id = None
    log_dir = None

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def log_metrics(self, metrics: dict[str, Any], log_name: str = "metrics") -> None:
        encode_row(metrics)  # a row a real run would refuse is refused here too: switching logging on changes nothing

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def log_artifacts(self, artifact: Any, artifact_name: str, artifact_format: str = "pickle") -> Path | None:
        return None

    def load_artifacts(self, artifact_name: str, artifact_format: str | None = None) -> Any:
        raise ArtifactError(f"artifact {artifact_name!r}: logging is off (mlx.use_logger=false), nothing is stored")

    def log_checkpoint(self, checkpoint: Any, log_name: str = "checkpoint", artifact_format: str | None = None) -> None:
        return None

    def load_checkpoint(self, log_name: str = "checkpoint", default: Any = MISSING) -> Any:
        if default is not MISSING:
            return default
        raise CheckpointNotFoundError(f"no checkpoint {log_name!r}: logging is off (mlx.use_logger=false)")

    def register_artifact_type(self, name: str, save: Any, load: Any) -> None:
        pass
