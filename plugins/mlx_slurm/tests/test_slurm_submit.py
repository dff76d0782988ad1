"""Submission and arrays on the REAL local SLURM (conftest brings it up)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from slurm_testlib import TASK, job_id, metrics, read_info, run, run_dirs, wait_status

from mlxcore import store
from mlxcore.schedulers.submission import read_scheduler_record

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def test_a_six_point_sweep_is_one_array_and_completes(launch, logs):
    result = launch("x=1,2,3", "seed=1,2", "+mlx.scheduler.time=5", "+mlx.scheduler.cpus_per_task=1",
                    "+mlx.scheduler.mem=100M")
    dirs = run_dirs(logs)
    assert [d.name for d in dirs] == ["1", "2", "3", "4", "5", "6"]
    records = [read_scheduler_record(d) for d in dirs]
    array_ids = {r["job_id"].split("_")[0] for r in records}
    assert len(array_ids) == 1, records  # ONE array job
    (array_id,) = array_ids
    assert [r["job_id"] for r in records] == [f"{array_id}_{i}" for i in range(6)]
    assert all(r["submit_time"] and Path(r["script"]).exists() and r["array"] for r in records)
    assert "submitted 6 run(s)" in result.stderr
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=90)
    assert [rows[i]["status"] for i in range(1, 7)] == [store.COMPLETE] * 6, rows
    for d in dirs:
        info = read_info(d)
        assert info["scheduler"]["name"] == "slurm" and info["scheduler"]["job_id"]  # SLURM_JOB_ID, recorded by the run
        assert (d / "log.stdout").exists() and (d / "log.stderr").exists()
    assert sorted((m[0]["x"], read_info(d)["overrides"][1]) for d in dirs for m in [metrics(d, "train")]) == \
        [(1, "seed=1"), (1, "seed=2"), (2, "seed=1"), (2, "seed=2"), (3, "seed=1"), (3, "seed=2")]


def test_submitted_runs_are_submitted_until_they_start(launch, logs):
    launch("x=1,2", "mode=sleep", "sleep=30", "+mlx.scheduler.options=[--hold]")  # held: never starts
    dirs = run_dirs(logs)
    assert [read_info(d)["status"] for d in dirs] == [store.SUBMITTED] * 2
    rows = wait_status(logs, {store.PENDING}, timeout=20)
    assert [r["status"] for r in rows.values()] == [store.PENDING] * 2
    assert all(r["detail"] == "JobHeldUser" for r in rows.values())
    run(["scancel", *[job_id(d) for d in dirs]], logs.parent)
    rows = wait_status(logs, {store.CANCELLED}, timeout=30)
    assert [r["status"] for r in rows.values()] == [store.CANCELLED] * 2


def test_one_job_per_point_when_arrays_are_off(launch, logs):
    launch("x=1,2,3", "+mlx.scheduler.array=false")
    dirs = run_dirs(logs)
    ids = [job_id(d) for d in dirs]
    assert all("_" not in i for i in ids) and len(set(ids)) == 3
    assert all((d / "script.sh").exists() for d in dirs)
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=60)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 3


def test_throttle_and_split_at_the_max_array_size(launch, logs):
    launch("x=range(5)", "+mlx.scheduler.max_array_size=2", "+mlx.scheduler.array_throttle=1")
    ids = [job_id(d) for d in run_dirs(logs)]
    bases = [i.split("_")[0] for i in ids]
    # two arrays of 2, and the one point left over as a plain job
    assert len(set(bases)) == 3 and [i.partition("_")[2] for i in ids] == ["0", "1", "0", "1", ""]
    shown = subprocess.run(["scontrol", "-o", "show", "job", bases[0]], capture_output=True, text=True).stdout
    assert "ArrayTaskThrottle=1" in shown
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=90)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 5


def test_the_cluster_max_array_size_is_read(slurm_cluster):
    from mlx_slurm.scheduler import SlurmScheduler

    scheduler = SlurmScheduler()
    scheduler.check_available()
    shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", shown, re.MULTILINE)  # the running cluster's own limit
    assert match is not None and scheduler.max_array_size == int(match.group(1))


def test_sbatch_refusing_a_directive_is_quoted_and_leaves_no_run(launch, logs):
    result = launch("x=1,2", "+mlx.scheduler.partition=nosuchpartition", check=False)
    assert result.returncode == 2
    assert "sbatch failed" in result.stderr and "invalid partition specified: nosuchpartition" in result.stderr
    assert run_dirs(logs) == []


def test_an_unknown_option_lists_the_valid_ones_and_leaves_no_run(launch, logs):
    result = launch("x=1,2", "+mlx.scheduler.cpus=4", check=False)
    assert result.returncode == 2
    assert "cpus_per_task" in result.stderr and "partition" in result.stderr and "array_throttle" in result.stderr
    assert run_dirs(logs) == []


def test_no_sbatch_on_path_says_what_the_plugin_needs(launch, logs, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = launch("x=1", check=False, env={"PATH": str(empty)})
    assert result.returncode == 2 and "needs SLURM's client tools" in result.stderr, result.stderr
    assert run_dirs(logs) == []


def test_unparsable_sbatch_output_is_quoted_and_leaves_no_submitted_run(launch, logs, tmp_path):
    """A real sbatch --parsable always prints an id; a fake one (this test only) prints something else."""
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    for tool in ("squeue", "scancel", "scontrol"):
        (fake / tool).symlink_to(f"/usr/bin/{tool}")
    (fake / "sbatch").write_text("#!/bin/sh\necho 'sbatch: queue is closed for maintenance'\n")
    (fake / "sbatch").chmod(0o755)
    result = launch("x=1,2", check=False, env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert result.returncode == 2
    assert "sbatch --parsable printed no job id: 'sbatch: queue is closed for maintenance'" in result.stderr
    assert run_dirs(logs) == []


def test_paths_with_spaces_and_quotes_work_in_the_work_directory_too(slurm_cluster, tmp_path):
    project = tmp_path / "my project's \"dir\""
    (project / "configs").mkdir(parents=True)
    (project / "main.py").write_text(TASK.read_text())
    (project / "configs" / "config.yaml").write_text((TASK.parent / "configs" / "config.yaml").read_text())
    run([sys.executable, "main.py", "x=7", "+mlx.use_scheduler=true", "+mlx.scheduler.name=slurm"], project)
    logs = project / "logs"
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=60)
    assert rows[1]["status"] == store.COMPLETE, (logs / "1" / "log.stderr").read_text()
    assert read_info(logs / "1")["working_directory"] == str(project)

