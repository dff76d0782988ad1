"""The median pruner stops clearly bad trials through ctx.trial: their runs end PRUNED with their rows kept,
and readers see the trial's state in ``info.trial.state``."""

from __future__ import annotations

from optuna_testlib import Search, check

import mlxcore


def test_the_median_pruner_prunes_clearly_bad_trials(search: Search) -> None:
    # loss = offset + 1/(epoch+1): offset 10 is clearly worse than offset 0 at every epoch
    check(search.run("mode=curve", "epochs=4", "offset=choice(0,10)", "+mlx.sweeper.n_trials=14",
                     "+mlx.sweeper.sampler=random", "+mlx.sweeper.seed=0", "+mlx.sweeper.pruner=median",
                     "+mlx.sweeper.pruner.n_startup_trials=2"))
    trials = search.trials()
    bad = [log_id for log_id, t in trials.items() if t["params"]["offset"] == 10]
    pruned = [log_id for log_id, t in trials.items() if t["state"] == "PRUNED"]
    assert len(bad) >= 3, trials
    assert set(pruned) <= set(bad)  # a good trial is never worse than the median
    assert len(pruned) * 3 >= len(bad), (pruned, bad)
    for log_id in pruned:
        assert search.info(log_id)["status"] == "PRUNED"
        rows = search.rows(log_id)
        assert rows and rows[0]["epoch"] == 0 and len(rows) < 4  # the rows up to the pruning are kept
    for log_id in set(trials) - set(pruned):
        assert search.info(log_id)["status"] == "COMPLETE"
    frame = mlxcore.Reader(search.logs).filter("info.trial.state == 'PRUNED'")
    assert sorted(frame["log_id"]) == sorted(pruned)
    (study,) = search.studies()
    assert sum(t.state.name == "PRUNED" for t in study.trials) == len(pruned)
    assert all(t.intermediate_values for t in study.trials)  # every trial reported from its run


def test_optunas_own_trial_pruned_ends_the_run_pruned(search: Search) -> None:
    check(search.run("mode=give_up", "x=interval(0,1)", "+mlx.sweeper.n_trials=2"))
    (study,) = search.studies()
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert [search.info(i)["status"] for i in search.run_ids()] == ["PRUNED", "PRUNED"]
    assert search.info(1)["pruned"]["type"] == "TrialPruned"
