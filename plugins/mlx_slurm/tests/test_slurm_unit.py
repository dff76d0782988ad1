"""Unit layer (no cluster): script rendering, option checks, and parsing of outputs recorded from the real
local SLURM 22.05 cluster (scripts/clusters/slurm-up.sh)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mlx_slurm.scheduler import (
    SlurmScheduler,
    decode_exit,
    filename_pattern,
    fold_array_tasks,
    is_managed,
    match_rows,
    parse_squeue,
    quote_directive,
)
from mlxcore import store
from mlxcore.errors import ConfigError, SchedulerError, SubmissionError, UnknownChoiceError
from mlxcore.plugins import get_scheduler_class
from mlxcore.schedulers.base import JobSpec, JobStatus, Submission
from mlxcore.schedulers.script import render_script
from mlxcore.store import reconcile

#: ``squeue -h -r -t all -j ... -O "JobArrayID:|,JobID:|,State:|,exit_code:|,RestartCnt:|,Reason:|"`` on the local
#: cluster (scripts/clusters/slurm-up.sh), jobs submitted with ``sbatch --wrap``: 38 requeued by ``scontrol
#: requeue``, restarted, then cancelled while running; 39 cancelled while running; 36 a held 3-task array
#: cancelled task by task (it collapses into one row); 33 a completed 2-task array (task 0 got job id 40);
#: 34 ``exit 3``; 35 a held 2-task array; 37 ``--time=1`` killed at its limit
RECORDED_SQUEUE = """\
38|38|CANCELLED|15|1|None|
39|39|CANCELLED|15|0|None|
36|36|CANCELLED|0|0|JobHeldUser|
33_0|40|COMPLETED|0|0|None|
33_1|33|COMPLETED|0|0|None|
34|34|FAILED|768|0|NonZeroExitCode|
35_0|35|PENDING|0|0|JobHeldUser|
35_1|35|PENDING|0|0|JobHeldUser|
37|37|TIMEOUT|15|0|TimeLimit|
"""
#: the same query a few seconds after submission: 38 pending after its requeue
RECORDED_REQUEUED = "38|38|PENDING|0|1|BeginTime|\n"


def jobs(tmp_path: Path, n: int, root: str = "logs") -> list[JobSpec]:
    return [JobSpec(i, tmp_path / root / str(i), ["python", "main.py", f"x={i}", f"+mlx.logger.forced_log_id={i}"],
                    tmp_path, f"mlxcore-{i}") for i in range(1, n + 1)]


def test_the_plugin_registers_the_slurm_scheduler():
    assert get_scheduler_class("slurm") is SlurmScheduler


def test_single_job_script(tmp_path):
    scheduler = SlurmScheduler(time="02:00:00", cpus_per_task=4, mem="16G", gpus=1, partition="gpu",
                               options=["--qos=normal", "--account=ml"], signal_grace=90)
    (job,) = jobs(tmp_path, 1)
    text = render_script(scheduler, Submission([job], job.run_dir / "script.sh", False, token="t0k"), None)
    directives = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        "#SBATCH --job-name=mlxcore-1",
        f"#SBATCH --output={tmp_path}/logs/1/log.stdout",
        f"#SBATCH --error={tmp_path}/logs/1/log.stderr",
        "#SBATCH --open-mode=append",
        "#SBATCH --time=02:00:00",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --mem=16G",
        "#SBATCH --partition=gpu",
        "#SBATCH --signal=B:USR1@90",
        "#SBATCH --requeue",
        "#SBATCH --comment=mlxcore:t0k",
        "#SBATCH --qos=normal",
        "#SBATCH --account=ml",
    ]
    assert 'scontrol requeue "$requeue_id"' in text
    assert 'if [ "$code" -eq 3 ] && [ -e "$run_dir/metadata/preempted" ]' in text
    assert "info.yaml" not in text  # the job script reads no YAML
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_array_script_throttle_and_no_requeue(tmp_path):
    scheduler = SlurmScheduler(array_throttle=2, requeue=False, time=90)
    group = jobs(tmp_path, 3)
    script = tmp_path / "logs" / ".mlxcore" / "submissions" / "1-3" / "job.sh"
    text = render_script(scheduler, Submission(group, script, True), script.parent / "jobs.args")
    assert "#SBATCH --array=0-2%2" in text
    assert "#SBATCH --job-name=mlxcore-1-3" in text
    assert f"#SBATCH --output={script.parent}/tasks/%a/log.stdout" in text
    assert "#SBATCH --time=1:30:00" in text
    assert "#SBATCH --no-requeue" in text and "scontrol requeue" not in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_paths_with_spaces_quotes_and_percent_are_quoted_for_sbatch(tmp_path):
    root = "logs dir with space's \"q\" %x"
    (job,) = jobs(tmp_path, 1, root)
    text = render_script(SlurmScheduler(), Submission([job], job.run_dir / "script.sh", False), None)
    expected = str(tmp_path / root / "1" / "log.stdout").replace("%", "%%").replace('"', '\\"')
    assert f'#SBATCH --output="{expected}"' in text
    assert quote_directive("plain-value_1.0") == "plain-value_1.0"
    assert quote_directive('a "b" c\\d') == '"a \\"b\\" c\\\\d"'
    # the job step drops every backslash of a filename pattern: such paths cannot be expressed
    assert filename_pattern("/tmp/a\\b") is None and filename_pattern("/tmp/50%") == "/tmp/50%%"


def test_unknown_option_lists_the_valid_ones():
    with pytest.raises(UnknownChoiceError) as info:
        SlurmScheduler(cpus=4)
    message = str(info.value)
    for valid in ("cpus_per_task", "time", "gpus", "mem", "partition", "options", "array_throttle", "signal_grace"):
        assert valid in message


@pytest.mark.parametrize("options", [{"array_throttle": 0}, {"max_requeues": -1}, {"signal": "usr 1"},
                                     {"options": ["--qos=a\n#SBATCH --x"]}, {"options": 3}])
def test_bad_option_values(options):
    with pytest.raises(ConfigError):
        SlurmScheduler(**options)


def test_options_mlxcore_manages_are_ignored(caplog):
    scheduler = SlurmScheduler(options=["--output=x.out", "-e err", "-a 1-3", "--open-mode=truncate", "--qos=a",
                                        "--exclusive", "-c 2"])
    assert scheduler.native_options == ["--qos=a", "--exclusive", "-c 2"]
    assert is_managed("-ofile") and not is_managed("--oversubscribe") and not is_managed("-c 2")


def test_parse_job_ids(tmp_path):
    scheduler = SlurmScheduler()
    single = Submission(jobs(tmp_path, 1), tmp_path / "a.sh", False)
    array = Submission(jobs(tmp_path, 3), tmp_path / "b.sh", True)
    assert scheduler.parse_job_ids("42\n", single) == ["42"]
    assert scheduler.parse_job_ids("42;cluster\n", single) == ["42"]
    assert scheduler.parse_job_ids("sbatch: warning: something\n43\n", array) == ["43_0", "43_1", "43_2"]
    with pytest.raises(SubmissionError, match="Submitted batch job 44"):
        scheduler.parse_job_ids("Submitted batch job 44\n", single)
    with pytest.raises(SubmissionError, match="''"):
        scheduler.parse_job_ids("", single)


def test_parse_recorded_squeue_output():
    rows = {row["array_id"]: row for row in parse_squeue(RECORDED_SQUEUE)}
    assert rows["38"]["state"] == "CANCELLED" and rows["38"]["exit_code"] == 143 and rows["38"]["restarts"] == 1
    assert rows["34"]["exit_code"] == 3 and rows["34"]["reason"] == "NonZeroExitCode"
    assert rows["33_0"]["raw_id"] == "40" and rows["33_0"]["reason"] is None
    assert (rows["37"]["state"], rows["37"]["exit_code"], rows["37"]["reason"]) == ("TIMEOUT", 128 + 15, "TimeLimit")
    assert parse_squeue(RECORDED_REQUEUED)[0]["restarts"] == 1
    assert decode_exit("0") == 0 and decode_exit("256") == 1 and decode_exit("x") is None
    with pytest.raises(SchedulerError, match="unexpected squeue output"):
        parse_squeue("38|CANCELLED\n")


def test_recorded_rows_match_array_raw_and_collapsed_ids():
    rows = parse_squeue(RECORDED_SQUEUE)
    answer = match_rows(rows, ["38", "39", "36_0", "36_2", "33_0", "33_1", "40", "34", "35_1", "37", "999", "35_7"])
    assert {k: v.state for k, v in answer.items()} == {
        "38": store.CANCELLED, "39": store.CANCELLED, "36_0": store.CANCELLED, "36_2": store.CANCELLED,
        "33_0": store.COMPLETE, "33_1": store.COMPLETE, "40": store.COMPLETE, "34": store.FAILED, "35_1": store.PENDING,
        "37": store.TIMEOUT}  # 40 is the raw id of 33_0; 999 and 35_7 are unknown (35 is a live array, not collapsed)
    assert answer["38"].reason == "restarts=1" and answer["34"].exit_code == 3
    assert answer["35_1"].reason == "JobHeldUser"
    (requeued,) = match_rows(parse_squeue(RECORDED_REQUEUED), ["38"]).values()
    assert requeued.state == store.PENDING and requeued.reason == "BeginTime; restarts=1"


def test_array_tasks_are_folded_for_scancel():
    assert fold_array_tasks(["7_0", "7_1", "7_2", "7_5", "9", "8_3", "7_1"]) == ["9", "7_[0-2,5]", "8_[3]"]
    assert fold_array_tasks([]) == []


def test_missing_client_tools_name_the_plugin_need(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SchedulerError, match="needs SLURM's client tools"):
        SlurmScheduler().check_available()
    with pytest.raises(SchedulerError, match="needs SLURM's client tools"):
        SlurmScheduler().status(["1"])


def test_reconcile_a_requeued_preempted_run(tmp_path):
    (tmp_path / "metadata").mkdir()
    info = {"status": store.PREEMPTED}
    assert reconcile(info, tmp_path, JobStatus("1", store.PENDING)) == store.PENDING
    assert reconcile(info, tmp_path, JobStatus("1", store.FAILED, exit_code=3)) == store.PREEMPTED  # not requeued
    assert reconcile(info, tmp_path, None) == store.PREEMPTED
    assert reconcile({"status": store.INTERRUPTED}, tmp_path, JobStatus("1", store.TIMEOUT)) == store.TIMEOUT


def test_generated_script_requeues_only_a_preempted_run_and_at_most_max_requeues(tmp_path):
    """The rendered body under bash with SLURM's variables set by hand and a fake ``scontrol`` that records its
    arguments: the real-cluster test (test_slurm_preempt.py) shows one requeue; reaching ``max_requeues`` there
    would take 20 requeues of 11 s each, and a task that exits 3 without being preempted needs no cluster."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/scontrol.args\n")
    (bin_dir / "scontrol").chmod(0o755)
    (job,) = jobs(tmp_path, 1)
    (job.run_dir / "metadata").mkdir(parents=True)
    marker = job.run_dir / "metadata" / "preempted"  # what the store writes with the status PREEMPTED
    job.command = ["sh", "-c", 'echo "$GREETING"; exit 3']
    submission = Submission([job], job.run_dir / "script.sh", False, setup_lines=["set -e", "export GREETING=hi"])
    text = render_script(SlurmScheduler(max_requeues=2), submission, None)
    calls = tmp_path / "scontrol.args"

    def run_script(**variables: str) -> int:
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "77", **variables}
        return subprocess.run(["bash", "-c", text], env=env, capture_output=True, timeout=30).returncode

    # the task's own exit(3): not a preemption (the store marks a run preempted only with that status)
    assert run_script() == 3 and not calls.exists()
    assert (job.run_dir / "log.stdout").read_text() == "hi\n"  # the setup lines ran, set -e did not cut the rest
    marker.touch()
    assert run_script() == 3 and calls.read_text() == "requeue 77\n"
    # the last task of an array runs under the array's id: requeue the task, never the whole array
    assert run_script(SLURM_ARRAY_JOB_ID="77", SLURM_ARRAY_TASK_ID="4") == 3
    assert calls.read_text().splitlines()[-1] == "requeue 77_4"
    assert run_script(SLURM_RESTART_COUNT="2") == 3  # max_requeues reached: not requeued again
    assert len(calls.read_text().splitlines()) == 2
    assert "not requeued" in (job.run_dir / "log.stderr").read_text()


