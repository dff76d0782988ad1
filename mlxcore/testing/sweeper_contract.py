"""A contract test suite any sweeper plugin runs against itself (opt-in, needs pytest).

Subclass :class:`SweeperContract` and give the sweeper's name and the options of a small search (a few trials)
that reads its objective from the metric ``train.loss`` and minimises it::

    from mlxcore.testing import SweeperContract

    class TestMySweeper(SweeperContract):
        @pytest.fixture
        def sweeper_name(self):
            return "optuna"

        @pytest.fixture
        def sweeper_options(self):
            return {"metric": "train.loss", "n_trials": 5, "seed": 0}

The searches run in this process through the core's :class:`~mlxcore.sweepers.runner.TrialRunner` over
``x=interval(0,4) y=choice(0,1)`` (override ``search_args``), with a task that logs ``train.loss`` for three
epochs and reports it to ``ctx.trial``. Checked: the sweeper is registered and refuses an unknown option in
one line; each trial is a run that ended, whose ``info.trial`` names the sweeper and a trial number no other
run has, and whose config holds the values the sweeper sampled, inside their dimensions; ``ctx.trial`` (when
the sweeper gives one) is a :class:`~mlxcore.sweepers.base.Trial` of that run; the same search launched again
runs no trial twice (set ``resumable = False`` for a sweeper that does not resume: it then runs the whole
search again in new runs, leaving the first search's runs as they were).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from ..errors import ConfigError
from ..store import RunStore
from ..sweepers.base import Trial

SEEN = "contract"  #: the stream in which the task logs what ctx.trial told it


def contract_task(ctx: Any) -> None:
    """The searched task: ``loss = (x - 1)**2 + y + 1/(epoch + 1)``, reported each epoch."""
    trial = ctx.trial
    ctx.logger.log_metrics({"number": -1 if trial is None else trial.number,
                            "is_trial": int(trial is None or isinstance(trial, Trial))}, log_name=SEEN)
    for epoch in range(3):
        loss = (float(ctx.config.x) - 1) ** 2 + float(ctx.config.y) + 1 / (epoch + 1)
        ctx.logger.log_metrics({"loss": loss, "epoch": epoch}, log_name="train")
        if trial is not None:
            trial.report(loss, epoch)


@dataclass
class Search:
    """Launches the search in this process, as ``python main.py <args> +mlx.sweeper.name=<name> ...`` would."""

    root: Path
    name: str
    options: dict[str, Any]
    args: list[str]

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def launch(self) -> int:
        from ..compose import Composer
        from ..overrides import parse_command_line
        from ..plugins import get_sweeper_class
        from ..settings import build_settings
        from ..sweepers.runner import TrialRunner

        configs = self.root / "configs"
        configs.mkdir(parents=True, exist_ok=True)
        (configs / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "x": 0.0, "y": 0}))
        settings = build_settings({"logger": {"parent_log_dir": str(self.logs)},
                                   "sweeper": {"name": self.name, **self.options}})
        plan = parse_command_line(self.args, configs)
        runner = TrialRunner(contract_task, settings, Composer(configs), None, None, plan.mlx_overrides)
        return get_sweeper_class(self.name).from_settings(settings.sweeper.options).sweep(plan, runner)

    def runs(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """``(info, config)`` of each run, by id."""
        store = RunStore(self.logs)
        return [(run.info, run.read_config() or {}) for run in map(store.open, store.ids())]


class SweeperContract:
    """Behaviour every sweeper must show."""

    #: the same search launched again continues it (runs no trial twice)
    resumable: ClassVar[bool] = True

    @pytest.fixture
    def sweeper_name(self) -> str:
        raise NotImplementedError("override the sweeper_name fixture")

    @pytest.fixture
    def sweeper_options(self) -> dict[str, Any]:
        """Options of a small search minimising ``train.loss`` (override with what the sweeper needs)."""
        return {}

    @pytest.fixture
    def search_args(self) -> list[str]:
        return ["x=interval(0,4)", "y=choice(0,1)"]

    @pytest.fixture
    def search(self, tmp_path: Path, sweeper_name: str, sweeper_options: dict[str, Any],
               search_args: list[str]) -> Search:
        return Search(tmp_path / "project", sweeper_name, dict(sweeper_options), list(search_args))

    def test_it_is_registered_and_refuses_an_unknown_option_in_one_line(self, sweeper_name: str,
                                                                         sweeper_options: dict[str, Any]) -> None:
        from ..plugins import get_plugin_manager, get_sweeper_class

        names = get_plugin_manager().registry("sweepers").names()
        assert sweeper_name in names, f"{sweeper_name!r} is not registered; sweepers: {names}"
        cls = get_sweeper_class(sweeper_name)
        cls.from_settings(dict(sweeper_options))
        with pytest.raises(ConfigError) as caught:
            cls.from_settings({**sweeper_options, "no_such_option": 1})
        assert "no_such_option" in str(caught.value) and "\n" not in str(caught.value)

    def test_each_trial_is_an_ended_run_with_its_own_trial_record_and_values(self, search: Search) -> None:
        assert search.launch() == 0
        runs = search.runs()
        assert runs, "the search ran no trial"
        seen = set()
        for info, config in runs:
            trial = info.get("trial")
            assert isinstance(trial, dict), f"run {info.get('log_id')} has no info.trial"
            assert trial.get("sweeper") == search.name
            assert isinstance(trial.get("number"), int)
            key = (trial.get("study"), trial["number"])
            assert key not in seen, f"two runs for trial {key}"
            seen.add(key)
            assert info.get("status") in ("COMPLETE", "PRUNED"), info.get("status")
            assert 0.0 <= float(config["x"]) <= 4.0 and config["y"] in (0, 1), config
            for name, value in (trial.get("params") or {}).items():
                assert config.get(name) == value, f"trial {key} sampled {name}={value}, its run has {config}"

    def test_ctx_trial_is_the_runs_own_trial(self, search: Search) -> None:
        assert search.launch() == 0
        from ..sweepers.objective import read_metric

        store = RunStore(search.logs)
        for log_id in store.ids():
            run = store.open(log_id)
            number = read_metric(run.root, f"{SEEN}.number")
            assert read_metric(run.root, f"{SEEN}.is_trial") == 1, "ctx.trial is not a mlxcore.sweepers.base.Trial"
            assert number in (-1, run.info["trial"]["number"]), f"run {log_id} saw trial {number}"

    def test_the_same_search_again_runs_no_trial_twice(self, search: Search) -> None:
        """A resumable sweeper runs nothing more; one that does not resume runs its whole search again, in new
        runs (the first search's runs untouched)."""
        assert search.launch() == 0
        first = search.runs()
        assert search.launch() == 0
        runs = search.runs()
        if self.resumable:
            assert len(runs) == len(first), "the same search launched again ran trials again"
        else:
            assert len(runs) == 2 * len(first) and runs[:len(first)] == first, "a search launched again"
