"""The shared scheduler contract (mlxcore.testing.SchedulerContract) on the REAL local SLURM."""

from __future__ import annotations

import pytest

from mlxcore.testing import SchedulerContract

pytestmark = pytest.mark.usefixtures("slurm_cluster")


class TestSlurmContract(SchedulerContract):
    @pytest.fixture
    def scheduler_settings(self):
        return {"name": "slurm", "time": 5, "mem": "200M"}

    @pytest.fixture
    def job_timeout(self) -> float:
        return 60.0
