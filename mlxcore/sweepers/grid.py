"""The builtin ``grid`` sweeper: every combination of the listed values, run as one batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..overrides import INTERVAL
from .base import Sweeper

if TYPE_CHECKING:
    from ..overrides import SweepPlan
    from .runner import TrialRunner


class GridSweeper(Sweeper):
    """``optimizer.lr=0.01,0.1 seed=range(1,4)``: six points, each run once, lazily (a 100,000-point grid costs
    nothing until it runs)."""

    name = "grid"

    def sweep(self, plan: SweepPlan, runner: TrialRunner) -> int:
        sampled = [d for d in plan.dimensions if d.form == INTERVAL]
        if sampled:
            raise ConfigError(f"{sampled[0].text!r}: interval() has no list of values to run; search it with a "
                              "search sweeper (+mlx.sweeper.name=optuna, from mlxcore-optuna) or use range() or a,b,c")
        return runner.run_grid(plan)
