"""Fixtures of the mlx_oar tests: a REAL one-node OAR on localhost (``scripts/clusters/oar-up.sh``).

An OAR that is already up is used. When it is not, ``CI=true`` or ``MLXCORE_TEST_OAR=1`` brings it up (as
root) and a failure to do so FAILS the tests; without either variable the cluster tests are skipped with the
reason. A cluster started here is stopped with ``oar-down.sh`` at the end of the session
(``MLXCORE_TEST_OAR_KEEP=1`` keeps it). Submissions run as the job user (see :mod:`oar_testlib`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oar_testlib import JOB_USER, WORK_DIR, Submitter, record, run_dirs

from mlxcore.testing.clusters import LocalCluster

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "plugins" / "mlx_oar"
UP = REPO / "scripts" / "clusters" / "oar-up.sh"
DOWN = REPO / "scripts" / "clusters" / "oar-down.sh"
SERVER_PIDFILE = Path("/var/run/oar-server.pid")

def server_up() -> bool:
    """OAR's commands are installed, its server (Almighty) runs and the node takes jobs."""
    if shutil.which("oarsub") is None or shutil.which("oarnodes") is None:
        return False
    try:
        pid = int(SERVER_PIDFILE.read_text().strip())
        os.kill(pid, 0)
        nodes = subprocess.run(["oarnodes", "-s"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return False
    if "Suspected" in nodes and os.geteuid() == 0:  # a job of an earlier session broke the node: recover it
        subprocess.run(["oarnodesetting", "-s", "Alive", "-h", "localhost"], capture_output=True, timeout=30)
        nodes = subprocess.run(["oarnodes", "-s"], capture_output=True, text=True, timeout=30).stdout
    return ": Alive" in nodes


CLUSTER = LocalCluster("OAR", up=UP, down=DOWN, answers=server_up)


def pytest_sessionfinish(session, exitstatus):
    CLUSTER.finish()


@pytest.fixture(scope="session")
def oar_cluster() -> None:
    """A running local OAR, or a skip (a failure under CI=true or MLXCORE_TEST_OAR=1)."""
    CLUSTER.require()


# -- who submits --------------------------------------------------------------------------------------------
def _sources_digest() -> str:
    digest = hashlib.sha256()
    for base in (REPO / "mlxcore", PLUGIN / "mlx_oar"):
        for path in sorted(base.rglob("*.py")):
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def _job_user_can_read(path: Path) -> bool:
    argv = ["runuser", "-u", JOB_USER, "--", "test", "-r", str(path)]
    return subprocess.run(argv, capture_output=True).returncode == 0


def job_python() -> str:
    """A Python the job user can run, with mlxcore and this plugin installed (made once, then reused).

    Editable installs when the job user can read the checkout (changes need no reinstall), copies otherwise
    (then the venv is rebuilt whenever a source file changes).
    """
    editable = (_job_user_can_read(REPO / "mlxcore" / "__init__.py")
                and _job_user_can_read(PLUGIN / "mlx_oar" / "__init__.py"))
    base = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    key = hashlib.sha256("|".join([
        base, str(REPO), str(editable), (REPO / "pyproject.toml").read_text(), (PLUGIN / "pyproject.toml").read_text(),
        "" if editable else _sources_digest()]).encode()).hexdigest()[:12]
    venv = WORK_DIR / f".venv-{key}"
    python = venv / "bin" / "python"
    with open(WORK_DIR / ".venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".ready").exists():
            return str(python)
        for stale in WORK_DIR.glob(".venv-*"):
            shutil.rmtree(stale, ignore_errors=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
        install = ["-e", str(REPO), "-e", str(PLUGIN)] if editable else [str(REPO), str(PLUGIN)]
        result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *install], capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise RuntimeError(f"cannot install mlxcore for the job user into {venv}:\n{result.stderr[-3000:]}")
        check = subprocess.run(["runuser", "-u", JOB_USER, "--", str(python), "-c", "import mlxcore, mlx_oar"],
                               capture_output=True, text=True, cwd="/")
        if check.returncode != 0:
            raise RuntimeError(f"the job user cannot import mlxcore with {python}: {check.stderr}")
        (venv / ".ready").touch()
    return str(python)


@pytest.fixture(scope="session")
def submitter(oar_cluster) -> Submitter:
    """As root: the job user, its venv and a session directory under /srv/mlxoar; otherwise: this user."""
    if os.geteuid() != 0:
        return Submitter([], sys.executable, Path(tempfile.mkdtemp(prefix="mlxcore-oar-tests-")))
    try:
        python = job_python()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"no Python for the OAR job user: {exc}", pytrace=False)
    for old in sorted(WORK_DIR.glob("pytest-*"), key=lambda p: p.stat().st_mtime)[:-2]:
        shutil.rmtree(old, ignore_errors=True)  # keep the last two sessions' projects for debugging
    root = Path(tempfile.mkdtemp(prefix="pytest-", dir=WORK_DIR))
    shutil.chown(root, JOB_USER, JOB_USER)
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # absolute: some tests run with a PATH lacking it
    return Submitter([runuser, "-u", JOB_USER, "--"], python, root, owner=JOB_USER)


_counter = iter(range(1, 10_000))


@pytest.fixture
def project(submitter: Submitter, request) -> Path:
    """A fresh project (task + configs, scheduler ``oar``) for this test."""
    return submitter.make_project(f"{next(_counter):03d}-{request.node.name[:40]}")


@pytest.fixture
def logs(project: Path) -> Path:
    return project / "logs"


@pytest.fixture
def launch(submitter: Submitter, project: Path):
    """``launch("x=1,2", ...)``: submit the test task of ``project`` to OAR; returns the submitter process."""

    def launch(*overrides: str, check: bool = True, env: dict[str, str] | None = None):
        return submitter.launch(project, *overrides, check=check, env=env)

    return launch


# -- long jobs submitted at the start of the session, checked by test_oar_preempt.py ------------------------
#: cores 0-2 only: core 3 stays for the best-effort test, which pins its jobs there
KEEP_OFF_CORE_3 = '+mlx.scheduler.options=["-p core<3"]'
EARLY: dict[str, Any] = {}


def early_run(submitter: Submitter, name: str, *overrides: str, mode: str = "loop") -> Path:
    """Submit one run now (``mode=loop`` by default); returns its run directory."""
    if name not in EARLY:
        project = submitter.make_project(f"early-{name}")
        submitter.launch(project, f"mode={mode}", *overrides)
        (run_dir,) = run_dirs(project / "logs")
        EARLY[name] = (run_dir, time.time())
        record(run_dir)
    return EARLY[name][0]


@pytest.fixture(scope="session")
def early_runs(submitter: Submitter) -> dict[str, Path]:
    """The long runs: an idempotent one (checkpointed by ``oardel -c``), one whose walltime comes with a
    checkpoint signal (USR1, 60 s before a walltime of 70 s) and one killed at its 20 s walltime."""
    return {
        "idempotent": early_run(submitter, "idempotent",
                                '+mlx.scheduler.options=["-p core<3", "-t idempotent"]'),
        "walltime_signal": early_run(submitter, "walltime_signal", KEEP_OFF_CORE_3, "+mlx.scheduler.time=0:01:10",
                                     "+mlx.scheduler.signal_grace=60", "+mlx.scheduler.signal=USR1"),
        "timeout": early_run(submitter, "timeout", KEEP_OFF_CORE_3, "+mlx.scheduler.time=0:00:20",
                             "+mlx.scheduler.signal=null"),
    }


#: idempotent runs stopped by the checkpoint signal 30 s before a walltime of 90 s (OAR resubmits a job only
#: after 60 s) or 20 s before one of 40 s
TIME_LIMITED = ('+mlx.scheduler.options=["-p core<3", "-t idempotent"]', "+mlx.scheduler.signal_grace=30")


@pytest.fixture(scope="session")
def time_limited_runs(submitter: Submitter) -> dict[str, Path]:
    """Stopped at their walltime: a run that saves checkpoints (resubmitted, it resumes until done) and one that
    never does (not resubmitted: FAILED); and an idempotent run whose task fails after OAR's 60 s (not
    resubmitted either); checked by test_oar_retry.py."""
    return {
        "failing": early_run(submitter, "failing", '+mlx.scheduler.options=["-p core<3", "-t idempotent"]',
                             "delay=62", mode="fail"),
        "saving": early_run(submitter, "walltime-saving", *TIME_LIMITED, "+mlx.scheduler.time=0:01:30"),
        "not_saving": early_run(submitter, "walltime-not-saving", "+mlx.scheduler.time=0:00:40",
                                '+mlx.scheduler.options=["-p core<3", "-t idempotent"]',
                                "+mlx.scheduler.signal_grace=20", mode="idle"),
    }


@pytest.fixture(autouse=True, scope="session")
def _submit_long_jobs_first(request) -> None:
    """Submit the long runs at the start of the session when their tests are selected: they run while the
    other tests do."""
    wanted = {name: fixture for name, fixture in (("test_oar_preempt", "early_runs"),
                                                  ("test_oar_retry", "time_limited_runs"))
              if any(name in item.nodeid for item in request.session.items)}
    if not wanted:
        return
    try:
        CLUSTER.ensure()
    except RuntimeError:
        return  # the cluster tests skip (or fail) on their own
    for fixture in wanted.values():
        request.getfixturevalue(fixture)
