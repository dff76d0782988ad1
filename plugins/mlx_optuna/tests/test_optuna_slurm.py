"""A search whose trials run as arrays on a real (local, one-node) SLURM: waves of three jobs, watched through
the run store and squeue/sacct, pruning decided inside the jobs."""

from __future__ import annotations

import pytest
from optuna_testlib import Search, check


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
