"""Bad options fail before anything is written, with one line naming the value and what is valid; the plugin
loads without Optuna."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlx_optuna.options import parse_options
from optuna_testlib import TASK, Search

from mlxcore.errors import ConfigError
from mlxcore.settings import set_dotted

BAD = {
    "unknown sampler": (("x=interval(0,1)", "+mlx.sweeper.sampler=tpee"),
                        "unknown mlx.sweeper.sampler 'tpee' (did you mean 'tpe'?); valid: cmaes, grid, random, tpe"),
    "parallel without a scheduler": (("x=interval(0,1)", "+mlx.sweeper.parallel=2"),
                                     "add +mlx.use_scheduler=true (the local pool: +mlx.scheduler.workers=N)"),
    "grid sampler over an interval": (("x=interval(0,1)", "+mlx.sweeper.sampler=grid"),
                                      "'x=interval(0,1)': the grid sampler needs a finite list of values"),
    "unknown sampler argument": (("x=interval(0,1)", "+mlx.sweeper.sampler=tpe",
                                  "+mlx.sweeper.sampler.n_startup=3"),
                                 ("unknown argument of the tpe sampler (mlx.sweeper.sampler.<argument>) 'n_startup' "
                                  "(did you mean 'n_startup_trials'?); valid: ")),
    "unknown pruner": (("x=interval(0,1)", "+mlx.sweeper.pruner=mediam"), "valid: hyperband, median, none"),
    "nothing to search": (("x=1",), "nothing to search: give interval(), choice() or range()"),
    "unknown option": (("x=interval(0,1)", "+mlx.sweeper.trials=3"),
                       "unknown option of sweeper 'optuna' (mlx.sweeper.<option>) 'trials'"),
    "bad n_trials": (("x=interval(0,1)", "+mlx.sweeper.n_trials=0"),
                     "mlx.sweeper.n_trials must be a positive integer, got 0"),
    "without a logger": (("x=interval(0,1)", "+mlx.use_logger=false"),
                         "the optuna sweeper reads each trial's metric from its run, and mlx.use_logger=false"),
    "a forced log id": (("x=interval(0,1)", "+mlx.logger.forced_log_id=3"),
                        "mlx.logger.forced_log_id cannot be combined with a search"),
    "bad direction": (("x=interval(0,1)", "+mlx.sweeper.direction=down"),
                      "unknown mlx.sweeper.direction 'down'; valid: maximize, minimize"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_option_is_one_line_and_writes_nothing(search: Search, name: str) -> None:
    args, message = BAD[name]
    result = search.run(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxcore: error: ") and message in lines[0], lines
    assert not search.logs.exists()


def test_a_missing_metric_is_one_line_and_writes_nothing(search: Search) -> None:
    logs = search.logs
    result = subprocess.run([sys.executable, str(TASK), "x=interval(0,1)", "+mlx.sweeper.name=optuna",
                             f"+mlx.logger.parent_log_dir={logs}"], cwd=search.root, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == ("mlxcore: error: mlx.sweeper.metric is required: the logged value to optimise, "
                                     "'<stream>.<key>', e.g. +mlx.sweeper.metric=train.loss")
    assert not logs.exists()


def test_sampler_and_pruner_given_as_dotted_options() -> None:
    """``+mlx.sweeper.sampler=tpe +mlx.sweeper.sampler.n_startup_trials=5`` is a mapping with a name."""
    options: dict = {"metric": "train.loss"}
    for key, value in (("sampler", "tpe"), ("sampler.n_startup_trials", 5), ("pruner", "median"),
                       ("pruner.n_warmup_steps", 2)):
        set_dotted(options, key, value)
    parsed = parse_options(options)
    assert parsed.sampler == {"name": "tpe", "n_startup_trials": 5}
    assert parsed.pruner == {"name": "median", "n_warmup_steps": 2}


@pytest.mark.parametrize("options, message", [
    ({"sampler": {"name": "random", "seed": 3}}, "mlx.sweeper.sampler.seed: given by mlx.sweeper.seed"),
    ({"pruner": "percentile"}, "mlx.sweeper.pruner {'name': 'percentile'}: "),
    ({"metric": "loss"}, "metric 'loss' must be '<stream>.<key>'"),
    ({"reduce": "mean"}, "unknown mlx.sweeper.reduce 'mean'; valid: last, max, min"),
    ({"retry_failed": -1}, "mlx.sweeper.retry_failed must be an integer >= 0"),
    ({"poll_interval": 0}, "mlx.sweeper.poll_interval must be a number of seconds"),
    ({"seed": "x"}, "mlx.sweeper.seed must be an integer or null"),
])
def test_option_checks(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_options({"metric": "train.loss", **options})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_loading_the_plugin_imports_no_optuna() -> None:
    code = ("import sys, mlxcore; from mlxcore.plugins import get_sweeper_class; "
            "cls = get_sweeper_class('optuna'); assert cls.name == 'optuna'; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'cmaes')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    listed = subprocess.run([sys.executable, "-m", "mlxcore", "plugins"], capture_output=True, text=True, check=True)
    assert "mlxcore-optuna" in listed.stdout and "optuna" in listed.stdout
