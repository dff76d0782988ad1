"""Fixtures of the mlx_slurm tests: a REAL one-node SLURM on localhost.

- A SLURM that already answers (``sinfo``) is used as it is, and left running.
- Otherwise, with ``CI=true`` or ``MLXCORE_TEST_SLURM=1``, ``scripts/clusters/slurm-up.sh`` brings one up
  (root; it installs Debian's packages when missing) and ``slurm-down.sh`` stops it at the end of the session
  (``MLXCORE_TEST_SLURM_KEEP=1`` keeps it). Under ``CI=true`` a cluster that cannot start FAILS the tests.
- Otherwise the cluster tests skip, saying how to get a cluster; the unit tests still run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_testlib import TASK, quote, run

from mlx_slurm.scheduler import cluster_answers
from mlxcore.testing.clusters import LocalCluster

REPO = Path(__file__).resolve().parents[3]
UP = REPO / "scripts" / "clusters" / "slurm-up.sh"
DOWN = REPO / "scripts" / "clusters" / "slurm-down.sh"


CLUSTER = LocalCluster("SLURM", up=UP, down=DOWN, answers=cluster_answers)


def pytest_sessionfinish(session, exitstatus):
    CLUSTER.finish()


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """A running SLURM: a skip without one (outside CI), a failure under ``CI=true``."""
    CLUSTER.require()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """A logs directory whose path has spaces, quotes and a percent sign."""
    return tmp_path / "logs dir with space's \"q\" %x"


@pytest.fixture
def launch(slurm_cluster, tmp_path: Path, logs: Path) -> Callable[..., subprocess.CompletedProcess]:
    """``launch("x=1,2", ...)``: submit the test task to SLURM; returns the finished submitter process."""

    def launch(*overrides: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        argv = [sys.executable, str(TASK), *overrides, f"+mlx.logger.parent_log_dir={quote(str(logs))}",
                "+mlx.use_scheduler=true", "+mlx.scheduler.name=slurm"]
        return run(argv, tmp_path, check=check, env=env)

    return launch


@pytest.fixture(scope="session")
def timeout_run(tmp_path_factory) -> Path | None:
    """The logs of a job that overruns its 1-minute limit and ignores the stop signal, submitted as early as
    possible: SLURM checks limits every 30 s, so it ends TIMEOUT 60-90 s after it starts."""
    try:
        CLUSTER.ensure()
    except RuntimeError:
        return None
    root = tmp_path_factory.mktemp("timeout")
    logs = root / "logs"
    run([sys.executable, str(TASK), "mode=sleep", "sleep=600", f"+mlx.logger.parent_log_dir={logs}",
         "+mlx.use_scheduler=true", "+mlx.scheduler.name=slurm", "+mlx.scheduler.time=1"], root)
    return logs


def pytest_collection_modifyitems(session, config, items):
    """The tests that wait for the TIMEOUT job run last: the other tests fill its minute and a half."""
    items.sort(key=lambda item: "timeout_run" in getattr(item, "fixturenames", ()))


@pytest.fixture(autouse=True, scope="session")
def _start_timeout_job_early(request) -> None:
    """Submit the TIMEOUT job at the start of the session when the status tests are selected, so that its
    minute and a half overlaps the other tests."""
    if any("test_slurm_status" in item.nodeid for item in request.session.items):
        request.getfixturevalue("timeout_run")
