"""The version-manager interface: which code a run executes, and the record of it.

With ``mlx.use_version_manager=true`` the launcher calls :meth:`VersionManager.prepare` once per launch (so a
sweep of 100 jobs prepares once), runs or submits the script found in the returned working directory, and
records :attr:`PreparedCode.record` (info key ``version``) and :attr:`PreparedCode.files` (metadata files) in
every run it creates.

"Once per launch" includes the processes the launch starts: when the launcher re-executes the prepared copy of
the script it hands the :class:`PreparedCode` over (:func:`hand_off`, :func:`take_handed_off`), and submitted
jobs are told not to prepare again; otherwise a re-executed process would ask the same questions, commit a
second time, or fail because a snapshot is not a repository.
"""

from __future__ import annotations

import json
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import UnknownChoiceError, VersionManagerError

#: names the file holding the :class:`PreparedCode` a re-executed process inherits
HANDOFF_VARIABLE = "MLXCORE_PREPARED_CODE_FILE"


@dataclass
class PreparedCode:
    """Where the code to run lives, and what to record about it in each run's info (key ``version``)."""

    workdir: Path  #: the job's working directory
    script: Path  #: the script to execute, inside ``workdir``
    record: dict[str, Any] = field(default_factory=dict)
    #: extra files for each run's ``metadata/`` directory, name -> text (``uncommitted.patch``, ...); text that
    #: is not UTF-8 is carried with ``surrogateescape`` and written back byte for byte
    files: dict[str, str] = field(default_factory=dict)
    #: environment of the processes that run the code (import path, ...): set in the launching process right
    #: after :meth:`VersionManager.prepare`, so re-executed processes and local jobs inherit it, and exported by
    #: every job script for schedulers that do not pass the environment on
    env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {"workdir": str(self.workdir), "script": str(self.script), "record": self.record,
                "files": self.files, "env": self.env}
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> PreparedCode:
        data = json.loads(text)
        return cls(Path(data["workdir"]), Path(data["script"]), data.get("record", {}), data.get("files", {}),
                   data.get("env", {}))


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


def hand_off(prepared: PreparedCode) -> None:
    """Leave ``prepared`` for the process this one is about to ``exec``: a private temporary file, named in
    the environment; :func:`take_handed_off` reads and deletes it."""
    fd, path = tempfile.mkstemp(prefix="mlxcore-prepared-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(prepared.to_json())
    os.environ[HANDOFF_VARIABLE] = path


def take_handed_off() -> PreparedCode | None:
    """The :class:`PreparedCode` the parent process handed over, or ``None``; consumed, so processes the task
    itself starts (a nested launch) prepare for themselves."""
    path = os.environ.pop(HANDOFF_VARIABLE, None)
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise VersionManagerError(f"cannot read the prepared code handed over in {path}: {exc.strerror}") from None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return PreparedCode.from_json(text)
