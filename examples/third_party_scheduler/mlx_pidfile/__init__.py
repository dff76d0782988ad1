"""mlxcore-pidfile: an example third-party scheduler plugin. Only the hook here; the scheduler loads lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlxcore import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlxcore.schedulers.base import Scheduler


@hookimpl
def register_schedulers(register: Callable[[type[Scheduler]], None]) -> None:
    from .scheduler import PidfileScheduler

    register(PidfileScheduler)
