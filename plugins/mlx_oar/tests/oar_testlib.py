"""Helpers of the mlx_oar tests (plain functions; the fixtures are in conftest.py).

OAR refuses jobs from root, and a job runs as the user who submitted it. When the tests run as root (CI), every
submission therefore runs as the job user ``mlxoar`` of ``scripts/clusters/oar-up.sh`` (``runuser``), with a
Python that user can execute (a venv made from Debian's ``/usr/bin/python3`` under ``/srv/mlxoar``, see
``/work/shared/notes/oar-localhost.md``), in project directories under ``/srv/mlxoar`` that it owns. Status
queries and ``oardel`` run as root, which OAR allows for any job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxcore.testing import WaitTimeout, wait_until

JOB_USER = "mlxoar"
WORK_DIR = Path("/srv/mlxoar")

#: the task every test project runs; ``mode`` chooses what it does
TASK = '''
import os
import time

import mlxcore


@mlxcore.launch(config_path="./configs")
def main(ctx):
    cfg = ctx.config
    state = ctx.logger.load_checkpoint("ckpt", default=None) or {"step": 0}
    ctx.logger.log_metrics({"x": cfg.x, "start_step": state["step"], "attempt": ctx.info.get("attempt")},
                           log_name="train")
    if cfg.mode == "fail":
        time.sleep(cfg.delay)
        raise ValueError("oar test failure")
    if cfg.mode == "exit":  # dies without recording anything: only OAR knows the exit code
        os._exit(5)
    if cfg.mode == "idle":  # works, never saves a checkpoint, returns at the stop signal
        while not ctx.should_stop:
            time.sleep(0.2)
        return
    if cfg.mode == "loop":
        if state["step"] > 0:  # a resumed attempt: starting where the last one stopped is all the tests need
            return
        for step in range(cfg.steps):
            time.sleep(cfg.pause)
            ctx.logger.log_checkpoint({"step": step + 1}, log_name="ckpt")
            if ctx.should_stop:  # the checkpoint signal arrived: the checkpoint is saved, return
                return


if __name__ == "__main__":
    main()
'''
CONFIG = "seed: 0\nx: 0\nmode: ok\nsteps: 600\npause: 0.5\ndelay: 0\n"


@dataclass
class Submitter:
    """How the tests submit: as whom, with which Python, where."""

    prefix: list[str]  #: argv before the interpreter (``runuser -u mlxoar --`` as root)
    python: str
    root: Path  #: where project directories are made
    owner: str | None = None  #: chown new projects to this user
    env: dict[str, str] = field(default_factory=dict)

    def make_project(self, name: str, scheduler: dict[str, Any] | None = None) -> Path:
        """A project directory (task, configs) whose path has a space, a quote and a ``#``."""
        import yaml

        project = self.root / name / "proj 'q' #1"
        (project / "configs").mkdir(parents=True)
        (project / "main.py").write_text(TASK)
        (project / "configs" / "config.yaml").write_text(CONFIG)
        settings = {"scheduler": {"name": "oar", "time": 10, **(scheduler or {})}}
        (project / "configs" / "mlx.yaml").write_text(yaml.safe_dump(settings))
        if self.owner:
            for path in [self.root / name, *(self.root / name).rglob("*")]:
                shutil.chown(path, self.owner, self.owner)
        return project

    def launch(self, project: Path, *overrides: str, check: bool = True,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``python main.py OVERRIDES +mlx.use_scheduler=true`` in ``project``, as the job user."""
        argv = [*self.prefix, self.python, str(project / "main.py"), *overrides, "+mlx.use_scheduler=true"]
        return run(argv, project, check=check, env={**self.env, **(env or {})})

    def command(self, project: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Any command in ``project``, as the job user (e.g. the venv's ``mlxcore sub``)."""
        return run([*self.prefix, *argv], project, check=check, env=self.env)

    def tool(self, name: str) -> str:
        """A console script of the job Python's environment (``mlxcore``)."""
        return str(Path(self.python).parent / name)


def run(argv: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``argv`` in ``cwd`` (``$PWD`` set too: oarsub takes its launching directory from it)."""
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "MLXCORE_LOG_LEVEL": "INFO", "PWD": str(cwd), **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def run_dirs(logs: Path) -> list[Path]:
    if not logs.exists():
        return []
    return sorted((p for p in logs.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def states(logs: Path) -> dict[int, Any]:
    """``{log id: RunState}`` as ``mlxcore status`` computes it (in this process: polling stays cheap)."""
    from mlxcore.cli.jobs_command import collect

    return {s.log_id: s for s in collect(logs)}


def wait_states(logs: Path, accept: set[str], timeout: float = 60, count: int | None = None) -> dict[int, Any]:
    """Poll until every run's status is in ``accept`` (and there are ``count`` runs), or the timeout passes."""
    seen: dict[int, Any] = {}

    def settled() -> bool:
        seen.clear()
        seen.update(states(logs))
        return bool(seen) and all(s.status in accept for s in seen.values()) and (count is None or len(seen) == count)

    try:
        wait_until(settled, timeout=timeout, interval=0.5, what=f"runs to be {' or '.join(sorted(accept))}")
    except WaitTimeout:
        pass  # the caller's assertion shows the states as last seen
    return seen


def statuses(found: dict[int, Any]) -> list[str]:
    return [s.status for _, s in sorted(found.items())]


def status_json(logs: Path, *ids: str) -> dict[int, dict[str, Any]]:
    """``mlxcore status LOGS --json`` (the real command line) as ``{log_id: row}``."""
    import sys

    result = run([sys.executable, "-m", "mlxcore", "status", str(logs), *ids, "--json"], logs.parent)
    return {row["log_id"]: row for row in json.loads(result.stdout)}


def read_info(run_dir: Path) -> dict[str, Any]:
    from mlxcore import store

    return store.read_yaml(run_dir / "metadata" / "info.yaml")


def record(run_dir: Path) -> dict[str, Any]:
    from mlxcore.schedulers.submission import read_scheduler_record

    found = read_scheduler_record(run_dir)
    if found is None:
        raise AssertionError(f"{run_dir} has no scheduler record")
    return found


def job_ids(run_dir: Path) -> list[str]:
    """Every OAR job of the run, in order (``metadata/job_ids``, appended by each job)."""
    path = run_dir / "metadata" / "job_ids"
    return path.read_text().split() if path.exists() else []


def metrics(run_dir: Path, name: str = "train") -> list[dict[str, Any]]:
    path = run_dir / "metrics" / f"{name}.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def oar_records(*ids: str) -> dict[str, dict[str, Any]]:
    """OAR's own records of these jobs (``oarstat -f -J``)."""
    from mlx_oar.scheduler import OarScheduler

    return OarScheduler().records(list(ids))


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    """:func:`mlxcore.testing.wait_until`, with this module's argument order."""
    return wait_until(predicate, timeout=timeout, interval=interval, what=what)
