"""The ``optuna`` sweeper: a search over the command line's ``interval()``, ``choice()`` and ``range()`` keys.

``python train.py lr='tag(log, interval(1e-4, 1))' layers='range(1,5)' +mlx.sweeper.name=optuna
+mlx.sweeper.metric=val.loss`` asks an Optuna study for ``n_trials`` points, ``parallel`` at a time, runs each as
an ordinary run (in this process or through the selected scheduler) and tells the study the metric its run
logged. Bare ``a,b,c`` lists stay grid axes: each grid point gets a study of its own, searched one after the
other. Everything the sweeper needs to resume is in the study's journal and the runs' ``info.trial``, so the
same command, run again, finishes a search whose launcher was killed (:mod:`.search`), and this module is
imported without Optuna (the plugin's hook imports it just to register the class).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxcore import store
from mlxcore.errors import ConfigError, MlxcoreError
from mlxcore.sweepers.base import Sweeper, Trial

from .options import SearchOptions, parse_options
from .trial import study_lock

if TYPE_CHECKING:
    from mlxcore.overrides import SweepPlan
    from mlxcore.sweepers.runner import TrialRunner

log = logging.getLogger("mlxcore.optuna")


class OptunaSweeper(Sweeper):
    """Samples points with an Optuna sampler, prunes trials with an Optuna pruner; see the module docstring."""

    name = "optuna"

    def __init__(self, options: SearchOptions) -> None:
        self.options = options

    @classmethod
    def from_settings(cls, options: dict[str, Any]) -> OptunaSweeper:
        return cls(parse_options(options))

    def sweep(self, plan: SweepPlan, runner: TrialRunner) -> int:
        from .search import StudySearch
        from .space import SearchSpace, study_name
        from .trial import journal_path, open_storage

        options = self.options
        # every check first: a bad command writes nothing, not even the journal
        if options.parallel > 1 and runner.in_process:
            raise ConfigError(f"mlx.sweeper.parallel={options.parallel} runs trials side by side, which needs a "
                              "scheduler: add +mlx.use_scheduler=true (the local pool: +mlx.scheduler.workers=N)")
        if not runner.settings.use_logger:
            raise ConfigError("the optuna sweeper reads each trial's metric from its run, and mlx.use_logger=false "
                              "writes none: drop +mlx.use_logger=false")
        if runner.settings.logger.forced_log_id is not None:
            raise ConfigError("mlx.logger.forced_log_id cannot be combined with a search: each trial is a run of "
                              "its own (the same command run again resumes the search)")
        grid, dimensions = plan.search()
        space = SearchSpace(dimensions)
        n_trials = options.n_trials
        if options.sampler["name"] == "grid":
            size = space.size()
            if size < n_trials:
                log.info("the grid sampler has %d point(s): n_trials=%d lowered to %d", size, n_trials, size)
                n_trials = size
        if options.study is not None and len(grid) > 1:
            raise ConfigError(f"mlx.sweeper.study={options.study!r} names one study, but the command has "
                              f"{len(grid)} grid points (a,b,c lists), each a study of its own: drop the option")
        path = journal_path(runner.log_dir_root)
        storage = open_storage(path)
        failed = False
        for point in grid.points():
            combo = point[len(grid.fixed):]
            name = options.study or study_name(sys.argv[0], grid.fixed, combo, dimensions, options)
            search = StudySearch(options, space, runner, storage, path.absolute(), name, point, n_trials)
            try:
                with study_lock(path, name):
                    search.run()
            except MlxcoreError:
                raise  # a user error: its one line alone
            except BaseException:  # interrupted: where the study stands, then the launch's exit 128+N
                if search.study is not None:
                    log.info("%s", search.summary())
                raise
            failed = failed or search.failed
            log.info("%s", search.summary())
            if runner.stop_requested is not None:
                log.warning("stop requested (%s): the search ends here; run the same command again to go on",
                            runner.stop_requested)
                # as a grid's preempted run does: a launcher that is itself a cluster job may be requeued
                return 1 if failed else store.PREEMPTED_EXIT_CODE
        return 1 if failed else 0

    @classmethod
    def open_trial(cls, record: dict[str, Any], run_dir: Path) -> Trial | None:
        from .trial import OptunaTrial

        if not all(key in record for key in ("study", "storage", "number", "trial_id")):
            return None  # not a record this sweeper wrote
        return OptunaTrial(record)
