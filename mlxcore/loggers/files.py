"""The builtin ``files`` logger: the run logger as the store writes it, with nothing added
(:class:`~mlxcore.loggers.base.RunLogger` does the writing: metric streams as JSON lines with their summaries,
artifacts and checkpoints as files, all inside the run directory the store made)."""

from __future__ import annotations

from .base import RunLogger


class FileLogger(RunLogger):
    name = "files"
