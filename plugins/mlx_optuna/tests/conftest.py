"""Fixtures of the mlx_optuna tests: the test task launched as a real subprocess, its runs and its study read
back from disk (real Optuna, real run store)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optuna_testlib import Search

from mlxcore.testing.clusters import LocalCluster


@pytest.fixture
def search(tmp_path: Path) -> Search:
    root = tmp_path / "search dir"  # a space in the path, on purpose
    root.mkdir()
    return Search(root)


# -- a REAL one-node SLURM on localhost, for test_optuna_slurm.py, decided as plugins/mlx_slurm/tests decide it:
# used when it answers, started under CI=true or MLXCORE_TEST_SLURM=1 (a failure if it cannot start), else a skip
REPO = Path(__file__).resolve().parents[3]


def _slurm_answers() -> bool:
    from mlx_slurm.scheduler import cluster_answers

    return cluster_answers()


SLURM = LocalCluster("SLURM", up=REPO / "scripts" / "clusters" / "slurm-up.sh",
                     down=REPO / "scripts" / "clusters" / "slurm-down.sh", answers=_slurm_answers)


def pytest_sessionfinish(session, exitstatus):
    SLURM.finish()


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """A running SLURM: a skip without one (outside CI), a failure under ``CI=true``."""
    SLURM.require()
