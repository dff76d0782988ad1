"""Accounting on the REAL local SLURM (slurm-up.sh starts slurmdbd with MariaDB): ``mlxcore status`` asks
``squeue`` about live jobs and ONE ``sacct`` about the jobs that ended or left the queue, and shows what each
job used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_testlib import job_id, run, run_dirs, status_rows, wait_status

from mlxcore import store
from mlxcore.testing import wait_until

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def spy_bin(tmp_path: Path, *commands: str) -> tuple[dict[str, str], dict[str, Path]]:
    """Wrappers on PATH that count their calls and run the real command: the answers are the cluster's."""
    spy = tmp_path / "spy-bin"
    spy.mkdir(exist_ok=True)
    calls = {}
    for command in commands:
        calls[command] = tmp_path / f"{command}.calls"
        (spy / command).write_text(f'#!/bin/sh\necho "$*" >> "{calls[command]}"\nexec /usr/bin/{command} "$@"\n')
        (spy / command).chmod(0o755)
    return {"PATH": f"{spy}:{os.environ['PATH']}"}, calls


def count(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def test_a_finished_job_shows_what_it_used(launch, logs):
    launch("x=1,2")
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=60)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 2, rows

    def accounted() -> dict | None:
        rows = status_rows(logs)
        return rows if all(r["elapsed_s"] is not None for r in rows.values()) else None

    rows = wait_until(accounted, timeout=20, what="sacct to record both jobs")
    for row in rows.values():
        assert row["native_state"] == "COMPLETED" and row["nodes"] == "localhost", row
        assert row["cpus"] >= 1 and row["elapsed_s"] >= 0 and row["cpu_hours"] == row["elapsed_s"] * row["cpus"] / 3600
        assert row["gpus"] == 0 and row["gpu_hours"] == 0


def test_one_status_makes_one_squeue_and_one_sacct_call(launch, logs, tmp_path):
    launch("x=1,2,3")
    launch("x=4", "mode=fail")
    launch("x=5,6", "+mlx.scheduler.options=[--hold]")
    wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=60, ids=("1-4",))
    env, calls = spy_bin(tmp_path, "squeue", "sacct")
    rows = status_rows_with(logs, env)
    assert count(calls["squeue"]) == 1 and count(calls["sacct"]) == 1, (calls["squeue"].read_text(),
                                                                       calls["sacct"].read_text())
    asked = set(calls["sacct"].read_text().split(" -j ", 1)[1].split()[0].split(","))
    ended = {job_id(d).split("_")[0] for d in run_dirs(logs)[:4]}
    assert asked == ended, (asked, ended)  # the held jobs wait: squeue alone answers for them
    assert [rows[i]["status"] for i in range(1, 7)] == [store.COMPLETE] * 3 + [store.FAILED] + [store.PENDING] * 2
    run([sys.executable, "-m", "mlxcore", "cancel", str(logs), "--all"], logs.parent)


def status_rows_with(logs: Path, env: dict[str, str]) -> dict[int, dict]:
    import json

    result = run([sys.executable, "-m", "mlxcore", "status", str(logs), "--json"], logs.parent, env=env)
    return {row["log_id"]: row for row in json.loads(result.stdout)}


def test_accounting_off_is_said_once(launch, logs, tmp_path):
    """A cluster without slurmdbd cannot be had beside this session's cluster: this ``sacct`` answers what the
    real one answers there (recorded on SLURM 22.05: the message and exit code 1), and ``squeue`` is real."""
    launch("x=1,2")
    wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=60)
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "sacct").write_text("#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n")
    (fake / "sacct").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    script = ("import logging, sys; logging.basicConfig(level=logging.WARNING)\n"
              "from mlxcore.schedulers.observe import observe\n"
              f"for _ in range(3): states = observe({str(logs)!r})\n"
              "print([s.status for s in states], [s.usage for s in states])\n")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("SLURM accounting is off on this cluster") == 1, result.stderr
    assert "['COMPLETE', 'COMPLETE'] [None, None]" in result.stdout
    cli = run([sys.executable, "-m", "mlxcore", "status", str(logs)], logs.parent, env=env)
    assert cli.stderr.count("accounting is off") == 1 and "2 COMPLETE" in cli.stdout, cli.stderr


def test_per_point_memory_is_one_array_per_size(launch, logs):
    """``mem: ${model.mem}``: each point asks for its own memory, one array per size; SLURM's record of each job
    says what it requested (this cluster does not make memory a consumable resource, so sacct's allocation
    holds no memory: ReqMem does)."""
    launch("+model.mem=100M,200M", "x=1,2", "+mlx.scheduler.mem=${model.mem}")
    dirs = run_dirs(logs)
    records = {d.name: store.read_yaml(d / "metadata" / "scheduler.yaml") for d in dirs}
    assert len({r["job_id"].split("_")[0] for r in records.values()}) == 2  # two arrays
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=60)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 4
    for d in dirs:
        mem = store.read_yaml(d / "metadata" / "config.yaml")["model"]["mem"]
        assert records[d.name]["resources"] == {"mem": mem}
        argv = ["sacct", "-n", "-P", "-X", "-j", records[d.name]["job_id"], "-o", "ReqMem"]
        requested = wait_until(lambda a=argv: subprocess.run(a, capture_output=True, text=True, check=True
                                                             ).stdout.split(), timeout=30,
                               what=f"sacct to record job {records[d.name]['job_id']}")  # it lags behind arrays
        assert requested == [mem], (requested, mem)
