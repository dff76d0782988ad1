"""Searches in this process, end to end: the optimum is found, a finished command launches nothing, a bigger
n_trials extends the study, failures are told FAIL and retried, grid axes get a study each."""

from __future__ import annotations

import json

from optuna_testlib import Search, check

QUAD = ("mode=quad", "x=interval(-5,5)", "y=interval(-5,5)")


def test_seeded_tpe_finds_the_optimum(search: Search) -> None:
    """(x-2)^2 + (y+1)^2 over [-5,5]^2: 40 seeded TPE trials get within 0.5 of (2, -1) on each axis."""
    result = check(search.run(*QUAD, "+mlx.sweeper.n_trials=40", "+mlx.sweeper.seed=0"))
    (study,) = search.studies()
    assert len(study.trials) == 40 and all(t.state.name == "COMPLETE" for t in study.trials)
    best = study.best_trial
    assert best.value <= 0.25, best
    assert abs(best.params["x"] - 2) <= 0.5 and abs(best.params["y"] + 1) <= 0.5, best.params
    # each trial is one run whose info records it, and the study knows the run of each trial
    trials = search.trials()
    assert sorted(t["number"] for t in trials.values()) == list(range(40))
    run = trials[best.user_attrs["log_id"]]
    assert run["number"] == best.number and run["state"] == "COMPLETE" and run["value"] == best.value
    assert run["params"] == best.params and run["metric"] == "train.loss" and run["study"] == study.study_name
    assert f"best: trial {best.number} (run {best.user_attrs['log_id']}) train.loss=" in result.stderr


def test_a_finished_command_launches_nothing_and_more_trials_extend_it(search: Search) -> None:
    args = (*QUAD, "+mlx.sweeper.sampler=random", "+mlx.sweeper.seed=3")
    check(search.run(*args, "+mlx.sweeper.n_trials=3"))
    assert search.run_ids() == [1, 2, 3]
    again = check(search.run(*args, "+mlx.sweeper.n_trials=3"))
    assert search.run_ids() == [1, 2, 3], again.stderr
    check(search.run(*args, "+mlx.sweeper.n_trials=5", "+mlx.sweeper.sampler=tpe"))  # how to search: not the study
    (study,) = search.studies()
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert sorted(t["number"] for t in search.trials().values()) == [0, 1, 2, 3, 4]


def test_a_failed_trial_is_retried_with_its_params(search: Search) -> None:
    (search.root / "flaky").write_text("")  # the first trial fails and removes it: its retry succeeds
    result = search.run("mode=fail", "x=interval(0,1)", "fail_file=flaky", "+mlx.sweeper.n_trials=3",
                        "+mlx.sweeper.retry_failed=1")
    check(result, 1)  # a trial of this launch failed
    (study,) = search.studies()
    states = [t.state.name for t in study.trials]
    assert states == ["FAIL", "COMPLETE", "COMPLETE"], states
    first, retry = study.trials[0], study.trials[1]
    assert retry.user_attrs["retry_of"] == 0 and retry.params == first.params
    trials = search.trials()
    assert trials[2]["retry_of"] == 0 and trials[1]["state"] == "FAIL" and trials[2]["state"] == "COMPLETE"
    assert "enqueued again" in result.stderr


def test_retries_stop_after_retry_failed(search: Search) -> None:
    check(search.run("mode=fail", "x=interval(0,1)", "+mlx.sweeper.n_trials=4", "+mlx.sweeper.retry_failed=1"), 1)
    (study,) = search.studies()
    assert [t.state.name for t in study.trials] == ["FAIL"] * 4
    assert [t.user_attrs.get("retry_of") for t in study.trials] == [None, 0, None, 2]


def test_a_trial_that_never_logged_its_metric_is_fail(search: Search) -> None:
    result = check(search.run("mode=silent", "x=interval(0,1)", "+mlx.sweeper.n_trials=2"), 1)
    (study,) = search.studies()
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert "train.loss was not logged as a finite number" in result.stderr and "run 1" in result.stderr
    assert {t["state"] for t in search.trials().values()} == {"FAIL"}
    assert all(search.info(i)["status"] == "COMPLETE" for i in search.run_ids())  # the runs themselves ended well


def test_grid_axes_get_a_study_each(search: Search) -> None:
    check(search.run("mode=quad", "x=interval(-5,5)", "y=0,1", "+mlx.sweeper.n_trials=2"))
    studies = search.studies()
    assert len(studies) == 2 and all(len(s.trials) == 2 for s in studies)
    by_study: dict[str, set] = {}
    for log_id, trial in search.trials().items():
        config = json.dumps(search.info(log_id)["overrides"])
        by_study.setdefault(trial["study"], set()).add("y=0" in config)
    assert sorted(by_study.values(), key=str) == [{False}, {True}]


