"""What a sweeper launches trials with: :class:`TrialRunner`, built by the launch for the selected scheduler.

A grid is handed over whole (:meth:`TrialRunner.run_grid`: the points run one after another in this process, or
are submitted as arrays, exactly as before sweepers existed). A search hands over batches of points
(:meth:`TrialRunner.run`) and gets each one's :class:`~mlxcore.sweepers.base.TrialResult` back once its run
ended: in this process the points run one after another; through a scheduler they are submitted together (one
array) and the runner waits: the local pool runs them in the foreground, a cluster's runs are watched through
the run store and one batched status question per poll (:func:`mlxcore.schedulers.observe.observe`), so a job
that dies without a word is seen DEAD and does not hang the search.

Ctrl-C (or SIGTERM) stops the search: :class:`SweepInterrupted` leaves the runner; runs on a cluster keep
running, and running the same command again finds them (:meth:`TrialRunner.trial_runs`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import store
from ..compose import Composer
from ..context import StopRequest
from ..errors import ConfigError
from ..identity import PointFilter
from ..overrides import ConfigOverride, SweepPlan
from ..running import SKIPPED, RunOutcome, run_point, signal_handlers
from ..schedulers.observe import observe
from ..settings import Settings
from ..store import RunStore
from ..submitting import submit_plan, submit_points
from ..version_managers import PreparedCode
from .base import TrialPoint, TrialResult
from .objective import read_metric

log = logging.getLogger(__name__)

#: the status of a point the runner did not start (the sweep was asked to stop first)
NOT_STARTED = "NOT_STARTED"
#: statuses after which a run changes no more by itself (DEAD: its process or job is gone)
ENDED = frozenset({*store.FINAL_STATUSES, store.DEAD, "UNREADABLE"})


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was interrupted (Ctrl-C, SIGTERM) while its trials ran: the launch exits ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class TrialRunner:
    """Runs sweep points through the launch's scheduler (or in this process) and reports how they ended."""

    def __init__(self, task: Callable, settings: Settings, composer: Composer, seeding_function: Callable | None,
                 prepared: PreparedCode | None, mlx_overrides: list[ConfigOverride]) -> None:
        self.task = task
        self.settings = settings
        self.composer = composer
        self.seeding_function = seeding_function
        self.prepared = prepared
        self.mlx_overrides = mlx_overrides
        self.stop = StopRequest()

    @property
    def log_dir_root(self) -> Path:
        return self.settings.log_dir_root

    @property
    def in_process(self) -> bool:
        """True when the points run one after another in this process (no scheduler)."""
        return not self.settings.use_scheduler

    @property
    def stop_requested(self) -> str | None:
        """The stop signal that asked the sweep to end (``mlx.stop_signals``): start no more trials."""
        return self.stop.signal_name

    # -- a grid, whole ------------------------------------------------------------------------------------------
    def run_grid(self, plan: SweepPlan) -> int:
        """Run every point of ``plan`` (honouring ``skip_completed``/``rerun_failed``); the exit code."""
        if self.settings.use_scheduler:
            return submit_plan(plan, self.settings, self.composer, self.prepared)
        return self._grid_in_process(plan)

    def _grid_in_process(self, plan: SweepPlan) -> int:
        total = len(plan)
        outcomes: list[RunOutcome] = []
        point_filter = PointFilter(self.settings)
        with signal_handlers(self.stop, self.settings.stop_signals):
            for index, overrides in enumerate(plan.points()):
                try:
                    outcome = run_point(self.task, overrides, self.composer, self.settings, self.seeding_function,
                                        self.stop, self.prepared, point_filter)
                except KeyboardInterrupt as exc:
                    signum = getattr(exc, "signum", 2)
                    log.warning("interrupted (%s): %d of %d sweep points not run", exc.__class__.__name__,
                                total - index - 1, total)
                    return 128 + signum
                except ConfigError as exc:
                    if total == 1:
                        raise
                    log.error("sweep point %d (%s) not run: %s", index + 1, " ".join(o.text for o in overrides), exc)
                    outcome = RunOutcome(None, store.FAILED, 2)
                if outcome.status != SKIPPED:
                    outcomes.append(outcome)
                if self.stop.signal_name is not None:  # asked to stop: the remaining points are not started
                    if index + 1 < total:
                        log.warning("stop requested (%s): %d of %d sweep points not run", self.stop.signal_name,
                                    total - index - 1, total)
                    break
        point_filter.report()
        failed = [o for o in outcomes if o.exit_code and o.status != store.PREEMPTED]
        if total > 1:
            log.info("%d run(s): %s", len(outcomes), summary(o.status for o in outcomes))
        if failed:
            return 1
        return max((o.exit_code for o in outcomes), default=0)

    # -- a search, batch by batch -------------------------------------------------------------------------------
    def run(self, points: Sequence[TrialPoint], poll_interval: float = 2.0) -> list[TrialResult]:
        """Run ``points`` and return, in their order, how each one's run ended.

        In this process they run one after another (a stop signal leaves the rest :data:`NOT_STARTED`); through
        a scheduler they are submitted at once and watched every ``poll_interval`` seconds until all ended.

        :raises SweepInterrupted: Ctrl-C or SIGTERM; the trials' runs record it (or, on a cluster, keep running).
        :raises ConfigError: a point's config is refused (nothing of this batch was submitted).
        """
        if not points:
            return []
        if self.in_process:
            return self._run_in_process(points)
        submitted = submit_points([(p.overrides, {"trial": p.trial}, p.log_id) for p in points], self.mlx_overrides,
                                  self.settings, self.composer, self.prepared, filter_points=False)
        if submitted.code >= 128:  # the local pool ran them and was interrupted
            raise SweepInterrupted(submitted.code - 128)
        return self.wait([log_id for log_id, _ in submitted.runs], poll_interval)

    def _run_in_process(self, points: Sequence[TrialPoint]) -> list[TrialResult]:
        results: list[TrialResult] = []
        with signal_handlers(self.stop, self.settings.stop_signals):
            for point in points:
                if self.stop.signal_name is not None:
                    results.append(TrialResult(None, None, NOT_STARTED, point.trial))
                    continue
                try:
                    outcome = run_point(self.task, point.overrides, self.composer, self.settings,
                                        self.seeding_function, self.stop, self.prepared, None,
                                        extra_info={"trial": point.trial}, into=point.log_id)
                except KeyboardInterrupt as exc:
                    raise SweepInterrupted(getattr(exc, "signum", 2)) from None
                except ConfigError as exc:
                    log.error("trial %s not run: %s", " ".join(o.text for o in point.overrides), exc)
                    results.append(TrialResult(None, None, store.FAILED, point.trial, str(exc)))
                    continue
                results.append(self._result(outcome.log_id))
        return results

    def wait(self, log_ids: Sequence[int], poll_interval: float = 2.0) -> list[TrialResult]:
        """Wait until every run of ``log_ids`` ended (a final status, or DEAD); their results, in that order.

        Also how a search resumed after its launcher was killed waits for the runs it finds still going.
        """
        pending = list(log_ids)
        ended: dict[int, TrialResult] = {}
        try:
            while pending:
                for state in observe(self.log_dir_root, pending):
                    if state.status in ENDED:
                        ended[state.log_id] = _from_state(state)
                pending = [log_id for log_id in pending if log_id not in ended]
                if pending:
                    time.sleep(poll_interval)
        except KeyboardInterrupt as exc:
            if not self.in_process:
                log.warning("interrupted while %d trial run(s) were going on: their jobs keep running; run the same "
                            "command again to resume the search", len(pending))
            raise SweepInterrupted(getattr(exc, "signum", 2)) from None
        return [ended[log_id] for log_id in log_ids]

    def _result(self, log_id: int | None) -> TrialResult:
        if log_id is None:
            return TrialResult(None, None, store.FAILED)
        states = observe(self.log_dir_root, [log_id])
        return _from_state(states[0]) if states else TrialResult(log_id, None, store.UNKNOWN)

    # -- what a sweeper reads and records -----------------------------------------------------------------------
    def trial_runs(self) -> list[TrialResult]:
        """Every run of the logs directory that a sweeper made (its info holds a ``trial`` record), as it stands
        now: how a search run again finds the trials it already launched."""
        if not self.log_dir_root.is_dir():
            return []
        return [_from_state(state) for state in observe(self.log_dir_root)
                if isinstance(state.info.get("trial"), dict)]

    def objective(self, result: TrialResult, metric: str, which: str = "last") -> float | None:
        """The value of ``metric`` that counts in ``result``'s run (:func:`~.objective.read_metric`)."""
        if result.run_dir is None:
            return None
        return read_metric(result.run_dir, metric, which)

    def record(self, result: TrialResult, **fields: Any) -> None:
        """Merge ``fields`` (the trial's state and value as told to the sweeper) into the ended run's
        ``info.trial``, so that readers and ``mlxcore status`` see them."""
        if result.log_id is None:
            return
        run = RunStore(self.log_dir_root).open(result.log_id)
        trial = run.info.get("trial")
        run.update_info(trial={**(trial if isinstance(trial, dict) else {}), **fields})
        result.trial = run.info["trial"]


def _from_state(state: Any) -> TrialResult:
    trial = state.info.get("trial") if isinstance(state.info, dict) else None
    return TrialResult(state.log_id, state.run_dir, state.status, trial if isinstance(trial, dict) else {},
                       state.detail)


def summary(statuses: Any) -> str:
    """``3 COMPLETE, 1 FAILED``."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