#: ``sacct -n -P -o <accounting.FIELDS> -j 2,3,4,7`` on the local SLURM 22.05 with slurmdbd: a job that completed,
#: one that exited 3, one cancelled while running, and an array of three whose task 1 failed
RECORDED_SACCT = """\
2|2|COMPLETED|0:0|2||localhost|billing=1,cpu=1,node=1|None
2.batch|2.batch|COMPLETED|0:0|2|66100K|localhost|cpu=1,mem=0,node=1|
3|3|FAILED|3:0|1||localhost|billing=1,cpu=1,node=1|None
3.batch|3.batch|FAILED|3:0|1|2836K|localhost|cpu=1,mem=0,node=1|
4|4|CANCELLED by 0|0:0|4||localhost|billing=1,cpu=1,node=1|None
4.batch|4.batch|CANCELLED|0:15|4|2804K|localhost|cpu=1,mem=0,node=1|
7_0|9|COMPLETED|0:0|2||localhost|billing=1,cpu=1,node=1|None
7_0.batch|9.batch|COMPLETED|0:0|2|4328K|localhost|cpu=1,mem=0,node=1|
7_1|10|FAILED|1:0|2||localhost|billing=1,cpu=1,node=1|None
7_1.batch|10.batch|FAILED|1:0|2|4300K|localhost|cpu=1,mem=0,node=1|
7_2|7|COMPLETED|0:0|2||localhost|billing=1,cpu=1,node=1|None
7_2.batch|7.batch|COMPLETED|0:0|2|4140K|localhost|cpu=1,mem=0,node=1|
"""


