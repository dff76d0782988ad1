"""Sweepers: the grid as the builtin sweeper, search dimensions from hydra's grammar, and a third-party search
sweeper (``ladder``, in ``tests/apps/sweep_app.py``) whose trials are ordinary runs, in this process and through
the local pool, with ``ctx.trial`` and the PRUNED status."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from mlxcore import Reader
from mlxcore.errors import ConfigError
from mlxcore.overrides import CHOICE, INTERVAL, RANGE, parse_command_line
from mlxcore.sweepers.objective import read_metric
from mlxcore.testing import SweeperContract
from mlxcore.testing.sweeper_contract import Search

APPS = Path(__file__).parent / "apps"


@pytest.fixture
def search(project):
    shutil.copy(APPS / "sweep_app.py", project.root / "main.py")
    project.write_config({"seed": 0, "x": 0.0, "y": 0, "fail_at": None})
    return project


def test_search_dimensions_keep_each_form_and_the_bare_list_stays_a_grid_axis(tmp_path):
    plan = parse_command_line(["x=interval(0,2)", "lr=tag(log, interval(1e-4, 1))", "+n=range(1,7,2)",
                               "opt=choice(sgd,adam)", "seed=1,2", "fixed=3"], tmp_path)
    forms = {d.key: (d.form, d.simple, sorted(d.tags)) for d in plan.dimensions}
    assert forms == {"x": (INTERVAL, False, []), "lr": (INTERVAL, False, ["log"]), "n": (RANGE, False, []),
                     "opt": (CHOICE, False, []), "seed": (CHOICE, True, [])}
    n = next(d for d in plan.dimensions if d.key == "n")
    assert (n.low, n.high, n.step, n.choices) == (1, 5, 2, (1, 3, 5))  # both ends included, as sampled
    grid, sampled = plan.search()
    assert [d.key for d in sampled] == ["x", "lr", "n", "opt"]
    assert [[o.text for o in p] for p in grid.points()] == [["fixed=3", "seed=1"], ["fixed=3", "seed=2"]]
    # a sampled value becomes an override hydra parses back to the same value
    texts = [next(d for d in sampled if d.key == k).override(v).text for k, v in
             (("x", 0.25), ("n", 3), ("opt", "adam"), ("lr", 1e-3))]
    assert texts == ["x=0.25", "+n=3", "opt=adam", "lr=0.001"]
    again = parse_command_line(texts, tmp_path)
    assert [o.value for o in again.fixed] == [0.25, 3, "adam", 0.001]
    # the grid sweep of range() and choice() is what it was
    assert len(plan) == 3 * 2 * 2
    # tag(grid, ...) keeps a sampled form a grid axis
    grid, sampled = parse_command_line(["x=interval(0,1)", "seed=tag(grid, range(1,4))"], tmp_path).search()
    assert [d.key for d in sampled] == ["x"] and [[o.text for o in p] for p in grid.points()] == [
        ["seed=1"], ["seed=2"], ["seed=3"]]


def test_the_grid_refuses_an_interval_in_one_line_and_writes_nothing(project):
    result = project.run("x=interval(0,1)")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "interval() has no list of values" in result.stderr and "+mlx.sweeper.name=optuna" in result.stderr
    assert project.run_ids() == []


def test_an_unknown_sweeper_names_the_valid_ones(project):
    result = project.run("x=1,2", "+mlx.sweeper.name=optna")
    assert result.returncode == 2 and "unknown mlx.sweeper.name 'optna'" in result.stderr and "grid" in result.stderr
    assert project.run_ids() == []


def test_a_sweeper_option_is_checked_before_anything_is_written(search):
    result = search.run("x=interval(0,2)", "+mlx.sweeper.name=ladder", "+mlx.sweeper.n_trails=3")
    assert result.returncode == 2 and "unknown ladder option 'n_trails'" in result.stderr
    assert search.run_ids() == []
    result = search.run("x=interval(0,2)", "+mlx.sweeper.n_trials=3")  # the grid takes no option
    assert result.returncode == 2 and "n_trials" in result.stderr


def test_trials_in_process_are_runs_with_their_trial_record_ctx_trial_and_pruning(search):
    result = search.run("x=interval(0,2)", "+mlx.sweeper.name=ladder", "+mlx.sweeper.n_trials=5",
                        "+mlx.sweeper.prune_above=1.5")
    assert result.returncode == 0, result.stderr
    ids = search.run_ids()
    assert ids == [1, 2, 3, 4, 5]
    infos = [search.info(i) for i in ids]
    xs = [search.config(i)["x"] for i in ids]
    assert xs == [0.0, 0.5, 1.0, 1.5, 2.0]
    # x=0 and x=2 start with a loss of 2 > 1.5: pruned at their first report; the others complete
    assert [i["status"] for i in infos] == ["PRUNED", "COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]
    assert [i["trial"]["state"] for i in infos] == ["PRUNED", "COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]
    assert [i["trial"]["number"] for i in infos] == [0, 1, 2, 3, 4]
    assert infos[2]["trial"]["value"] == pytest.approx(1 / 3)
    assert infos[0]["pruned"]["type"] == "TrialPruned" and "error" not in infos[0]
    # the task saw its trial (ctx.trial.number) and a pruned run keeps its rows
    assert read_metric(search.logs / "1", "train.trial") == 0
    assert read_metric(search.logs / "1", "train.epoch") == 0
    assert read_metric(search.logs / "4", "train.epoch") == 2
    # queryable like any other field
    with Reader(search.logs) as reader:
        pruned = reader.filter("info.trial.state == 'PRUNED'")
        assert sorted(pruned["log_id"]) == [1, 5]
        assert sorted(reader.filter("info.status == 'PRUNED'")["log_id"]) == [1, 5]


def test_a_failed_trial_makes_the_exit_code_1_and_is_recorded_as_such(search):
    result = search.run("x=interval(0,2)", "+mlx.sweeper.name=ladder", "+mlx.sweeper.n_trials=3", "fail_at=1.0")
    assert result.returncode == 1
    infos = [search.info(i) for i in search.run_ids()]
    assert [i["status"] for i in infos] == ["COMPLETE", "FAILED", "COMPLETE"]
    assert infos[1]["trial"]["state"] == "FAIL" and infos[1]["error"]["type"] == "ValueError"


def test_trials_through_the_local_pool_run_as_jobs_that_see_ctx_trial(search):
    result = search.run("x=interval(0,2)", "y=0,1", "+mlx.sweeper.name=ladder", "+mlx.sweeper.n_trials=4",
                        "+mlx.sweeper.parallel=2", "+mlx.use_scheduler=true", "+mlx.scheduler.workers=2",
                        "+mlx.sweeper.prune_above=2.5", timeout=240)
    assert result.returncode == 0, result.stderr
    ids = search.run_ids()
    assert len(ids) == 8  # a search of 4 trials per grid point (y=0, y=1)
    infos = {i: search.info(i) for i in ids}
    for log_id, info in infos.items():
        assert info["trial"]["sweeper"] == "ladder"
        assert info["trial"]["state"] in ("COMPLETE", "PRUNED")
        # the job ran one point, not a search of its own, and saw its own trial
        assert "+mlx.sweeper.name=ladder" in info["argv"] and f"+mlx.logger.forced_log_id={log_id}" in info["argv"]
        assert read_metric(search.logs / str(log_id), "train.trial") == info["trial"]["number"]
        reports = (search.logs / str(log_id) / "ladder-reports.jsonl").read_text().splitlines()
        assert reports, log_id
    studies = sorted({info["trial"]["study"] for info in infos.values()})
    assert studies == ["y=0", "y=1"]
    # y=1 adds 1 to every loss: x=0 and x=2 (first loss 3) are pruned there, and only there
    pruned = sorted((info["trial"]["study"], info["trial"]["number"]) for info in infos.values()
                    if info["status"] == "PRUNED")
    assert pruned == [("y=1", 0), ("y=1", 3)]
    recorded = yaml.safe_load((search.logs / str(ids[0]) / "metadata" / "mlx.yaml").read_text())
    assert recorded["sweeper"]["name"] == "ladder"  # the record keeps what the launch used


def test_a_task_raising_trial_pruned_outside_a_search_ends_pruned_and_exits_0(project):
    (project.root / "main.py").write_text(
        "import mlxcore\n\n@mlxcore.launch(config_path='./configs')\ndef main(ctx):\n"
        "    ctx.logger.log_metrics({'loss': 1.0}, log_name='train')\n"
        "    assert ctx.trial is None\n    raise mlxcore.TrialPruned('hopeless')\n\n"
        "if __name__ == '__main__':\n    main()\n")
    result = project.run()
    assert result.returncode == 0, result.stderr
    info = project.info(1)
    assert info["status"] == "PRUNED" and info["pruned"]["message"] == "hopeless"
    assert read_metric(project.logs / "1", "train.loss") == 1.0


def test_read_metric_last_min_max_and_what_it_refuses(tmp_path):
    run = tmp_path / "1"
    (run / "metrics").mkdir(parents=True)
    (run / "metrics" / "train.json").write_text('{"loss": 3}\n{"loss": 1.5}\n{"loss": NaN}\n{"acc": 1}\n{"loss": 2')
    assert read_metric(run, "train.loss", "last") != read_metric(run, "train.loss", "last")  # NaN: a diverged run
    assert read_metric(run, "train.loss", "min") == 1.5 and read_metric(run, "train.loss", "max") == 3.0
    assert read_metric(run, "train.nothing") is None and read_metric(run, "valid.loss") is None
    with pytest.raises(ConfigError, match="valid: last, min, max"):
        read_metric(run, "train.loss", "mean")
    with pytest.raises(ConfigError, match=r"<stream>\.<key>"):
        read_metric(run, "loss")


def _ladder_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ladder_app", APPS / "sweep_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ladder(fresh_plugins):
    """The ladder sweeper (and the broken ones below) registered for this test, as installed plugins would be."""
    module = _ladder_module()
    broken = type("BrokenSweepers", (), {})()

    class Recordless(module.LadderSweeper):  # its trials' runs do not say which sweeper made them
        name = "recordless"

        def sweep(self, plan, runner):
            original = runner.run
            runner.run = lambda points, **kw: original([type(p)(p.overrides, {}) for p in points], **kw)
            return super().sweep(plan, runner)

    class Outside(module.LadderSweeper):  # samples beyond the interval it was given
        name = "outside"

        @staticmethod
        def _value(dim, i, n):
            return dim.high + 1 if dim.form == "interval" else dim.choices[0]

    class Stingy(module.LadderSweeper):  # its ctx.trial is no Trial (it cannot report)
        name = "stingy"

        @classmethod
        def open_trial(cls, record, run_dir):
            return object()

    from mlxcore import hookimpl

    @hookimpl
    def register_sweepers(register):
        for cls in (module.LadderSweeper, Recordless, Outside, Stingy):
            register(cls)

    broken.register_sweepers = register_sweepers
    fresh_plugins.set_plugin_manager(fresh_plugins.new_plugin_manager(extra=(("test_sweepers", broken),)))
    return module


class TestLadderSweeper(SweeperContract):
    resumable = False  # the ladder starts again each time: it is the contract's own example of a simple sweeper

    @pytest.fixture
    def sweeper_name(self, ladder):
        return "ladder"

    @pytest.fixture
    def sweeper_options(self):
        return {"n_trials": 3}


class TestGridSweeper(SweeperContract):
    resumable = False

    @pytest.fixture
    def sweeper_name(self):
        return "grid"

    @pytest.fixture
    def search_args(self):
        return ["x=0.5,3", "y=0,1"]

    def test_each_trial_is_an_ended_run_with_its_own_trial_record_and_values(self, search):
        assert search.launch() == 0  # a grid makes ordinary runs, not trials: only the runs are checked
        assert sorted((c["x"], c["y"]) for _, c in search.runs()) == [(0.5, 0), (0.5, 1), (3, 0), (3, 1)]

    def test_ctx_trial_is_the_runs_own_trial(self, search):
        assert search.launch() == 0
        assert all(read_metric(search.logs / str(i), "contract.number") == -1 for i in range(1, 5))


def _fails(test, *args):
    try:
        test(*args)
    except AssertionError:
        return True
    return False


@pytest.mark.parametrize(("name", "test"), [
    ("recordless", "test_each_trial_is_an_ended_run_with_its_own_trial_record_and_values"),
    ("outside", "test_each_trial_is_an_ended_run_with_its_own_trial_record_and_values"),
    ("stingy", "test_ctx_trial_is_the_runs_own_trial"),
    ("ladder", "test_the_same_search_again_runs_no_trial_twice"),  # it does not resume
])
def test_the_sweeper_contract_fails_a_broken_sweeper(ladder, tmp_path, name, test):
    suite = SweeperContract()
    args = ["x=interval(0,4)", "y=choice(0,1)"]
    broken = Search(tmp_path / "broken", name, {"n_trials": 3}, args)
    assert _fails(getattr(suite, test), broken)
    if name != "ladder":  # the same test passes the ladder itself
        assert not _fails(getattr(suite, test), Search(tmp_path / "ladder", "ladder", {"n_trials": 3}, args))