def test_the_grid_sampler_runs_each_point_of_choices_and_ranges_once(search: Search) -> None:
    result = check(search.run("mode=quad", "x=choice(1,2,3)", "y=range(-2,1)", "+mlx.sweeper.sampler=grid",
                              "+mlx.sweeper.n_trials=50"))
    assert "n_trials=50 lowered to 9" in result.stderr
    points = {(t["params"]["x"], t["params"]["y"]) for t in search.trials().values()}
    assert points == {(x, y) for x in (1, 2, 3) for y in (-2, -1, 0)}
    (study,) = search.studies()
    assert study.best_trial.params == {"x": 2, "y": -1}


def test_choices_of_lists_are_searched_by_their_text(search: Search) -> None:
    check(search.run("mode=quad", "x=interval(1.9,2.1)", "+layers=choice([1,2],[3])", "+mlx.sweeper.n_trials=4",
                     "+mlx.sweeper.sampler=random", "+mlx.sweeper.seed=1"))
    layers = {json.dumps(search.info(i)["trial"]["params"]["layers"]) for i in search.run_ids()}
    assert layers <= {'"[1,2]"', '"[3]"'}
    for log_id in search.run_ids():
        config = (search.logs / str(log_id) / "metadata" / "config.yaml").read_text()
        assert "layers:\n- 1\n- 2" in config or "layers:\n- 3" in config


def test_a_trial_asked_but_never_run_is_launched_by_the_next_launch(search: Search) -> None:
    """A launcher killed between ask and the run's creation leaves a RUNNING trial with no run."""
    from optuna.distributions import FloatDistribution

    args = ("mode=quad", "x=interval(-5,5)", "y=interval(-5,5)", "+mlx.sweeper.study=manual")
    check(search.run(*args, "+mlx.sweeper.n_trials=2"))
    (study,) = search.studies()
    orphan = study.ask({"x": FloatDistribution(-5, 5), "y": FloatDistribution(-5, 5)})
    result = check(search.run(*args, "+mlx.sweeper.n_trials=3"))
    assert "trial 2 of study manual has no run: launching it" in result.stderr
    (study,) = search.studies()
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    trials = search.trials()
    assert trials[3]["number"] == 2 and trials[3]["params"] == orphan.params and len(trials) == 3


def test_an_existing_study_of_the_other_direction_is_refused(search: Search) -> None:
    check(search.run(*QUAD, "+mlx.sweeper.study=s", "+mlx.sweeper.n_trials=1"))
    result = search.run(*QUAD, "+mlx.sweeper.study=s", "+mlx.sweeper.direction=maximize")
    assert result.returncode == 2 and search.run_ids() == [1]
    last = result.stderr.strip().splitlines()[-1]  # Optuna's own line "Using an existing study" comes first
    assert last.startswith("mlxcore: error: study 's'") and "was made to minimize, not to maximize" in last
    assert "mlxcore: study s:" not in result.stderr  # no summary line beside the error


def test_a_state_told_but_not_recorded_is_recorded_by_the_next_launch(search: Search) -> None:
    """A launcher killed between telling the study and recording the state in the run."""
    from mlxcore.store import RunStore

    check(search.run(*QUAD, "+mlx.sweeper.n_trials=2"))
    run = RunStore(search.logs).open(2)
    told = dict(run.info["trial"])
    run.update_info(trial={k: v for k, v in told.items() if k not in ("state", "value")})
    assert "state" not in search.info(2)["trial"]
    check(search.run(*QUAD, "+mlx.sweeper.n_trials=2"))
    assert search.run_ids() == [1, 2]
    assert search.info(2)["trial"]["state"] == "COMPLETE" and search.info(2)["trial"]["value"] == told["value"]


def test_an_existing_study_of_another_search_space_is_refused(search: Search) -> None:
    check(search.run(*QUAD, "+mlx.sweeper.study=s", "+mlx.sweeper.n_trials=1"))
    other = search.run("mode=quad", "x=choice(1,2)", "y=interval(-5,5)", "+mlx.sweeper.study=s")
    assert other.returncode == 2 and "mlxcore: error: study 's' searched 'x' as FloatDistribution" in other.stderr
    fewer = search.run("mode=quad", "x=interval(-5,5)", "+mlx.sweeper.study=s")
    assert fewer.returncode == 2 and "mlxcore: error: study 's' searched x, y, not x:" in fewer.stderr
    (study,) = search.studies()
    assert len(study.trials) == 1 and search.run_ids() == [1]
