"""SIGKILL of the launcher mid-search, then the same command: the study ends with exactly n_trials trials, each
trial has exactly one run, and the killed trial's run is resumed in place from its checkpoint."""

from __future__ import annotations

import signal

import pytest
from optuna_testlib import Search, blocked, check


@pytest.mark.parametrize("where", ["in process", "local pool"])
def test_a_killed_search_resumes_without_duplicates(search: Search, where: str) -> None:
    block, marker = search.root / "block", search.root / "marker"
    block.write_text("")
    scheduling = ("+mlx.use_scheduler=true", "+mlx.scheduler.workers=2", "+mlx.sweeper.parallel=2",
                  "+mlx.sweeper.poll_interval=0.1") if where == "local pool" else ()
    args = ("mode=resume", "epochs=3", "offset=interval(0,1)", "block_epoch=1", "block_trial=2",
            f"block_file={block}", f"marker_file={marker}", "+mlx.sweeper.n_trials=5", "+mlx.sweeper.seed=0",
            "+mlx.sweeper.sampler=random", *scheduling)
    launcher = search.start(*args)
    # trial 2 reached its epoch 1 (epoch 0 checkpointed) and waits there
    with blocked(launcher, marker, "trial 2 to block") as line:
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=30)
    number, killed_run = (int(word) for word in line.split())
    assert number == 2
    block.unlink()  # the trial's next attempt runs through
    rerun = check(search.run(*args))
    if where == "in process":  # the killed launcher ran the trial: its run is DEAD, and is run again in place
        expected = f"trial 2 of study {trial_study(search, killed_run)}: its run {killed_run} is DEAD, running it again"
        assert f"{expected} in place" in rerun.stderr
    (study,) = search.studies()
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert all(t.state.name == "COMPLETE" for t in study.trials), [t.state for t in study.trials]
    trials = search.trials()
    numbers = [t["number"] for t in trials.values()]
    assert sorted(numbers) == [0, 1, 2, 3, 4], trials  # one run per trial: none duplicated, none lost
    assert trials[killed_run]["number"] == 2 and study.trials[2].user_attrs["log_id"] == killed_run
    epochs = [row["epoch"] for row in search.rows(killed_run)]
    assert epochs in ([0, 1, 2], [1, 2]), epochs  # resumed from epoch 0's checkpoint: no epoch run twice
    info = search.info(killed_run)
    assert info["status"] == "COMPLETE" and info["trial"]["state"] == "COMPLETE"


@pytest.mark.parametrize("signum, code, status",
                         [(signal.SIGUSR1, 3, "PREEMPTED"), (signal.SIGINT, 130, "INTERRUPTED")],
                         ids=["stop signal", "ctrl-c"])
def test_a_stopped_trial_is_resumed_in_place(search: Search, signum: int, code: int, status: str) -> None:
    """SIGUSR1 (a stop signal: the run ends PREEMPTED, exit 3 as a preempted grid's) or Ctrl-C (INTERRUPTED, exit
    130): the study keeps the trial RUNNING and asks for no more; the same command resumes that run in place and
    finishes the search."""
    block, marker = search.root / "block", search.root / "marker"
    block.write_text("")
    args = ("mode=resume", "epochs=3", "offset=interval(0,1)", "block_epoch=1", "block_trial=1",
            f"block_file={block}", f"marker_file={marker}", "+mlx.sweeper.n_trials=3")
    launcher = search.start(*args)
    with blocked(launcher, marker, "trial 1 to block") as line:
        launcher.send_signal(signum)
        assert launcher.wait(timeout=60) == code
    stopped_run = int(line.split()[1])
    assert search.info(stopped_run)["status"] == status and search.run_ids() == [1, 2]
    (study,) = search.studies()
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]
    block.unlink()
    rerun = check(search.run(*args, timeout=60))
    assert f"its run {stopped_run} is {status}, running it again in place" in rerun.stderr
    (study,) = search.studies()
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 and search.run_ids() == [1, 2, 3]
    assert [row["epoch"] for row in search.rows(stopped_run)] == [0, 1, 2]  # epoch 0 before the stop, then 1, 2


def test_a_second_launcher_of_the_same_search_is_refused_while_the_first_runs(search: Search) -> None:
    """Two launchers of one study would each take the other's running trials for a killed launcher's and run
    them again: the second is refused in one line naming the first; once the first ended, the command resumes."""
    block, marker = search.root / "block", search.root / "marker"
    block.write_text("")
    args = ("mode=resume", "epochs=2", "offset=interval(0,1)", "block_epoch=0", "block_trial=0",
            f"block_file={block}", f"marker_file={marker}", "+mlx.sweeper.n_trials=2")
    first = search.start(*args)
    with blocked(first, marker, "trial 0 to block"):
        second = search.run(*args)
        assert second.returncode == 2, second.stderr
        (line,) = [x for x in second.stderr.splitlines() if x.startswith("mlxcore: error:")]
        assert "is being searched by another launcher" in line and f"pid {first.pid}" in line, line
        assert search.run_ids() == [1]  # the refused launcher made no run
        block.unlink()
        assert first.wait(timeout=60) == 0
    again = check(search.run(*args))  # the lock went with the first launcher
    assert search.run_ids() == [1, 2] and "launching" not in again.stderr


def trial_study(search: Search, log_id: int) -> str:
    return search.info(log_id)["trial"]["study"]
