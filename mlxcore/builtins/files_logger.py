"""Builtin plugin: the ``files`` run logger."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..loggers.base import RunLogger


@hookimpl
def register_loggers(register: Callable[[type[RunLogger]], None]) -> None:
    from ..loggers.files import FileLogger

    register(FileLogger)
