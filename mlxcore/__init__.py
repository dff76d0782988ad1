"""mlxcore: from one decorated function to hundreds of jobs and back to an answer.

``import mlxcore`` is light on purpose: hydra, omegaconf, pandas, duckdb and numpy are imported only when a
launch, a query or a plot needs them, and importing installs no signal handler and no exit hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ArtifactError,
    CheckpointNotFoundError,
    ConfigError,
    MlxcoreError,
    PluginError,
    QueryError,
    RunError,
    SchedulerError,
    SubmissionError,
    UnknownChoiceError,
    VersionManagerError,
)
from .hookspecs import hookimpl

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .context import Context
    from .launching import launch
    from .reader import Reader
    from .session import RunSession, open_run
    from .sweepers.base import TrialPruned

__all__ = [
    "ArtifactError", "CheckpointNotFoundError", "ConfigError", "Context", "MlxcoreError", "PluginError",
    "QueryError", "Reader", "RunError", "RunSession", "SchedulerError", "SubmissionError", "UnknownChoiceError",
    "TrialPruned", "VersionManagerError", "__version__", "hookimpl", "launch", "open_run",
]

_LAZY = {"launch": ("launching", "launch"), "Context": ("context", "Context"), "Reader": ("reader", "Reader"),
         "open_run": ("session", "open_run"), "RunSession": ("session", "RunSession"),
         "TrialPruned": ("sweepers.base", "TrialPruned")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        value = getattr(importlib.import_module(f".{module_name}", __name__), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlxcore' has no attribute {name!r}")
