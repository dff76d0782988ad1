"""Run identity: a stable hash of the resolved user config, and the index that finds earlier runs by it.

``skip_completed`` skips a sweep point whose identity matches a COMPLETE run of the same logs directory;
``rerun_failed`` runs only the points whose latest run ended FAILED, INTERRUPTED, CANCELLED, PREEMPTED, TIMEOUT
or DEAD, back into that run's own directory (so ``load_checkpoint`` resumes it). Framework settings (``mlx.*``)
are not part of the identity: changing the scheduler or the log directory does not make a point new.

A PRUNED run (its task stopped a search trial its sweeper judged hopeless) is neither: ``rerun_failed`` does not
run it again (it ended as deliberately as a COMPLETE run; running it again would only be pruned again), and
``skip_completed`` does not skip its point (the task did not run to its end, so the point has no complete
result: a grid launched with ``skip_completed`` runs it in a new run).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import store

log = logging.getLogger(__name__)

#: the statuses ``rerun_failed`` runs again (not COMPLETE, not PRUNED: both ended deliberately)
RERUNNABLE = frozenset({store.FAILED, store.INTERRUPTED, store.CANCELLED, store.PREEMPTED, store.DEAD, store.TIMEOUT})
#: the statuses ``skip_completed`` skips (PRUNED is not: its task stopped before its end)
COMPLETED = frozenset({store.COMPLETE})


def config_identity(resolved: Any) -> str:
    """A short, stable hash of a resolved config (a plain container): key order does not matter."""
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RunIndex:
    """The latest run of each identity in a logs directory (read once per launch, only when asked for)."""

    latest: dict[str, tuple[int, str]] = field(default_factory=dict)

    @classmethod
    def scan(cls, parent: Path) -> RunIndex:
        """Every run of ``parent`` by identity, with its reconciled status: a SUBMITTED run whose job no longer
        exists counts as DEAD (rerunnable), a run whose scheduler says it is queued or running does not."""
        from .schedulers.observe import observe

        index = cls()
        if not parent.is_dir():
            return index
        for state in observe(parent, statuses={store.SUBMITTED, store.RUNNING}):
            identity = state.info.get("config_identity")
            if not identity:
                continue
            log_id, status = state.log_id, state.status
            previous = index.latest.get(identity)
            # a COMPLETE run anywhere wins; otherwise the newest attempt decides
            if previous is None or (
                previous[1] != store.COMPLETE and (status == store.COMPLETE or log_id > previous[0])
            ):
                index.latest[identity] = (log_id, status)
        return index

    def decide(self, identity: str, skip_completed: bool, rerun_failed: bool) -> tuple[bool, int | None]:
        """``(run_it, forced_log_id)`` for a point of this identity."""
        latest = self.latest.get(identity)
        if rerun_failed:
            if latest is not None and latest[1] in RERUNNABLE:
                return True, latest[0]
            return False, None
        if skip_completed and latest is not None and latest[1] in COMPLETED:
            return False, None
        return True, None


class PointFilter:
    """Decides, point by point, what ``skip_completed`` / ``rerun_failed`` leave to run (inactive when both are off)."""

    def __init__(self, settings: Any) -> None:
        self.skip_completed = settings.skip_completed
        self.rerun_failed = settings.rerun_failed
        self.active = self.skip_completed or self.rerun_failed
        self.index = RunIndex.scan(settings.log_dir_root) if self.active else RunIndex()
        self.skipped = 0

    def decide(self, identity: str) -> tuple[bool, int | None]:
        if not self.active:
            return True, None
        run_it, forced = self.index.decide(identity, self.skip_completed, self.rerun_failed)
        if not run_it:
            self.skipped += 1
        return run_it, forced

    def report(self) -> None:
        if self.active and self.skipped:  # "skipped 0" on a first sweep says nothing
            what = "not failed" if self.rerun_failed else "already COMPLETE"
            log.info("skipped %d sweep point(s) %s", self.skipped, what)
