"""A real git repository holding a real task, launched in real subprocesses (stdin never a terminal unless a
test gives it a pseudo-terminal)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

#: the task: logs where it runs from, which code it imported, and what it could read
PROBE = '''
import os
import time

import mlxcore
from helpers import lib


def read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return "missing"


@mlxcore.launch(config_path="./configs")
def main(ctx):
    cfg = ctx.config
    ctx.logger.log_metrics({
        "cwd": os.getcwd(), "script": os.path.abspath(__file__), "lib": os.path.abspath(lib.__file__),
        "value": lib.VALUE, "data": read(cfg.data), "data_abs": read(cfg.data_abs), "x": cfg.x,
        "project": os.environ.get("MLXCORE_PROJECT_DIR"), "started": time.time(),
    }, log_name="probe")
    time.sleep(cfg.sleep)


if __name__ == "__main__":
    main()
'''

#: a script in a subdirectory: ``helpers`` is found only through the snapshot root on PYTHONPATH
SUBDIR_PROBE = PROBE.replace('config_path="./configs"', 'config_path="../configs"')

CONFIG = {"seed": 0, "x": 0, "sleep": 0, "data": "data/input.txt",
          "data_abs": "${oc.env:MLXCORE_PROJECT_DIR,.}/data/input.txt"}


def git(cwd: Path, *args: str, env: dict | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


def init_repository(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")


@dataclass
class GitProject:
    root: Path  #: the repository's working tree (a space in its name, on purpose)
    snapshots: Path  #: this test's snapshot root
    env: dict

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def launch_args(self, *args: str, script: str = "main.py", version_manager: bool = True) -> list[str]:
        extra = ["+mlx.use_version_manager=true", f"+mlx.version_manager.snapshot_root={self.snapshots}"]
        return [sys.executable, str(self.root / script), *(extra if version_manager else []), *args]

    def run(self, *args: str, script: str = "main.py", cwd: Path | None = None, env: dict | None = None,
            version_manager: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.launch_args(*args, script=script, version_manager=version_manager),
                              cwd=cwd or self.root, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env={**self.env, **(env or {})})

    def start(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.launch_args(*args), cwd=self.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=self.env, **kwargs)

    def run_ids(self, logs: Path | None = None) -> list[int]:
        logs = logs or self.logs
        return sorted(int(p.name) for p in logs.iterdir() if p.name.isdigit()) if logs.exists() else []

    def info(self, log_id: int) -> dict:
        return yaml.safe_load((self.logs / str(log_id) / "metadata" / "info.yaml").read_text())

    def probe(self, log_id: int) -> dict:
        lines = (self.logs / str(log_id) / "metrics" / "probe.json").read_text().splitlines()
        return json.loads(lines[-1])

    def snapshot_dirs(self) -> list[Path]:
        """Complete snapshots (temporary build directories start with a dot)."""
        base = self.snapshots / self.root.name
        return sorted(p for p in base.iterdir() if not p.name.startswith(".")) if base.exists() else []

    def leftovers(self) -> list[Path]:
        base = self.snapshots / self.root.name
        return sorted(p for p in base.iterdir() if p.name.startswith(".")) if base.exists() else []

    def wait_final(self, log_ids: list[int], timeout: float = 90) -> list[str]:
        """Poll the runs' statuses until none is SUBMITTED or RUNNING."""
        deadline = time.time() + timeout
        while True:
            statuses = [self.info(i).get("status") for i in log_ids]
            if not any(s in ("SUBMITTED", "RUNNING") for s in statuses) or time.time() > deadline:
                return statuses
            time.sleep(0.1)


@pytest.fixture
def project(tmp_path: Path) -> GitProject:
    """A repository with one commit: the probe, a package beside it, a script in a subdirectory, the configs;
    ``data/`` is ignored by git (data is not code) and ``logs/`` is not (mlxcore recognises its own)."""
    root = tmp_path / "project dir"
    init_repository(root)
    # no bytecode: the tests compare `git status` exactly, and __pycache__/ in helpers/ (imported by the probe)
    # would be an untracked entry or not depending on the caller's environment (CI has no PYTHONDONTWRITEBYTECODE)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "MLXCORE_LOCAL_STATE": str(tmp_path / "local"),
           "MLXCORE_LOG_LEVEL": "INFO", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    proj = GitProject(root, tmp_path / "snapshots", env)
    proj.write("main.py", PROBE)
    proj.write("experiments/run.py", SUBDIR_PROBE)
    proj.write("helpers/__init__.py", "")
    proj.write("helpers/lib.py", "VALUE = 1\n")
    proj.write("configs/config.yaml", yaml.safe_dump(CONFIG))
    proj.write(".gitignore", "data/\n")
    proj.write("data/input.txt", "hello\n")
    proj.commit("first commit")
    return proj


@pytest.fixture
def run_git():
    """``run_git(directory, *args)``: git in any directory (a clone, a second repository)."""
    return git
