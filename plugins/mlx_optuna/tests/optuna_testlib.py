"""Helpers of the mlx_optuna tests (plain functions and classes; the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TASK = Path(__file__).resolve().parent / "tasks" / "search_task.py"
SEARCH = ("+mlx.sweeper.name=optuna", "+mlx.sweeper.metric=train.loss")


@dataclass
class Search:
    """A working directory whose logs directory is ``logs``; :meth:`run` launches the task there."""

    root: Path

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, str(TASK), *SEARCH, *args, f"+mlx.logger.parent_log_dir={self.logs}"]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), cwd=self.root, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "MLXCORE_LOG_LEVEL": "INFO"})

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.command(*args), cwd=self.root, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "MLXCORE_LOG_LEVEL": "INFO"})

    def start_capturing(self, *args: str) -> subprocess.Popen:
        """:meth:`start`, its stdout and stderr going to ``again.out`` and ``again.err`` in the root."""
        with open(self.root / "again.out", "w") as out, open(self.root / "again.err", "w") as err:
            return subprocess.Popen(self.command(*args), cwd=self.root, stdout=out, stderr=err,
                                    env={**os.environ, "MLXCORE_LOG_LEVEL": "INFO"})

    def run_ids(self) -> list[int]:
        if not self.logs.exists():
            return []
        return sorted(int(p.name) for p in self.logs.iterdir() if p.name.isdigit())

    def info(self, log_id: int) -> dict[str, Any]:
        return yaml.safe_load((self.logs / str(log_id) / "metadata" / "info.yaml").read_text())

    def rows(self, log_id: int, stream: str = "train") -> list[dict[str, Any]]:
        """The rows of a run's stream, as written on disk."""
        from mlxcore.store import layout

        path = layout.RunPaths(self.logs / str(log_id)).stream(stream)
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def trials(self) -> dict[int, dict[str, Any]]:
        """``{log_id: info.trial}`` of every run."""
        return {log_id: self.info(log_id)["trial"] for log_id in self.run_ids()}

    def studies(self) -> list[Any]:
        """Every study of the logs directory's journal, loaded fresh."""
        import optuna
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        storage = JournalStorage(JournalFileBackend(str(self.logs / ".optuna" / "journal.log")))
        return [optuna.load_study(study_name=s.study_name, storage=storage) for s in optuna.get_all_study_summaries(
            storage)]


def check(result: subprocess.CompletedProcess, code: int = 0) -> subprocess.CompletedProcess:
    assert result.returncode == code, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@contextmanager
def blocked(process: subprocess.Popen, marker: Path, what: str, timeout: float = 60) -> Iterator[str]:
    """Once the blocking trial of ``process`` wrote ``marker`` (``<trial number> <log id>``): that line. The process
    is killed at the end if it still runs (a failed test leaves no launcher behind)."""
    from mlxcore.testing import wait_until

    try:
        yield wait_until(lambda: marker.exists() and marker.read_text().strip(), timeout=timeout, what=what)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
