"""OUT_OF_MEMORY, and the task's own failure when asked, resubmitted by the failed job itself.

On the REAL local SLURM with memory enforcement (slurm-up.sh: task/cgroup, CR_Core_Memory): a task that
holds more than its ``--mem`` is killed by the kernel, the batch shell sees it and ``mlx_slurm.retry`` sends the
attempt again with twice the memory, in the same run directory. The logic of the decision and the cgroup
reading are also tested on recorded files (``oom_killed``), which needs no cluster.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from slurm_testlib import metrics, read_info, run_dirs, wait_for_text, wait_status

from mlx_slurm.retry import Attempt, RetryPolicy, decide, megabytes, oom_killed, show_mb
from mlxcore import store
from mlxcore.errors import ConfigError
from mlxcore.testing import wait_until

ENDED = {store.COMPLETE, store.FAILED, store.CANCELLED, store.TIMEOUT}


@pytest.fixture
def memory_enforced(slurm_cluster) -> None:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    if "task/cgroup" not in config or "MEMORY" not in config.upper().split("SELECTTYPEPARAMETERS", 1)[-1][:80]:
        refuse = pytest.fail if os.environ.get("CI") == "true" else pytest.skip  # CI never skips cluster tests
        refuse("this SLURM does not enforce memory (slurm-up.sh falls back to SLURM_CI_MEMORY=none without a "
                    "writable cgroup v1 memory controller): OUT_OF_MEMORY cannot happen here")


def history_attempts(info: dict) -> list[dict]:
    return [h for h in info.get("history", []) if "attempt" in h]


@pytest.mark.usefixtures("memory_enforced")
def test_a_run_killed_for_its_memory_is_resubmitted_with_twice_the_memory_until_it_fits(launch, logs):
    """Two points in one array: the one that fits completes once; the one holding 500 MB under 150M is killed
    at 150M and 300M and completes at 600M, each attempt in its history with its memory and reason."""
    launch("mode=hog", "hog=0,500", "+mlx.scheduler.mem=150M")
    # COMPLETE only: between a kill and its resubmission the run shows the killed job's FAILED for a moment
    rows = wait_status(logs, {store.COMPLETE}, timeout=120, count=2)
    small, big = run_dirs(logs)
    assert [rows[1]["status"], rows[2]["status"]] == [store.COMPLETE] * 2, (rows, (big / "log.stderr").read_text())
    assert "history" not in read_info(small) and "retries" not in store.read_yaml(small / "metadata/scheduler.yaml")

    info = read_info(big)
    ended = history_attempts(info)
    assert [h["status"] for h in ended] == [store.DEAD, store.DEAD], info["history"]
    assert [h["resources"]["mem"] for h in ended] == ["150M", "300M"], ended
    assert [h["error"]["type"] for h in ended] == ["OUT_OF_MEMORY"] * 2, ended
    assert ended[0]["error"]["message"].endswith("ended OUT_OF_MEMORY with 150M"), ended
    assert [h["started_because"] for h in ended] == [None, "OUT_OF_MEMORY"], ended
    assert info["started_because"] == "OUT_OF_MEMORY" and info["resources"] == {"mem": "600M"}, info
    assert info["attempt"] == 3
    (last,) = metrics(big, "attempts")[-1:]
    assert last["mem"] == "600" and last["because"] == "OUT_OF_MEMORY", last

    record = store.read_yaml(big / "metadata/scheduler.yaml")
    assert [(r["reason"], r["mem"]) for r in record["retries"]] == [("OUT_OF_MEMORY", "150M"),
                                                                      ("OUT_OF_MEMORY", "300M")], record
    assert record["job_id"].endswith("_1") and record["resources"] == {"mem": "600M"}, record
    # SLURM's own record of each killed attempt agrees (slurmdbd may lag behind the controller by a moment)
    def states() -> list[str]:
        return subprocess.run(["sacct", "-n", "-P", "-X", "-j", ",".join(r["job_id"] for r in record["retries"]),
                               "-o", "State"], capture_output=True, text=True, check=True).stdout.split()

    wait_until(lambda: len(states()) == 2, timeout=30, what="sacct to record both killed attempts")
    assert states() == ["OUT_OF_MEMORY", "OUT_OF_MEMORY"], states()
    assert (big / "log.stderr").read_text().count("resubmitted as SLURM job") == 2


@pytest.mark.usefixtures("memory_enforced")
def test_a_run_killed_at_the_memory_cap_is_failed_saying_so(launch, logs):
    launch("mode=hog", "hog=500", "+mlx.scheduler.mem=150M", "+mlx.scheduler.retry={max_mem: 300M}")
    (run_dir,) = run_dirs(logs)
    # the killed attempt at 150M shows FAILED for a moment before its resubmission: wait for the last word
    wait_for_text(run_dir / "log.stderr", "not resubmitted", timeout=120)
    rows = wait_status(logs, ENDED, timeout=120, count=1)
    (row,) = rows.values()
    assert row["status"] == store.FAILED, (row, (run_dir / "log.stderr").read_text())
    assert "OUT_OF_MEMORY with 300M, the cap mlx.scheduler.retry.max_mem=300M: not resubmitted" in row["detail"], row
    assert [h["resources"]["mem"] for h in history_attempts(read_info(run_dir))] == ["150M"]


def test_the_tasks_own_failure_is_resubmitted_only_when_asked(launch, logs):
    launch("mode=fail", "x=1")
    launch("mode=fail", "x=2", "+mlx.scheduler.retry={failed: 1}")
    plain, retried = run_dirs(logs)
    # the retried run shows FAILED for a moment between its first attempt and the resubmission: wait for the end
    # of its second attempt (seen once in CI: the status was read in that moment)
    wait_for_text(retried / "log.stderr", "FAILED 2 times: not resubmitted again", timeout=120)
    rows = wait_status(logs, ENDED, timeout=90, count=2)
    assert [r["status"] for r in rows.values()] == [store.FAILED] * 2, rows
    assert "retries" not in store.read_yaml(plain / "metadata/scheduler.yaml") and "history" not in read_info(plain)
    info = read_info(retried)
    assert [h["status"] for h in history_attempts(info)] == [store.FAILED] and info["attempt"] == 2, info
    assert info["started_because"] == "FAILED" and "failing on purpose" in info["error"]["message"], info
    assert [r["reason"] for r in store.read_yaml(retried / "metadata/scheduler.yaml")["retries"]] == ["FAILED"]
    assert "FAILED 2 times: not resubmitted again" in (retried / "log.stderr").read_text()


# -- no cluster needed ------------------------------------------------------------------------------------------
def test_the_policy_refuses_bad_values_in_one_line():
    assert RetryPolicy.from_option(None) == RetryPolicy(2, 2.0, None, 0)
    assert RetryPolicy.from_option({"max_mem": "64G", "failed": 1}).max_mem == "64G"
    for bad, words in [({"oom": 1}, "valid"), ({"memory_factor": 1}, "above 1"), ({"max_mem": "lots"}, "16G"),
                       ({"out_of_memory": -1}, "out_of_memory"), ("2", "mapping")]:
        with pytest.raises(ConfigError, match=words):
            RetryPolicy.from_option(bad)


def test_memory_sizes_in_slurms_units():
    assert [megabytes(v) for v in ("100", "512M", "4G", "1.5G", "2048K", "1T")] == [100, 512, 4096, 1536, 2, 1048576]
    assert [show_mb(v) for v in (300, 2048, None)] == ["300M", "2G", None]


def test_the_kernels_oom_kill_count_is_read_from_the_jobs_cgroup(tmp_path):
    """Recorded from a job of the local SLURM (cgroup v1): the task's cgroup counts the kill; and cgroup v2."""
    root = tmp_path / "cg"
    task = root / "memory/slurm_localhost/uid_0/job_5/step_batch/task_0"
    task.mkdir(parents=True)
    (task / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    (task.parent / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    proc = tmp_path / "cgroup"
    proc.write_text("5:pids:/slurm\n4:memory:/slurm_localhost/uid_0/job_5/step_batch/task_0\n0::/\n")
    assert oom_killed(str(proc), str(root))
    (task / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not oom_killed(str(proc), str(root))
    v2 = root / "system.slice/slurmstepd.scope/job_7/step_batch/user/task_0"
    v2.mkdir(parents=True)
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    (v2.parent.parent / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    proc.write_text("0::/system.slice/slurmstepd.scope/job_7/step_batch/user/task_0\n")
    assert oom_killed(str(proc), str(root))
    assert not oom_killed(str(tmp_path / "missing"), str(root))


def make_run(tmp_path: Path, status: str, job_id: str, retries: list | None = None) -> store.Run:
    run, _ = store.RunStore(tmp_path / "logs").create(store.SUBMITTED, {"submit_time": store.now_iso()})
    run.record_submission({"name": "slurm", "job_id": job_id, **({"retries": retries} if retries else {})})
    if status != store.SUBMITTED:
        run.set_status(store.RUNNING)
        if status != store.RUNNING:
            run.set_status(status)
    return run


def test_what_is_resubmitted_and_with_what(tmp_path):
    policy = RetryPolicy(out_of_memory=2, memory_factor=2.0, max_mem="1G", failed=0)
    here = Attempt("9_1", 1, 300)
    submitted = make_run(tmp_path, store.SUBMITTED, "9_1")  # killed before its task recorded anything
    assert decide(policy, submitted, here, 137, oom=True) == ("OUT_OF_MEMORY", 600)
    assert decide(policy, submitted, here, 137, oom=False) is None  # SIGKILL without an OOM kill: a time limit
    assert decide(policy, submitted, Attempt("9_1", 1, 600), 137, oom=True) == ("OUT_OF_MEMORY", 1024)  # capped
    at_cap = decide(policy, submitted, Attempt("9_1", 1, 1024), 137, oom=True)
    assert isinstance(at_cap, str) and "the cap mlx.scheduler.retry.max_mem=1G" in at_cap
    no_mem = decide(policy, submitted, Attempt("9_1", 1, None), 137, oom=True)
    assert isinstance(no_mem, str) and "set mlx.scheduler.mem" in no_mem
    assert decide(policy, submitted, Attempt("8_1", 1, 300), 137, oom=True) is None  # another job's run now
    spent = make_run(tmp_path, store.SUBMITTED, "9_2", retries=[{"reason": "OUT_OF_MEMORY"}] * 2)
    refused = decide(policy, spent, Attempt("9_2", 2, 1200), 137, oom=True)
    assert isinstance(refused, str) and "OUT_OF_MEMORY 3 times" in refused
    failed = make_run(tmp_path, store.FAILED, "9_3")
    assert decide(policy, failed, Attempt("9_3", 3, 300), 1, oom=False) is None  # not asked
    assert decide(RetryPolicy(failed=1), failed, Attempt("9_3", 3, 300), 1, oom=False) == ("FAILED", None)
    done = make_run(tmp_path, store.COMPLETE, "9_4")
    assert decide(policy, done, Attempt("9_4", 4, 300), 137, oom=True) is None
    cancelled = make_run(tmp_path, store.SUBMITTED, "9_5")
    cancelled.request_cancel()
    assert decide(policy, cancelled, Attempt("9_5", 5, 300), 137, oom=True) is None


def test_the_attempt_reads_its_job_from_slurms_variables():
    assert Attempt.from_environment({"SLURM_JOB_ID": "12", "SLURM_ARRAY_JOB_ID": "9", "SLURM_ARRAY_TASK_ID": "1",
                                     "SLURM_MEM_PER_NODE": "150"}) == Attempt("9_1", 1, 150)
    assert Attempt.from_environment({"SLURM_JOB_ID": "12", "SLURM_MEM_PER_CPU": "100",
                                     "SLURM_CPUS_ON_NODE": "4"}) == Attempt("12", None, 400)


def test_a_failed_pack_of_points_is_not_taken_for_a_run(tmp_path, capsys):
    """A pack job (mlxcore.schedulers.pack) runs the retry lines with its pack directory: nothing to resubmit."""
    from mlx_slurm.retry import main

    pack = tmp_path / "1-6-0123abcd"
    pack.mkdir()
    assert main(['{"out_of_memory": 2, "memory_factor": 2.0, "max_mem": null, "failed": 0}', "job.sh", str(pack),
                 "137"]) == 0
    assert "is not one run: its failure (exit 137) is not resubmitted" in capsys.readouterr().err
