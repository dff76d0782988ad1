"""``mlxsub job.sh`` / ``mlxcore sub job.sh`` on the REAL local SLURM: the batch script is read, never run here;
its sweeps become one array of mlxcore runs; its other lines run, in order, inside each job."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from slurm_testlib import TASK, job_id, metrics, read_info, run, run_dirs, wait_status

from mlxcore import store

pytestmark = pytest.mark.usefixtures("slurm_cluster")

JOB_SH = """\
#!/bin/bash
#SBATCH --time=5
#SBATCH --mem=100M
#SBATCH --output=/tmp/mlxsub-test-ignored-%j.out
# a comment
export GREETING=hello
source ./env.sh
test -n "${SLURM_JOB_ID:-}" || touch ran-outside-a-job
python main.py x=1,2 seed=5,6 \\
    mode=ok
python main.py x=10,20
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "sub project 'q'"
    (root / "configs").mkdir(parents=True)
    (root / "main.py").write_text(TASK.read_text())
    (root / "configs" / "config.yaml").write_text((TASK.parent / "configs" / "config.yaml").read_text())
    # what a user's env.sh does: activate the environment mlxcore is installed in (never whatever PATH held)
    bin_dir = Path(sys.executable).parent
    activate = f"source {bin_dir}/activate" if (bin_dir / "activate").exists() else f"export PATH={bin_dir}:$PATH"
    (root / "env.sh").write_text(f'export GREETING="$GREETING and env.sh"\n{activate}\n')
    (root / "job.sh").write_text(JOB_SH)
    return root


def mlxsub() -> str:
    path = Path(sys.executable).parent / "mlxsub"
    assert path.exists(), f"the mlxsub console script is not installed next to {sys.executable}: pip install -e ."
    return str(path)


def test_mlxsub_submits_the_product_of_each_sweep_as_one_array(project):
    dry = run([mlxsub(), "job.sh", "--dry-run"], project)
    assert "would submit 6 job(s) to slurm as one array" in dry.stdout
    assert "directive: --time=5" in dry.stdout and "setup:     source ./env.sh" in dry.stdout
    assert not (project / "logs").exists()  # a dry run creates nothing

    result = run([mlxsub(), "job.sh"], project)
    assert "submitted 6 run(s) (log ids 1-6) to slurm" in result.stdout
    assert "ignoring SLURM option '--output=" in result.stderr  # mlxcore puts the output in the run directory
    assert not (project / "ran-outside-a-job").exists()  # the script's lines did not run on this machine
    logs = project / "logs"
    dirs = run_dirs(logs)
    assert [read_info(d)["status"] for d in dirs] == [store.SUBMITTED] * 6
    assert len({job_id(d).split("_")[0] for d in dirs}) == 1  # one array job
    assert [read_info(d)["batch_line"] for d in dirs] == [9, 9, 9, 9, 11, 11]

    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=120)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 6, [
        (d / "log.stderr").read_text() for d in dirs if (d / "log.stderr").exists()]
    configs = [store.read_yaml(d / "metadata" / "config.yaml") for d in dirs]
    assert sorted((c["x"], c["seed"], c["mode"]) for c in configs) == [
        (1, 5, "ok"), (1, 6, "ok"), (2, 5, "ok"), (2, 6, "ok"), (10, 0, "ok"), (20, 0, "ok")]
    assert {metrics(d, "train")[0]["greeting"] for d in dirs} == {"hello and env.sh"}  # the lines ran in order
    assert not (project / "ran-outside-a-job").exists()  # ... inside the jobs, where SLURM_JOB_ID is set
    assert all(read_info(d)["working_directory"] == str(project) for d in dirs)


def test_mlxcore_sub_without_array_and_with_a_bad_script(project):
    dry = run([sys.executable, "-m", "mlxcore", "sub", "job.sh", "--dry-run", "--no-array"], project)
    assert "would submit 6 job(s) to slurm\n" in dry.stdout
    (project / "empty.sh").write_text("#!/bin/bash\n#SBATCH --time=5\necho no python here\n")
    result = run([mlxsub(), "empty.sh"], project, check=False)
    assert result.returncode == 2 and "no 'python SCRIPT.py ...' or 'python -m MODULE ...' line" in result.stderr
    assert not (project / "logs").exists()
