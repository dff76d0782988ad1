"""A busy controller on the REAL local SLURM: a submission refused for a passing reason is tried again, a reply
lost after the job was accepted makes no duplicate, a final refusal is reported once.

A real controller cannot be made to time out on cue, so an ``sbatch`` wrapper on PATH injects the failures, in
sbatch's own words, and otherwise runs the real sbatch: every job here is a real one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from slurm_testlib import job_id, run_dirs, wait_status

from mlxcore import store

pytestmark = pytest.mark.usefixtures("slurm_cluster")

TIMED_OUT = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"

#: the wrapper: call N (1, 2, ...) fails as listed in $FAULTS ("refuse" fails without submitting, "lose"
#: submits for real then fails as if the reply were lost); other calls run sbatch
WRAPPER = f'''#!/bin/bash
n=$(( $(cat "$CALLS" 2>/dev/null | wc -l) + 1 )); echo "$*" >> "$CALLS"
fault=$(echo "$FAULTS" | cut -d, -f$n)
case "$fault" in
  refuse) echo "{TIMED_OUT}" >&2; exit 1 ;;
  lose) /usr/bin/sbatch "$@" > /dev/null; echo "{TIMED_OUT}" >&2; exit 1 ;;
  final) echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2; exit 1 ;;
esac
exec /usr/bin/sbatch "$@"
'''


@pytest.fixture
def faulty_sbatch(tmp_path: Path):
    def env(faults: str) -> tuple[dict[str, str], Path]:
        spy = tmp_path / "faulty-bin"
        spy.mkdir(exist_ok=True)
        (spy / "sbatch").write_text(WRAPPER)
        (spy / "sbatch").chmod(0o755)
        calls = tmp_path / "sbatch.calls"
        calls.unlink(missing_ok=True)
        return {"PATH": f"{spy}:{os.environ['PATH']}", "FAULTS": faults, "CALLS": str(calls)}, calls

    return env


def jobs_with_comment(comment: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-O", "JobArrayID:|,Comment:|"], capture_output=True,
                         text=True, check=True).stdout
    return [line.split("|")[0].strip() for line in out.splitlines() if line.split("|")[1].strip() == comment]


def comment_of(run_dir: Path) -> str:
    script = Path((store.read_yaml(run_dir / "metadata" / "scheduler.yaml"))["script"]).read_text()
    return next(line.split("=", 1)[1] for line in script.splitlines() if line.startswith("#SBATCH --comment="))


def test_a_busy_controller_is_asked_again(launch, logs, faulty_sbatch):
    env, calls = faulty_sbatch("refuse,refuse")
    result = launch("x=1,2", "+mlx.scheduler.submit_backoff=0.2", env=env)
    assert calls.read_text().count("\n") == 3
    assert result.stderr.count("trying again in") == 2 and "Socket timed out" in result.stderr, result.stderr
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=60)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 2
    assert len(jobs_with_comment(comment_of(run_dirs(logs)[0]))) == 2  # one array of two tasks, once


def test_a_lost_reply_makes_no_duplicate_job(launch, logs, faulty_sbatch):
    env, calls = faulty_sbatch("lose")
    result = launch("x=1,2", "+mlx.scheduler.submit_backoff=0.2", env=env)
    assert calls.read_text().count("\n") == 1, result.stderr  # found, not submitted again
    assert "but it has the submission" in result.stderr
    dirs = run_dirs(logs)
    base = job_id(dirs[0]).split("_")[0]
    assert [job_id(d) for d in dirs] == [f"{base}_0", f"{base}_1"]
    assert sorted(jobs_with_comment(comment_of(dirs[0]))) == [f"{base}_0", f"{base}_1"]
    rows = wait_status(logs, {store.COMPLETE, store.FAILED}, timeout=60)
    assert [r["status"] for r in rows.values()] == [store.COMPLETE] * 2


def test_a_final_refusal_is_reported_once_and_leaves_no_run(launch, logs, faulty_sbatch):
    env, calls = faulty_sbatch("final")
    result = launch("x=1,2", check=False, env=env)
    assert result.returncode != 0 and calls.read_text().count("\n") == 1
    assert result.stderr.count("Invalid partition name specified") == 1, result.stderr
    assert "trying again" not in result.stderr and run_dirs(logs) == []


def test_a_sweep_over_the_per_user_submit_limit_is_refused_whole(launch, logs):
    """QOS ``mlxcore-limited`` (slurm-up.sh) lets a user queue 4 jobs, array tasks counted one by one. A sweep
    SLURM would refuse part way is refused before anything is written; one that fits goes."""
    limited = "+mlx.scheduler.options=['--qos=mlxcore-limited',--hold]"
    # three arrays of at most 2: SLURM alone would take the first two and refuse the third
    refused = launch("x=1,2,3,4,5", limited, "+mlx.scheduler.max_array_size=2", check=False)
    assert refused.returncode != 0 and run_dirs(logs) == []
    queued = subprocess.run(["squeue", "-h", "-q", "mlxcore-limited"], capture_output=True, text=True).stdout
    assert not queued.strip(), queued  # nothing of it reached SLURM
    assert "MaxSubmitJobsPerUser of QOS mlxcore-limited is 4 and you have 0 queued" in refused.stderr, refused.stderr
    assert "nothing was submitted" in refused.stderr
    launch("x=1,2,3", limited)
    again = launch("x=4,5", limited, check=False)
    assert again.returncode != 0 and "you have 3 queued: 1 more fit" in again.stderr, again.stderr
    assert len(run_dirs(logs)) == 3
    direct = subprocess.run(["sbatch", "--qos=mlxcore-limited", "--hold", "--array=0-1", "--wrap", "true"],
                            capture_output=True, text=True)
    assert direct.returncode != 0 and "QOSMaxSubmitJobPerUserLimit" in direct.stderr  # what SLURM itself says
    subprocess.run(["scancel", *[job_id(d) for d in run_dirs(logs)]], check=True)


#: a real scontrol, except that the cluster's MaxJobCount is said to leave room for two more job records: the
#: real one (20,000) cannot be filled by a test, so this is the one answer a wrapper makes up
SMALL_CLUSTER = '''#!/bin/bash
if [ "$1 $2" = "show config" ]; then
  held=$(squeue -h -t all -o %i | wc -l)
  /usr/bin/scontrol "$@" | sed "s/^MaxJobCount *=.*/MaxJobCount             = $((held + 2))/"
else
  exec /usr/bin/scontrol "$@"
fi
'''


def test_a_sweep_the_clusters_max_job_count_cannot_hold_is_refused_whole(launch, logs, tmp_path):
    """One job per point needs a job record each; an array waits as one record."""
    bin_dir = tmp_path / "small-cluster"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(SMALL_CLUSTER)
    (bin_dir / "scontrol").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    held = "+mlx.scheduler.options=[--hold]"
    refused = launch("x=1,2,3", held, "+mlx.scheduler.array=false", check=False, env=env)
    assert refused.returncode != 0 and run_dirs(logs) == [], refused.stderr
    assert "needs 3 SLURM job record(s), but the cluster's MaxJobCount is" in refused.stderr, refused.stderr
    assert ": 2 more fit" in refused.stderr and "nothing was submitted" in refused.stderr
    launch("x=1,2,3", held, env=env)  # one array: one record
    dirs = run_dirs(logs)
    assert len(dirs) == 3 and len({job_id(d).split("_")[0] for d in dirs}) == 1
    subprocess.run(["scancel", job_id(dirs[0]).split("_")[0]], check=True)


def test_a_packed_sweep_counts_its_jobs_not_its_points_against_the_limit(launch, logs):
    """Six points at pack=3 are two jobs: they fit in a QOS of 4 jobs that six one-point jobs would overflow."""
    limited = "+mlx.scheduler.options=['--qos=mlxcore-limited',--hold]"
    launch("x=1,2,3,4,5,6", limited, "+mlx.scheduler.pack=3")
    dirs = run_dirs(logs)
    jobs = sorted({job_id(d) for d in dirs})
    assert len(dirs) == 6 and len(jobs) == 2, jobs
    subprocess.run(["scancel", jobs[0].split("_")[0]], check=True)
