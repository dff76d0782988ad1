"""A search on the REAL local OAR: trials as OAR array jobs, in waves, while the launcher waits for them.

The sweeper is the ``ladder`` of the core's tests (``tests/apps/sweep_app.py``: a third-party sweeper the script
registers itself, so the jobs know it too; the Optuna plugin's own cluster test runs on SLURM). Each wave of
``parallel`` trials is one OAR array; the launcher watches the runs through the run store and ``oarstat`` and
starts the next wave when the last one ended. The jobs see their trial (``ctx.trial``) and one is pruned.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from oar_testlib import read_info, record, run, run_dirs

from mlxcore.sweepers.objective import read_metric

pytestmark = pytest.mark.usefixtures("oar_cluster")

SWEEP_APP = Path(__file__).resolve().parents[3] / "tests" / "apps" / "sweep_app.py"


def test_a_search_runs_its_trials_as_oar_arrays_in_waves(submitter, project, logs):
    shutil.copy(SWEEP_APP, project / "main.py")
    (project / "configs" / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "x": 0.0, "y": 0, "fail_at": None}))
    if submitter.owner:
        for path in (project / "main.py", project / "configs" / "config.yaml"):
            shutil.chown(path, submitter.owner, submitter.owner)
    argv = [*submitter.prefix, submitter.python, str(project / "main.py"), "x=interval(0,2)",
            "+mlx.sweeper.name=ladder", "+mlx.sweeper.n_trials=4", "+mlx.sweeper.parallel=2",
            "+mlx.sweeper.prune_above=1.5", "+mlx.use_scheduler=true"]
    result = run(argv, project, check=False, env=submitter.env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    dirs = run_dirs(logs)
    assert [d.name for d in dirs] == ["1", "2", "3", "4"], result.stderr[-3000:]
    infos = [read_info(d) for d in dirs]
    # x = 0, 2/3, 4/3, 2: the first loss of x=0 and x=2 is 2 > 1.5, pruned in their jobs
    assert [i["status"] for i in infos] == ["PRUNED", "COMPLETE", "COMPLETE", "PRUNED"], infos
    assert [i["trial"]["state"] for i in infos] == ["PRUNED", "COMPLETE", "COMPLETE", "PRUNED"]
    jobs = [record(d)["job_id"] for d in dirs]
    assert len(set(jobs)) == 4 and all(i["scheduler"]["name"] == "oar" for i in infos), jobs
    # two waves: the second was submitted once the first had ended
    first_end = max(i["end_time"] for i in infos[:2])
    assert all(i["submit_time"] >= first_end for i in infos[2:]), [(i["submit_time"], i["end_time"]) for i in infos]
    for run_dir, info in zip(dirs, infos):
        assert read_metric(run_dir, "train.trial") == info["trial"]["number"]  # the job saw its own trial
        assert (run_dir / "ladder-reports.jsonl").exists()
