"""The version-manager interface: which code a run executes, and the record of it.

With ``mlx.use_version_manager=true`` the launcher calls :meth:`VersionManager.prepare` once per launch (so a
sweep of 100 jobs prepares once), runs or submits the script found in the returned working directory, and
calls :func:`write_record` for every run directory it creates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import UnknownChoiceError


@dataclass
class PreparedCode:
    """Where the code to run lives, and what to record about it in each run's info (key ``version``)."""

    workdir: Path  #: the job's working directory
    script: Path  #: the script to execute, inside ``workdir``
    record: dict[str, Any] = field(default_factory=dict)
    #: extra files for each run's ``metadata/`` directory, name -> text (``uncommitted.patch``, ...)
    files: dict[str, str] = field(default_factory=dict)


class VersionManager(ABC):
    name: ClassVar[str]
    #: option name -> default
    options_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any) -> None:
        for key in options:
            if key not in self.options_defaults:
                raise UnknownChoiceError(f"{self.name} version manager option", key, self.options_defaults)
        self.options = {**self.options_defaults, **options}

    @classmethod
    def from_settings(cls, options: dict[str, Any]) -> VersionManager:
        return cls(**options)

    @abstractmethod
    def prepare(self, script: Path, interactive: bool) -> PreparedCode:
        """Decide what code runs for ``script`` (check the tree, snapshot it, ...).

        :param interactive: stdin is a terminal, so the manager may ask questions.
        :raises mlxcore.errors.VersionManagerError: when the launch must not go ahead.
        """


def write_record(run_dir: Path, prepared: PreparedCode) -> dict[str, Any]:
    """Write ``prepared.files`` into ``run_dir/metadata`` and return the info to record under ``version``."""
    from .runs import write_atomic

    for name, text in prepared.files.items():
        write_atomic(run_dir / "metadata" / name, text)
    return dict(prepared.record)
