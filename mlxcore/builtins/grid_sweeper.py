"""The builtin ``grid`` sweeper: every combination of the listed values (:mod:`mlxcore.sweepers.grid`)."""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl


@hookimpl
def register_sweepers(register: Callable[[type], None]) -> None:
    from ..sweepers.grid import GridSweeper

    register(GridSweeper)
