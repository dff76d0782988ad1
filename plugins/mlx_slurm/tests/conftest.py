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
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="session")
def time_limited_runs(tmp_path_factory) -> dict[str, Path] | None:
    """The logs of two jobs with a 1-minute limit and 30 s of grace that need 40 s of work, submitted as early as
    possible: one saves checkpoints (stopped at its limit, requeued, resumed: COMPLETE), one saves none (stopped
    at its limit, not requeued: FAILED)."""
    try:
        CLUSTER.ensure()
    except RuntimeError:
        return None
    out = {}
    for name, checkpoint in (("saving", "true"), ("not_saving", "false")):
        root = tmp_path_factory.mktemp(f"time-limited-{name}")
        out[name] = root / "logs"
        run([sys.executable, str(TASK), "mode=work", "work=40", f"checkpoint={checkpoint}",
             f"+mlx.logger.parent_log_dir={out[name]}", "+mlx.use_scheduler=true", "+mlx.scheduler.name=slurm",
             "+mlx.scheduler.time=1", "+mlx.scheduler.signal_grace=30"], root)
    return out


LONG_FIXTURES = ("timeout_run", "time_limited_runs")


def pytest_collection_modifyitems(session, config, items):
    """The tests that wait for the time-limited jobs run last, as the other tests fill their minutes; the test
    that takes the node down runs after all of them, alone on the cluster."""
    def order(item: pytest.Item) -> tuple[bool, bool]:
        names = getattr(item, "fixturenames", ())
        return "node_failure" in names, any(f in names for f in LONG_FIXTURES)

    items.sort(key=order)


@pytest.fixture
def node_failure(slurm_cluster) -> Iterator[Callable[[], None]]:
    """``fail()`` takes the node down (its jobs end NODE_FAIL; ReturnToService=2 brings it back at once). It
    waits first until no other job is queued or running: every job on the node would fail with it."""
    from mlxcore.testing import wait_until

    def queue_empty() -> bool:
        out = subprocess.run(["squeue", "-h", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING"],
                             capture_output=True, text=True, check=True).stdout
        return not out.strip()

    wait_until(queue_empty, timeout=300, what="the other jobs to end before the node is taken down")

    def fail() -> None:
        subprocess.run(["scontrol", "update", "nodename=localhost", "state=down", "reason=mlxcore node-failure test"],
                       check=True, capture_output=True, text=True)

    yield fail
    subprocess.run(["scontrol", "update", "nodename=localhost", "state=resume"], capture_output=True, text=True)


@pytest.fixture(autouse=True, scope="session")
def _start_timeout_job_early(request) -> None:
    """Submit the TIMEOUT job at the start of the session when the status tests are selected, so that its
    minute and a half overlaps the other tests."""
    if any("test_slurm_status" in item.nodeid for item in request.session.items):
        request.getfixturevalue("timeout_run")
    if any("test_slurm_retry" in item.nodeid for item in request.session.items):
        request.getfixturevalue("time_limited_runs")
