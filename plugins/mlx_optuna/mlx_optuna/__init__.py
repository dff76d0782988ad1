"""mlxcore-optuna: the ``optuna`` search sweeper. Only hook implementations here; the sweeper (and Optuna) load
when a launch selects it (``+mlx.sweeper.name=optuna``), so ``import mlxcore`` and ``mlxcore plugins`` stay
light."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlxcore import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlxcore.sweepers.base import Sweeper


@hookimpl
def register_sweepers(register: Callable[[type[Sweeper]], None]) -> None:
    from .sweeper import OptunaSweeper

    register(OptunaSweeper)
