"""A search whose trials run as arrays on a real (local, one-node) SLURM: waves of three jobs, watched through
the run store and squeue/sacct, pruning decided inside the jobs."""

from __future__ import annotations

import signal

import pytest
from optuna_testlib import Search, blocked, check

from mlxcore.testing import wait_until


@pytest.mark.usefixtures("slurm_cluster")
def test_a_search_as_slurm_arrays(search: Search) -> None:
    result = check(search.run("mode=curve", "epochs=3", "offset=choice(0,10)", "+mlx.use_scheduler=true",
                              "+mlx.scheduler.name=slurm", "+mlx.sweeper.parallel=3", "+mlx.sweeper.n_trials=6",
                              "+mlx.sweeper.sampler=random", "+mlx.sweeper.seed=0", "+mlx.sweeper.pruner=median",
                              "+mlx.sweeper.pruner.n_startup_trials=1", "+mlx.sweeper.poll_interval=0.5",
                              timeout=300))
    assert result.stderr.count("submitted 3 run(s)") == 2, result.stderr  # two waves, each one array
    (study,) = search.studies()
    assert len(study.trials) == 6 and {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    assert all(t.intermediate_values for t in study.trials)  # reported from inside the jobs
    trials = search.trials()
    assert sorted(t["number"] for t in trials.values()) == list(range(6))
    for log_id, trial in trials.items():
        info = search.info(log_id)
        assert info["status"] == trial["state"] == study.trials[trial["number"]].state.name
        assert study.trials[trial["number"]].user_attrs["log_id"] == log_id
    records = [search.logs / str(log_id) / "metadata" for log_id in trials]
    assert all(any(p.name.startswith("scheduler") for p in r.iterdir()) for r in records)  # each was a job


@pytest.mark.usefixtures("slurm_cluster")
def test_a_search_whose_launcher_is_killed_waits_for_its_jobs_when_run_again(search: Search) -> None:
    """SIGKILL of the launcher while a wave's jobs run on SLURM: the jobs go on; the same command finds the
    trials RUNNING in the study with their runs still going, waits for them (no job submitted twice, no run
    rerun) and finishes the study."""
    block, marker = search.root / "block", search.root / "marker"
    block.write_text("")
    args = ("mode=resume", "epochs=3", "offset=interval(0,1)", "block_epoch=1", "block_trial=1",
            f"block_file={block}", f"marker_file={marker}", "+mlx.sweeper.n_trials=4", "+mlx.sweeper.seed=0",
            "+mlx.sweeper.sampler=random", "+mlx.use_scheduler=true", "+mlx.scheduler.name=slurm",
            "+mlx.sweeper.parallel=2", "+mlx.sweeper.poll_interval=0.5")
    launcher = search.start(*args)
    with blocked(launcher, marker, "trial 1's job to block", timeout=120) as line:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=30)
    blocked_run = int(line.split()[1])
    again = search.start_capturing(*args)  # waits for the blocked trial's job, which is still running
    try:
        wait_until(lambda: "still going on" in (search.root / "again.err").read_text(), timeout=60,
                   what="the second launcher to wait for the running trial")
        block.unlink()
        assert again.wait(timeout=240) == 0, (search.root / "again.err").read_text()
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
    (study,) = search.studies()
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    trials = search.trials()
    assert sorted(t["number"] for t in trials.values()) == [0, 1, 2, 3]  # one run per trial
    assert trials[blocked_run]["number"] == 1
    assert [row["epoch"] for row in search.rows(blocked_run)] == [0, 1, 2]  # the one job ran it through, once
    assert "history" not in search.info(blocked_run)  # never run again
