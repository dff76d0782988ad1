"""The core's contract for sweeper plugins, run against the optuna sweeper."""

from __future__ import annotations

from typing import Any

import pytest

from mlxcore.testing import SweeperContract


class TestOptunaSweeperContract(SweeperContract):
    @pytest.fixture
    def sweeper_name(self) -> str:
        return "optuna"

    @pytest.fixture
    def sweeper_options(self) -> dict[str, Any]:
        return {"metric": "train.loss", "n_trials": 5, "seed": 0, "pruner": "median"}
