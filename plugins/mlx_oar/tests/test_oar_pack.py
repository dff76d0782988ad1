"""Packing on the REAL local OAR (``+mlx.scheduler.pack=K``): K points per OAR job, each in its own run.

The pack job runs ``python -m mlxcore.schedulers.pack`` through the shared job script (OAR hands each array job
its pack directory and command, as it does a one-point job's run directory); its points run one at a time on
the job's core and write their own run directories. Status follows the pack's OAR job for each point.
"""

from __future__ import annotations

import pytest
from oar_testlib import metrics, oar_records, read_info, record, run_dirs, statuses, wait_states

from mlxcore import store

pytestmark = pytest.mark.usefixtures("oar_cluster")


def test_a_packed_sweep_runs_two_points_per_oar_job_each_in_its_own_run(launch, logs):
    result = launch("x=1,2,3,4", "+mlx.scheduler.pack=2")
    dirs = run_dirs(logs)
    assert [d.name for d in dirs] == ["1", "2", "3", "4"], result.stderr
    records = [record(d) for d in dirs]
    jobs = [r["job_id"] for r in records]
    assert jobs[0] == jobs[1] != jobs[2] == jobs[3], jobs  # two OAR jobs, two points each
    assert records[0]["pack"] == records[1]["pack"] != records[2]["pack"], records
    oar = oar_records(jobs[0], jobs[2])
    assert all("mlxcore.schedulers.pack" in oar[j]["command"] for j in (jobs[0], jobs[2])), oar
    found = wait_states(logs, {store.COMPLETE, store.FAILED, store.CANCELLED}, timeout=300, count=4)
    assert statuses(found) == [store.COMPLETE] * 4, [(d / "log.stderr").read_text()[-2000:] for d in dirs]
    for job, run_dir in zip(jobs, dirs):
        info = read_info(run_dir)
        assert info["scheduler"] == {"name": "oar", "job_id": job} and "history" not in info, info
        assert metrics(run_dir)[0]["x"] == int(run_dir.name)  # each point ran its own config, once
        assert info["allocation"]["cpus"] == 1  # the pack job's one core, from $OAR_NODEFILE
