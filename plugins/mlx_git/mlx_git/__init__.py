"""mlxcore-git: the ``git`` version manager. Only hook implementations here; the implementation (and GitPython)
loads when a launch asks for it, so ``import mlxcore`` and ``mlxcore plugins`` stay light."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlxcore import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlxcore.version_managers import VersionManager


@hookimpl
def register_version_managers(register: Callable[[type[VersionManager]], None]) -> None:
    from .manager import GitVersionManager

    register(GitVersionManager)
