"""Submission, arrays, status and cancel, and ``mlxcore sub`` on the REAL local OAR (conftest brings it up)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from oar_testlib import (
    job_ids,
    metrics,
    oar_records,
    read_info,
    record,
    run,
    run_dirs,
    status_json,
    statuses,
    wait_for,
    wait_states,
)

from mlxcore import store

pytestmark = pytest.mark.usefixtures("oar_cluster")


def test_a_four_point_sweep_is_one_array_and_completes(launch, logs):
    result = launch("x=1,2", "seed=1,2", "+tag='x#y z'", "+mlx.scheduler.time=0:05:00",
                    "+mlx.scheduler.cpus_per_task=1")
    dirs = run_dirs(logs)
    assert [d.name for d in dirs] == ["1", "2", "3", "4"]
    assert "submitted 4 run(s)" in result.stderr
    records = [record(d) for d in dirs]
    ids = [r["job_id"] for r in records]
    assert all(r["array"] and r["submit_time"] and r["script"] == records[0]["script"] for r in records)
    oar = oar_records(*ids)
    assert len({oar[i]["array_id"] for i in ids}) == 1  # ONE OAR array job
    assert [oar[i]["array_index"] for i in ids] == [1, 2, 3, 4]
    for i, d in zip(ids, dirs):  # --array-param-file: each array job carries its run directory and command
        command = oar[i]["command"]
        assert command.startswith("./job.sh ")
        words = run(["bash", "-c", f"set -- {command[len('./job.sh '):]}; printf '%s\\0' \"$@\""], d).stdout.split("\0")
        assert words[0] == str(d) and f"+mlx.logger.forced_log_id={d.name}" in words and "+tag='x#y z'" in words
        assert "core=1" in oar[i]["wanted_resources"] and "walltime=0:5:0" in oar[i]["wanted_resources"]
        assert "#OAR --checkpoint 120; #OAR --signal 12" in oar[i]["initial_request"]
    found = wait_states(logs, {store.COMPLETE, store.FAILED}, timeout=90)
    assert statuses(found) == [store.COMPLETE] * 4, [(d / "log.stderr").read_text() for d in dirs]
    for job_id, d in zip(ids, dirs):
        info = read_info(d)
        assert info["scheduler"] == {"name": "oar", "job_id": job_id}  # $OAR_JOB_ID, recorded by the run
        assert info["submit_time"] and job_ids(d) == [job_id]
        assert (Path(records[0]["script"]).parent / "oar" / f"{job_id}.stderr").resolve() == d / "log.stderr"
    seeds = [next(o for o in read_info(d)["overrides"] if o.startswith("seed=")) for d in dirs]
    assert sorted(zip((metrics(d)[0]["x"] for d in dirs), seeds)) == \
        [(1, "seed=1"), (1, "seed=2"), (2, "seed=1"), (2, "seed=2")]
    import yaml

    assert yaml.safe_load((dirs[0] / "metadata" / "config.yaml").read_text())["tag"] == "x#y z"


def test_one_job_per_point_when_arrays_are_off(launch, logs):
    launch("x=1,2", "+mlx.scheduler.array=false")
    dirs = run_dirs(logs)
    ids = [record(d)["job_id"] for d in dirs]
    assert all((d / "script.sh").exists() and not record(d)["array"] for d in dirs)
    oar = oar_records(*ids)
    assert [oar[i]["command"] for i in ids] == ["./script.sh", "./script.sh"]
    assert len({oar[i]["array_id"] for i in ids}) == 2
    found = wait_states(logs, {store.COMPLETE, store.FAILED}, timeout=90)
    assert statuses(found) == [store.COMPLETE] * 2


def test_status_shows_failed_for_a_non_zero_exit(launch, logs):
    launch("mode=exit,fail")
    exited, raised = run_dirs(logs)
    wait_states(logs, {store.FAILED, store.COMPLETE}, timeout=90)
    rows = status_json(logs)  # the real `mlxcore status --json`
    assert rows[int(exited.name)]["status"] == store.FAILED and rows[int(exited.name)]["exit_code"] == 5
    assert read_info(exited)["status"] == store.RUNNING  # os._exit: only OAR's exit code tells the failure
    assert rows[int(raised.name)]["status"] == store.FAILED
    assert rows[int(raised.name)]["detail"] == "ValueError: oar test failure"
    table = run([sys.executable, "-m", "mlxcore", "status", str(logs)], logs.parent).stdout
    assert "2 FAILED" in table


def test_held_jobs_are_pending_until_mlxcore_cancel_cancels_them(launch, logs):
    launch("x=1,2", '+mlx.scheduler.options=["--hold"]')
    dirs = run_dirs(logs)
    found = wait_states(logs, {store.PENDING}, timeout=30)
    assert statuses(found) == [store.PENDING] * 2
    assert all(s.detail == "held (oarresume releases it)" for s in found.values())
    result = run([sys.executable, "-m", "mlxcore", "cancel", str(logs), "--all"], logs.parent)
    assert "cancelled 2 run(s) on oar (1, 2)" in result.stdout
    found = wait_states(logs, {store.CANCELLED}, timeout=30)
    assert statuses(found) == [store.CANCELLED] * 2
    assert all((d / "metadata" / "cancel_requested").exists() for d in dirs)
    jobs = [record(d)["job_id"] for d in dirs]
    # oardel returns before OAR's server has moved a held job to Error: wait for it, as for the states above
    wait_for(lambda: {r["state"] for r in oar_records(*jobs).values()} == {"Error"}, 30, "OAR to delete the held jobs")


def test_mlxcore_sub_submits_a_script_with_oar_directives(submitter, project, logs):
    script = project / "job.sh"
    script.write_text("#!/bin/bash\n"
                      "#OAR -l core=1,walltime=0:05:00\n"
                      "#OAR --project mlxtests\n"
                      "#OAR -O ignored.%jobid%.out\n"
                      "export GREETING='hello #1'\n"
                      f"{submitter.python} main.py \\\n    x=3,4\n")
    if submitter.owner:
        import shutil

        shutil.chown(script, submitter.owner, submitter.owner)
    result = submitter.command(project, submitter.tool("mlxcore"), "sub", "job.sh")
    assert "submitted 2 run(s) (log ids 1-2) to oar" in result.stdout
    assert "ignoring OAR option '-O ignored.%jobid%.out'" in result.stderr
    dirs = run_dirs(logs)
    job_script = Path(record(dirs[0])["script"]).read_text()
    assert "#OAR -l core=1,walltime=0:05:00\n#OAR --project mlxtests\n" in job_script
    assert "export GREETING='hello #1'" in job_script and "ignored" not in job_script
    oar = oar_records(*[record(d)["job_id"] for d in dirs])
    assert {r["project"] for r in oar.values()} == {"mlxtests"} and len({r["array_id"] for r in oar.values()}) == 1
    found = wait_states(logs, {store.COMPLETE, store.FAILED}, timeout=90)
    assert statuses(found) == [store.COMPLETE] * 2, [(d / "log.stderr").read_text() for d in dirs]
    assert sorted(metrics(d)[0]["x"] for d in dirs) == [3, 4]


def test_status_shows_what_finished_jobs_used_from_oars_records(launch, logs):
    """OAR keeps every job in its database: its finished-job records are its accounting."""
    launch("x=1,2", "+mlx.scheduler.cpus_per_task=1")
    found = wait_states(logs, {store.COMPLETE, store.FAILED}, timeout=90)
    assert statuses(found) == [store.COMPLETE] * 2
    rows = status_json(logs)
    for row in rows.values():
        assert row["native_state"] == "Terminated" and row["cpus"] == 1 and row["nodes"], row
        assert row["elapsed_s"] is not None and row["elapsed_s"] >= 0, row
        assert row["cpu_hours"] == row["elapsed_s"] / 3600 and row["gpu_hours"] is None
