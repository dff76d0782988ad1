"""Builtin plugin: the ``local`` scheduler (this machine as a queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..schedulers.base import Scheduler


@hookimpl
def register_schedulers(register: Callable[[type[Scheduler]], None]) -> None:
    from ..schedulers.local import LocalScheduler

    register(LocalScheduler)
