"""One study's search: recover what a killed launcher left, then ask, run and tell in waves of ``parallel``.

The study (in the journal) is the truth about trials, the run store the truth about runs; each trial's run holds
the trial's number in ``info.trial``, so a launcher started again matches the two (:meth:`StudySearch.recover`)
and never runs a trial twice: a trial still RUNNING in the study whose run is going on is waited for, whose run
ended is told, whose run was stopped before it ended (INTERRUPTED, PREEMPTED, or DEAD: the killed launcher ran
it) is run again in the same run directory so that the task resumes from its checkpoint, and one that never got
a run is launched. A run's status maps onto the study as follows:

=============================================  =====================================================
the run ended                                  the trial is told
=============================================  =====================================================
COMPLETE, with a finite value of the metric    COMPLETE with that value
COMPLETE without one (never logged, NaN)       FAIL (logged: the metric was not logged)
PRUNED                                         PRUNED
FAILED, TIMEOUT, CANCELLED, DEAD, UNREADABLE,  FAIL (and, with ``retry_failed``, its params are
UNKNOWN                                        enqueued again)
INTERRUPTED, PREEMPTED, not started            nothing: it stays RUNNING and a rerun resumes it
=============================================  =====================================================
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxcore import store
from mlxcore.errors import ConfigError
from mlxcore.overrides import ConfigOverride
from mlxcore.sweepers.base import TrialPoint, TrialResult
from mlxcore.sweepers.runner import NOT_STARTED, TrialRunner

from .options import SearchOptions, build_pruner, build_sampler
from .space import SearchSpace

log = logging.getLogger("mlxcore.optuna")

#: the run was stopped before it ended: running it again in place resumes it
RESUMABLE = frozenset({store.INTERRUPTED, store.PREEMPTED, NOT_STARTED})
#: a run still going on (a launcher started again waits for it)
ACTIVE = frozenset({store.SUBMITTED, store.PENDING, store.RUNNING})


@dataclass
class Pending:
    """A trial asked of the study and handed to a run."""

    number: int
    trial_id: int
    point: TrialPoint


class StudySearch:
    """The search of one study (one grid point of the command)."""

    def __init__(self, options: SearchOptions, space: SearchSpace, runner: TrialRunner, storage: Any,
                 storage_path: Path, name: str, base: list[ConfigOverride], n_trials: int) -> None:
        self.options, self.space, self.runner = options, space, runner
        self.storage, self.storage_path, self.name, self.base = storage, storage_path, name, base
        self.n_trials = n_trials
        self.failed = False  # a trial of this launch was told FAIL: the exit code is 1
        self.study: Any = None

    def open(self) -> None:
        import optuna

        grid = self.space.grid() if self.options.sampler["name"] == "grid" else None
        self.study = optuna.create_study(
            storage=self.storage, study_name=self.name, load_if_exists=True,
            direction=optuna.study.StudyDirection[self.options.direction.upper()],
            sampler=build_sampler(self.options.sampler, self.options.seed, grid),
            pruner=build_pruner(self.options.pruner))
        self.check_space()
        direction = self.study.direction.name.lower()
        if direction != self.options.direction:
            raise ConfigError(f"study {self.name!r} ({self.storage_path}) was made to {direction}, not to "
                              f"{self.options.direction}: give +mlx.sweeper.direction={direction} or another "
                              "+mlx.sweeper.study")

    def check_space(self) -> None:
        """An existing study (named by ``study``) must have been searched over the same keys and kinds of values:
        Optuna would refuse the first ask only after making the trial."""
        from optuna.distributions import check_distribution_compatibility

        for trial in self.trials():
            if trial.params and set(trial.distributions) != set(self.space.distributions):
                raise ConfigError(f"study {self.name!r} searched {', '.join(sorted(trial.distributions))}, not "
                                  f"{', '.join(sorted(self.space.distributions))}: give another +mlx.sweeper.study")
            for key, distribution in trial.distributions.items():
                try:
                    check_distribution_compatibility(distribution, self.space.distributions[key])
                except ValueError as exc:
                    raise ConfigError(f"study {self.name!r} searched {key!r} as {distribution}: "
                                      f"{' '.join(str(exc).split())}; give another +mlx.sweeper.study") from None

    def run(self) -> None:
        """Recover, then search until the study holds ``n_trials`` asked trials or a stop is requested."""
        self.open()
        if not self.recover():
            return
        while self.runner.stop_requested is None:
            remaining = self.n_trials - self.asked()
            if remaining <= 0:
                break
            pending = [self.ask() for _ in range(min(self.options.parallel, remaining))]
            if not self.launch(pending):
                break

    # -- the study -------------------------------------------------------------------------------------------
    def trials(self, *states: Any) -> list[Any]:
        return self.study.get_trials(deepcopy=False, states=states or None)

    def asked(self) -> int:
        """Trials asked so far, whatever their state (a retry waiting in the queue is not asked yet)."""
        from optuna.trial import TrialState

        return sum(1 for t in self.trials() if t.state != TrialState.WAITING)

    def ask(self) -> Pending:
        try:
            trial = self.study.ask(self.space.distributions)
        except ValueError as exc:  # an explicit study name given to another search space
            raise ConfigError(f"study {self.name!r} cannot take this search space: {' '.join(str(exc).split())}; "
                              "give another +mlx.sweeper.study") from None
        return self.pending(trial.number, trial._trial_id, trial.params, trial.user_attrs.get("retry_of"))

    def pending(self, number: int, trial_id: int, params: dict[str, Any], retry_of: Any,
                log_id: int | None = None, record: dict[str, Any] | None = None) -> Pending:
        if record is None:
            record = {"sweeper": "optuna", "study": self.name, "storage": str(self.storage_path), "number": number,
                      "trial_id": trial_id, "params": dict(params), "metric": self.options.metric,
                      "reduce": self.options.reduce, "direction": self.options.direction,
                      "pruner": dict(self.options.pruner)}
            if retry_of is not None:
                record["retry_of"] = retry_of
        point = TrialPoint([*self.base, *self.space.overrides(params)], record, log_id)
        return Pending(number, trial_id, point)

    # -- running and telling ---------------------------------------------------------------------------------
    def launch(self, pending: Sequence[Pending]) -> bool:
        """Run the trials' points and tell each; False when one was left to resume (stop asking)."""
        if not pending:
            return True
        try:
            results = self.runner.run([p.point for p in pending], self.options.poll_interval)
        except ConfigError:  # a sampled point's config was refused: nothing of the wave was submitted
            for p in pending:
                self.tell(p.number, p.trial_id, TrialResult(None, None, store.FAILED, p.point.trial))
            raise
        return self.conclude(pending, results)

    def conclude(self, pending: Sequence[Pending], results: Sequence[TrialResult]) -> bool:
        go_on = True
        for p, result in zip(pending, results):
            go_on = self.tell(p.number, p.trial_id, result) and go_on
        return go_on

    def tell(self, number: int, trial_id: int, result: TrialResult) -> bool:
        """Tell the study how the trial's run ended and record it in the run; False: left RUNNING to resume."""
        import optuna
        from optuna.trial import TrialState

        if result.status in RESUMABLE:
            return False
        value = None
        run = f"run {result.log_id}" if result.log_id is not None else "no run"
        if result.status == store.COMPLETE:
            value = self.runner.objective(result, self.options.metric, self.options.reduce)
            if value is None or not math.isfinite(value):
                log.warning("trial %d (%s): %s was not logged as a finite number (%s): told FAIL", number, run,
                            self.options.metric, "never logged" if value is None else value)
                value = None
            state = TrialState.COMPLETE if value is not None else TrialState.FAIL
        elif result.status == store.PRUNED:
            state = TrialState.PRUNED
        else:
            state = TrialState.FAIL
            log.warning("trial %d (%s) ended %s%s: told FAIL", number, run, result.status,
                        f" ({result.detail})" if result.detail else "")
        if result.log_id is not None:
            optuna.trial.Trial(self.study, trial_id).set_user_attr("log_id", result.log_id)
        try:
            frozen = self.study.tell(number, value, state=None if value is not None else state, skip_if_finished=True)
        except RuntimeError:
            # the grid sampler calls study.stop() once its grid is covered, which Optuna refuses outside
            # study.optimize(); the trial is stored by then, and n_trials was capped at the grid's size
            if self.options.sampler["name"] != "grid":
                raise
            frozen = next(t for t in self.trials() if t.number == number)
        self.runner.record(result, state=state.name, value=value)
        if state == TrialState.FAIL:
            self.failed = True
            self.retry(frozen)
        return True

    def retry(self, trial: Any) -> None:
        """Enqueue a failed trial's params again, at most ``retry_failed`` times per original trial."""
        if not self.options.retry_failed:
            return
        original = trial.user_attrs.get("retry_of", trial.number)
        done = sum(1 for t in self.trials() if t.user_attrs.get("retry_of") == original)
        if done >= self.options.retry_failed:
            log.info("trial %d failed: not retried (retry_failed=%d used up for trial %d)", trial.number,
                     self.options.retry_failed, original)
            return
        self.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": original})
        log.info("trial %d failed: its params are enqueued again (retry %d of %d of trial %d)", trial.number,
                 done + 1, self.options.retry_failed, original)

    # -- what a killed launcher left ---------------------------------------------------------------------------
    def recover(self) -> bool:
        """Finish the trials a killed launcher left RUNNING in the study; False: one was left to resume."""
        from optuna.trial import TrialState

        runs: dict[int, TrialResult] = {}
        for result in sorted(self.runner.trial_runs(), key=lambda r: r.log_id or 0):
            record = result.trial
            if record.get("sweeper") == "optuna" and record.get("study") == self.name \
                    and isinstance(record.get("number"), int):
                runs[record["number"]] = result
        for trial in self.trials(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
            run = runs.get(trial.number)
            if run is not None and run.log_id is not None and "state" not in run.trial:  # killed between the two
                self.runner.record(run, state=trial.state.name, value=trial.value)
        waiting: list[tuple[Any, TrialResult]] = []
        again: list[Pending] = []
        go_on = True
        for trial in self.trials(TrialState.RUNNING):
            run = runs.get(trial.number)
            retry_of = trial.user_attrs.get("retry_of")
            if run is None or run.log_id is None:
                log.info("trial %d of study %s has no run: launching it", trial.number, self.name)
                again.append(self.pending(trial.number, trial._trial_id, trial.params, retry_of))
            elif run.status in ACTIVE:
                waiting.append((trial, run))
            elif run.status in (store.INTERRUPTED, store.PREEMPTED, store.DEAD):
                log.info("trial %d of study %s: its run %d is %s, running it again in place", trial.number,
                         self.name, run.log_id, run.status)
                again.append(self.pending(trial.number, trial._trial_id, trial.params, retry_of, log_id=run.log_id,
                                          record=run.trial))
            else:
                go_on = self.tell(trial.number, trial._trial_id, run) and go_on
        if waiting:
            log.info("study %s: waiting for %d trial run(s) still going on", self.name, len(waiting))
            results = self.runner.wait([run.log_id for _, run in waiting if run.log_id is not None],
                                       self.options.poll_interval)
            for (trial, _), result in zip(waiting, results):
                go_on = self.tell(trial.number, trial._trial_id, result) and go_on
        step = self.options.parallel
        for start in range(0, len(again), step):
            if self.runner.stop_requested is not None:
                return False
            go_on = self.launch(again[start:start + step]) and go_on
        return go_on

    # -- the end ---------------------------------------------------------------------------------------------
    def summary(self) -> str:
        """One line: the trials by state, and the best trial (number, run, metric=value, params)."""
        from optuna.trial import TrialState

        counts: dict[str, int] = {}
        for trial in self.trials():
            counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
        states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        line = f"study {self.name}: {sum(counts.values())} trial(s): {states or 'none'}"
        complete = self.trials(TrialState.COMPLETE)
        if complete:
            best = self.study.best_trial
            params = " ".join(f"{key}={value!r}" for key, value in best.params.items())
            line += (f"; best: trial {best.number} (run {best.user_attrs.get('log_id')}) "
                     f"{self.options.metric}={best.value:.6g} {params}")
        return line
