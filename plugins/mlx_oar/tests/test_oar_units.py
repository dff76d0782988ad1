"""The OAR plugin's pieces that need no cluster: options, directives, paths, parameter lines, and the shared job
script run by a real bash the way OAR runs an array job (``./job.sh <parameter line>``)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlx_oar import options as opts
from mlx_oar.paths import ensure_reachable, oar_safe, param_line, reachable
from mlx_oar.scheduler import OarScheduler
from mlxcore.errors import ConfigError, SubmissionError, UnknownChoiceError
from mlxcore.plugins import get_scheduler_class
from mlxcore.schedulers.base import JobSpec, Submission
from mlxcore.schedulers.script import render_script

AWKWARD = ["/a b/c", "it's", "x#y", "two\nlines", "back\\slash#", "$HOME", "%b", '"dq"', "", "-n", "*"]


@pytest.mark.parametrize("shell", ["bash", "dash", "sh"])
def test_a_parameter_line_gives_back_every_word(shell):
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} here")
    line = param_line(AWKWARD)
    assert "#" not in line and "\n" not in line  # OAR cuts a parameter line at '#' and newlines
    out = subprocess.run([shell, "-c", f"set -- {line}; printf '%s\\0' \"$@\""], capture_output=True, text=True)
    assert out.stdout.split("\0")[:-1] == AWKWARD


def test_a_word_ending_with_a_newline_cannot_be_a_parameter():
    with pytest.raises(ConfigError, match="array=false"):
        param_line(["ends\n"])


def test_unsafe_directories_are_reached_through_a_plain_link(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    plain = tmp_path / "plain dir"
    assert reachable(plain) == plain and oar_safe(str(plain))
    awkward = tmp_path / "it's 100%"
    awkward.mkdir()
    link = ensure_reachable(awkward)
    assert link != awkward and oar_safe(str(link)) and link.parent == tmp_path / "home" / ".cache" / "mlxcore-oar"
    assert link.resolve() == awkward.resolve() and ensure_reachable(awkward) == link == reachable(awkward)


def test_native_options_are_normalised_and_managed_ones_dropped(caplog):
    with caplog.at_level(logging.WARNING):
        kept = opts.native_options(["--type=idempotent", " -t besteffort ", "-O out.txt", "--array 3",
                                    "-p gpumem>'16000'", "--directory=/x"])
    assert kept == ["--type idempotent", "-t besteffort", "-p gpumem>'16000'"]
    assert caplog.text.count("ignoring OAR option") == 3
    assert opts.job_types(kept) == {"idempotent", "besteffort"}
    with pytest.raises(ConfigError, match="newline"):
        opts.native_options(["-t a\n-t b"])
    with pytest.raises(ConfigError, match="not an oarsub option"):
        opts.native_options(["besteffort"])


def test_generic_options_become_one_resource_request():
    scheduler = OarScheduler(time=90, cpus_per_task=4, gpus=2, partition="prod")
    assert scheduler.resources == ["-l /host=1/gpu=2/core=4,walltime=1:30:00", "-q prod"]
    assert OarScheduler(time="0:05:00").resources == ["-l walltime=0:05:00"]
    assert OarScheduler(time="2:30").resources == ["-l walltime=0:02:30"]
    assert OarScheduler().resources == []
    with pytest.raises(ConfigError, match="not both"):
        OarScheduler(time=5, options=["-l core=2"])
    with pytest.raises(ConfigError, match="no memory request"):
        OarScheduler(mem="16G")
    with pytest.raises(ConfigError, match="H:MM:SS"):
        OarScheduler(time="soon")
    with pytest.raises(ConfigError, match="positive integer"):
        OarScheduler(cpus_per_task=0)
    with pytest.raises(UnknownChoiceError, match=r"cpus_per_task.*signal"):
        get_scheduler_class("oar").from_settings({"cores": 2})


def test_the_checkpoint_signal_is_a_stop_signal():
    assert OarScheduler().signal == 12 and OarScheduler(signal="SIGUSR1").signal == 10
    assert OarScheduler(signal=None).signal is None
    with pytest.raises(ConfigError, match="valid: USR1, USR2"):
        OarScheduler(signal="TERM")


def jobs(tmp_path: Path, n: int) -> list[JobSpec]:
    return [JobSpec(i, tmp_path / "logs" / str(i), ["python", "main.py", f"x={i}"], tmp_path, f"mlxcore-{i}")
            for i in range(1, n + 1)]


def test_directives_send_oar_output_into_the_run_directory(tmp_path):
    scheduler = OarScheduler(time=10, options=["-t idempotent"], signal_grace=300)
    single = Submission(jobs(tmp_path, 1), tmp_path / "logs" / "1" / "script.sh", False)
    assert scheduler.directives(single) == [
        "#OAR -n mlxcore-1", f"#OAR -O {tmp_path}/logs/1/log.stdout", f"#OAR -E {tmp_path}/logs/1/log.stderr",
        "#OAR -l walltime=0:10:00", "#OAR --checkpoint 300", "#OAR --signal 12", "#OAR -t idempotent"]
    array = Submission(jobs(tmp_path, 3), tmp_path / "sub" / "job.sh", True)
    lines = OarScheduler(signal=None).directives(array)
    assert lines[:3] == ["#OAR -n mlxcore-1-3", f"#OAR -O {tmp_path}/sub/oar/%jobid%.stdout",
                         f"#OAR -E {tmp_path}/sub/oar/%jobid%.stderr"]
    assert not any("--checkpoint" in line for line in lines)
    assert OarScheduler().submit_argv(array) == ["oarsub", "-S", "./job.sh", "--array-param-file", "./jobs.params"]


def test_only_idempotent_jobs_exit_99_after_a_preemption(tmp_path):
    submission = Submission(jobs(tmp_path, 1), tmp_path / "s.sh", False)
    assert OarScheduler().job_environment().requeue_lines(submission) == []
    assert OarScheduler(options=["-t idempotent"]).job_environment().requeue_lines(submission)[-1] == "exit 99"


@pytest.mark.parametrize(("limit", "attempts", "resubmitted"), [(0, 1, False), (2, 2, True), (2, 3, False),
                                                              (2, None, True)])
def test_an_idempotent_run_is_resubmitted_at_most_max_resubmissions_times(tmp_path, limit, attempts, resubmitted):
    """The script's own lines, run by bash: OAR's part (resubmitting on 99) is in test_oar_preempt.py."""
    run_dir = tmp_path / "run"
    (run_dir / "metadata").mkdir(parents=True)
    if attempts is not None:  # one job id per attempt; no file: the first attempt
        (run_dir / "metadata" / "job_ids").write_text("".join(f"{100 + n}\n" for n in range(attempts)))
    submission = Submission(jobs(tmp_path, 1), tmp_path / "s.sh", False)
    lines = OarScheduler(options=["-t idempotent"], max_resubmissions=limit).job_environment().requeue_lines(submission)
    script = "\n".join(['run_dir="$1"', "code=3", "SECONDS=100", *lines])  # past the 60 s OAR wants
    result = subprocess.run(["bash", "-c", script, "job", str(run_dir)], capture_output=True, text=True, timeout=30)
    assert result.returncode == (99 if resubmitted else 3), result.stderr
    assert ("not resubmitted" in result.stderr) is not resubmitted


@pytest.mark.parametrize("limit", [-1, True, "3", 1.5])
def test_max_resubmissions_must_be_a_count(limit):
    with pytest.raises(ConfigError, match="max_resubmissions must be a positive integer or 0"):
        OarScheduler(max_resubmissions=limit)


def test_job_ids_are_read_from_oarsub_and_a_refusal_is_quoted(tmp_path):
    submission = Submission(jobs(tmp_path, 2), tmp_path / "job.sh", True)
    output = ("[ADMISSION RULE] Modify resource description with type constraints\n"
              "OAR_JOB_ID=7\nOAR_JOB_ID=8\nOAR_ARRAY_ID=7\n")
    assert OarScheduler().parse_job_ids(output, submission) == ["7", "8"]
    with pytest.raises(SubmissionError, match="OAR_JOB_ID=-5"):
        OarScheduler().parse_job_ids("OAR_JOB_ID=-5\n", submission)
    with pytest.raises(SubmissionError, match="1 job id"):
        OarScheduler().parse_job_ids("OAR_JOB_ID=7\n", submission)


def test_an_array_job_script_runs_the_job_of_its_arguments_and_records_its_job_id(tmp_path):
    """The core's script with this plugin's hooks, run by bash as OAR does: ``./job.sh <parameter line>``."""
    work = tmp_path / "it's #work"
    work.mkdir()
    specs = [JobSpec(i, work / "logs" / str(i), ["bash", "-c", 'echo "ran $1 in $PWD"', "-", f"x #{i}"], work, "j")
             for i in (1, 2)]
    for spec in specs:
        (spec.run_dir / "metadata").mkdir(parents=True)
    script = tmp_path / "job.sh"
    script.write_text(render_script(OarScheduler(), Submission(specs, script, True), None))
    script.chmod(0o755)
    for job_id, spec in zip(("41", "42"), specs):
        line = param_line([str(spec.run_dir), *spec.command])
        done = subprocess.run(["bash", "-c", f"./job.sh {line}"], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "OAR_JOB_ID": job_id})
        assert done.returncode == 0, done.stderr
        assert (spec.run_dir / "log.stdout").read_text() == f"ran x #{spec.log_id} in {work}\n"
        assert (spec.run_dir / "metadata" / "job_ids").read_text() == f"{job_id}\n"
    missing = subprocess.run(["bash", "./job.sh"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2 and "got no run directory and command" in missing.stderr


def test_a_record_gives_what_the_job_used():
    from mlx_oar.records import job_status

    record = {"state": "Terminated", "exit_code": 0, "startTime": 1700000000, "stopTime": 1700000090,
              "assigned_resources": [3, 4], "assigned_network_address": ["node1", "node1"]}
    status = job_status("7", record)
    assert status.native_state == "Terminated" and status.state == "COMPLETE"
    assert (status.usage.elapsed_s, status.usage.cpus, status.usage.nodes) == (90.0, 2, "node1")
    assert status.usage.cpu_hours == 0.05 and status.usage.gpu_hours is None
    running = job_status("8", {"state": "Running", "startTime": 1700000000, "assigned_resources": [1]})
    assert running.usage.elapsed_s is None and running.usage.cpus == 1
    assert job_status("9", {"state": "Waiting", "startTime": 0}).usage is None