def test_parse_recorded_sacct_output():
    from mlx_slurm.accounting import parse_sacct

    jobs = parse_sacct(RECORDED_SACCT)
    assert (jobs["2"].state, jobs["2"].exit_code, jobs["2"].usage.max_rss_bytes) == ("COMPLETED", 0, 66100 * 1024)
    assert (jobs["3"].state, jobs["3"].exit_code) == ("FAILED", 3)
    assert jobs["4"].state == "CANCELLED"  # "CANCELLED by 0": the word, not the uid
    assert jobs["7_1"].state == "FAILED" and jobs["7_1"].exit_code == 1 and jobs["10"] is jobs["7_1"]
    usage = jobs["7_0"].usage
    assert (usage.elapsed_s, usage.cpus, usage.gpus, usage.mem_bytes, usage.nodes) == (2.0, 1, 0, None, "localhost")
    assert usage.cpu_hours == 2 / 3600 and usage.gpu_hours == 0


@pytest.mark.parametrize(("text", "expected"), [
    ("66100K", 66100 * 1024), ("1.5G", int(1.5 * 1024**3)), ("100M", 100 * 1024**2), ("512", 512), ("", None)])
def test_sacct_sizes(text, expected):
    from mlx_slurm.accounting import parse_size

    assert parse_size(text) == expected


