"""A submission that fails for a passing reason is tried again, patiently, and never twice accepted.

The scheduler here is a stand-in whose submit command fails on cue: the real cases (SLURM's "Socket timed
out", a reply lost after the job was accepted) are produced on the real local SLURM by a fault-injecting
``sbatch`` wrapper in ``plugins/mlx_slurm/tests/test_slurm_politeness.py``; this file checks the policy alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mlxcore.errors import ConfigError, SubmissionError
from mlxcore.schedulers.base import JobSpec, JobStatus, Scheduler, Submission
from mlxcore.schedulers.submission import submit_patiently


class Flaky(Scheduler):
    name = "flaky"
    transient_submit_errors = ("Socket timed out", "temporarily unable to accept job")

    def __init__(self, failures: list[str], accepted_anyway: bool = False, **options):
        super().__init__(**options)
        self.failures = list(failures)
        self.accepted_anyway = accepted_anyway
        self.calls = 0

    def submit(self, submission: Submission) -> list[str]:
        self.calls += 1
        if self.failures:
            raise SubmissionError(f"sbatch failed (exit 1): {self.failures.pop(0)}")
        return [f"{self.calls}_{i}" for i in range(len(submission.jobs))]

    def find_submitted(self, submission: Submission) -> list[str] | None:
        return ["lost_0", "lost_1"] if self.accepted_anyway else []

    def status(self, job_ids: list[str]) -> dict[str, JobStatus]:
        return {}

    def cancel(self, job_ids: list[str]) -> None:
        pass


def submission(tmp_path: Path) -> Submission:
    jobs = [JobSpec(i, tmp_path / str(i), ["true"], tmp_path, f"j{i}") for i in (1, 2)]
    return Submission(jobs, tmp_path / "job.sh", True)


def test_transient_errors_are_retried_with_doubling_waits(tmp_path, caplog):
    scheduler = Flaky(["Socket timed out on send/recv operation", "Slurm temporarily unable to accept job"],
                      submit_backoff=1.5)
    waits: list[float] = []
    with caplog.at_level(logging.WARNING):
        assert submit_patiently(scheduler, submission(tmp_path), sleep=waits.append) == ["3_0", "3_1"]
    assert scheduler.calls == 3 and waits == [1.5, 3.0]
    assert caplog.text.count("trying again") == 2 and "(1 of 5)" in caplog.text


def test_a_lost_reply_makes_no_duplicate(tmp_path, caplog):
    scheduler = Flaky(["Socket timed out on send/recv operation"], accepted_anyway=True)
    with caplog.at_level(logging.WARNING):
        assert submit_patiently(scheduler, submission(tmp_path), sleep=pytest.fail) == ["lost_0", "lost_1"]
    assert scheduler.calls == 1 and "but it has the submission" in caplog.text


def test_a_permanent_error_is_raised_at_once(tmp_path):
    scheduler = Flaky(["Invalid partition name specified"])
    with pytest.raises(SubmissionError, match="Invalid partition"):
        submit_patiently(scheduler, submission(tmp_path), sleep=pytest.fail)
    assert scheduler.calls == 1


def test_retries_end_and_the_last_error_is_raised(tmp_path):
    scheduler = Flaky(["Socket timed out"] * 10, submit_retries=3, submit_backoff=40)
    waits: list[float] = []
    with pytest.raises(SubmissionError, match="Socket timed out"):
        submit_patiently(scheduler, submission(tmp_path), sleep=waits.append)
    assert scheduler.calls == 4 and waits == [40.0, 60.0, 60.0]  # each wait at most 60 s


@pytest.mark.parametrize("options", [{"submit_retries": -1}, {"submit_backoff": "soon"}, {"submit_backoff": 1e6},
                                     {"submit_rate": 0}, {"submit_rate": True}])
def test_bad_retry_settings_are_one_line_errors(options):
    with pytest.raises(ConfigError, match="mlx.scheduler.submit_"):
        Flaky([], **options)


def test_submissions_keep_to_the_submit_rate(tmp_path):
    """``submit_rate: 20``: one job per point (no arrays) starts a submission every 50 ms at most."""
    import time

    from mlxcore.schedulers.submission import submit_jobs
    from mlxcore.store import RunStore

    class Timed(Flaky):
        def __init__(self, **options):
            super().__init__([], **options)
            self.times: list[float] = []

        def submit(self, submission):
            self.times.append(time.monotonic())
            return super().submit(submission)

    store = RunStore(tmp_path / "logs")
    jobs = []
    for _ in range(5):
        run, _lease = store.create("SUBMITTED", {})
        jobs.append(JobSpec(run.log_id, run.root, ["true"], tmp_path, f"j{run.log_id}"))
    scheduler = Timed(submit_rate=20, array=False)
    submit_jobs(scheduler, jobs, tmp_path / "logs")
    gaps = [b - a for a, b in zip(scheduler.times, scheduler.times[1:])]
    assert len(gaps) == 4 and min(gaps) >= 0.049, gaps
    unpaced = Timed(array=False)
    submit_jobs(unpaced, jobs, tmp_path / "logs")
    assert unpaced.times[-1] - unpaced.times[0] < 0.15  # no rate: no wait
