"""Helpers of the mlx_slurm tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlxcore.testing import WaitTimeout, wait_until

TASK = Path(__file__).resolve().parent / "tasks" / "train.py"


def run(argv: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "MLXCORE_LOG_LEVEL": "INFO", **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def quote(value: str) -> str:
    from mlxcore.overrides import hydra_quote

    return hydra_quote(value)


def run_dirs(logs: Path) -> list[Path]:
    if not logs.exists():
        return []
    return sorted((p for p in logs.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def status_rows(logs: Path, *ids: str) -> dict[int, dict[str, Any]]:
    """``mlxcore status LOGS --json`` as ``{log_id: row}``."""
    result = run([sys.executable, "-m", "mlxcore", "status", str(logs), *ids, "--json"], logs.parent)
    return {row["log_id"]: row for row in json.loads(result.stdout)}


def wait_status(logs: Path, accept: set[str], timeout: float = 60, ids: tuple[str, ...] = (),
                count: int | None = None, exit_code: bool = False) -> dict[int, dict[str, Any]]:
    """Poll ``mlxcore status`` until every run's status is in ``accept`` (and, with ``exit_code``, its job's
    exit code is known), or the timeout passes."""
    seen: dict[int, dict[str, Any]] = {}

    def settled() -> bool:
        seen.clear()
        seen.update(status_rows(logs, *ids))
        return bool(seen) and all(row["status"] in accept and (not exit_code or row["exit_code"] is not None)
                                  for row in seen.values()) and (count is None or len(seen) == count)

    try:
        wait_until(settled, timeout=timeout, interval=0.3, what=f"runs to be {' or '.join(sorted(accept))}")
    except WaitTimeout:
        pass  # the caller's assertion shows the rows as last seen
    return seen


def wait_for_text(path: Path, text: str, timeout: float = 60) -> None:
    wait_until(lambda: path.exists() and text in path.read_text(), timeout=timeout, what=f"{text!r} in {path}")


def job_id(run_dir: Path) -> str:
    from mlxcore.schedulers.submission import read_scheduler_record

    record = read_scheduler_record(run_dir)
    assert record is not None, f"{run_dir} has no scheduler record"
    return str(record["job_id"])


def read_info(run_dir: Path) -> dict[str, Any]:
    from mlxcore import store

    return store.read_yaml(run_dir / "metadata" / "info.yaml")


def metrics(run_dir: Path, name: str) -> list[dict[str, Any]]:
    path = run_dir / "metrics" / f"{name}.json"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