def test_a_job_squeue_forgot_takes_sacct_s_word_and_an_unknown_word_is_left_out():
    from mlx_slurm.accounting import parse_sacct
    from mlx_slurm.scheduler import merge_accounting

    jobs = parse_sacct(RECORDED_SACCT + "12|12|OUT_OF_MEMORY|0:125|3||localhost|cpu=1,mem=100M,node=1|None\n"
                       "13|13|NEW_WORD|0:0|3||localhost|cpu=1,node=1|None\n")
    oom = merge_accounting("12", None, jobs["12"])
    assert (oom.state, oom.native_state, oom.usage.mem_bytes) == ("FAILED", "OUT_OF_MEMORY", 100 * 1024**2)
    assert oom.reason == "OUT_OF_MEMORY: OutOfMemory"  # the cluster's failure, not the task's: said first
    assert merge_accounting("13", None, jobs["13"]) is None
    live = JobStatus("7_1", "FAILED", exit_code=None, reason="NonZeroExitCode", native_state="FAILED")
    merged = merge_accounting("7_1", live, jobs["7_1"])
    assert merged.reason == "NonZeroExitCode" and merged.exit_code == 1 and merged.usage.cpus == 1


def test_sacct_is_asked_by_list_or_by_time_window_for_very_many_jobs():
    from mlx_slurm.accounting import MAX_LISTED_JOBS, sacct_argv

    assert sacct_argv(["7", "9"])[-2:] == ["-j", "7,9"]
    many = sacct_argv([str(i) for i in range(MAX_LISTED_JOBS + 1)])
    assert "-j" not in many and many[-2] == "-S" and len(" ".join(many)) < 200


@pytest.mark.parametrize(("options", "qos"), [
    (["--qos=gpu"], "gpu"), (["--qos gpu"], "gpu"), (["-q gpu"], "gpu"), (["-qgpu"], "gpu"),
    (["--account=ml", "--qos=low"], "low"), (["--account=ml"], None), ([], None)])
def test_the_qos_a_submission_asks_for(options, qos):
    from mlx_slurm.limits import qos_of

    assert qos_of(options) == qos
