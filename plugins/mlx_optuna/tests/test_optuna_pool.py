"""A search through the local pool: two trials at a time in worker processes, which report to the study's
journal themselves (the pruner decides there)."""

from __future__ import annotations

import pytest
from optuna_testlib import Search, check


def test_a_search_through_the_local_pool_with_two_workers(search: Search) -> None:
    result = check(search.run("mode=curve", "epochs=3", "offset=choice(0,10)", "+mlx.use_scheduler=true",
                              "+mlx.scheduler.workers=2", "+mlx.sweeper.parallel=2", "+mlx.sweeper.n_trials=6",
                              "+mlx.sweeper.sampler=random", "+mlx.sweeper.seed=0", "+mlx.sweeper.pruner=median",
                              "+mlx.sweeper.pruner.n_startup_trials=1", "+mlx.sweeper.poll_interval=0.1"))
    assert result.stderr.count("submitted 2 run(s)") == 3, result.stderr  # three waves of two
    (study,) = search.studies()
    assert len(study.trials) == 6
    assert all(t.intermediate_values for t in study.trials)  # reported from the workers' processes
    trials = search.trials()
    assert sorted(t["number"] for t in trials.values()) == list(range(6))
    for log_id, trial in trials.items():
        info = search.info(log_id)
        assert info["status"] == trial["state"] == study.trials[trial["number"]].state.name
        assert f"+mlx.logger.forced_log_id={log_id}" in info["argv"]  # run by a worker, as a job
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}


@pytest.mark.parametrize("pruner", [("+mlx.sweeper.pruner=median", "+mlx.sweeper.pruner.n_startup_trials=2"),
                                    ("+mlx.sweeper.pruner=hyperband", "+mlx.sweeper.pruner.min_resource=1",
                                     "+mlx.sweeper.pruner.max_resource=6", "+mlx.sweeper.pruner.reduction_factor=2")],
                         ids=["median", "hyperband"])
def test_pruners_decide_in_the_workers_processes(search: Search, pruner: tuple[str, ...]) -> None:
    """Each worker process loads the study from the journal, reports there and asks its pruner, which compares
    with what the other processes reported: at least a third of the clearly bad trials are stopped there."""
    check(search.run("mode=curve", "epochs=6", "offset=choice(0,10)", "+mlx.use_scheduler=true",
                     "+mlx.scheduler.workers=2", "+mlx.sweeper.parallel=2", "+mlx.sweeper.n_trials=16",
                     "+mlx.sweeper.sampler=random", "+mlx.sweeper.seed=0", "+mlx.sweeper.poll_interval=0.1", *pruner,
                     timeout=240))
    trials = search.trials()
    bad = [log_id for log_id, t in trials.items() if t["params"]["offset"] == 10]
    pruned = [log_id for log_id, t in trials.items() if t["state"] == "PRUNED"]
    assert 3 <= len(bad) <= len(trials) - 3, trials  # the seed gives both kinds
    assert len(set(pruned) & set(bad)) * 3 >= len(bad), (pruned, bad)
    for log_id in pruned:
        info = search.info(log_id)
        assert info["status"] == "PRUNED" and f"+mlx.logger.forced_log_id={log_id}" in info["argv"]
        assert 0 < len(search.rows(log_id)) < 6  # stopped early in its worker, its rows kept
