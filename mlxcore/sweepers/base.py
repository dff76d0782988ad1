"""The sweeper interface (version :data:`INTERFACE_VERSION`).

A sweeper decides which points of a sweep run. The builtin ``grid`` sweeper runs every combination of the
listed values, as one batch. A search sweeper (``optuna``, a separate plugin) samples points from the search
dimensions of the command line (``lr='tag(log, interval(1e-4, 1))'``), learns from each trial's result and
asks for more. It implements:

=====================  ===========================================================================
piece                  what it does
=====================  ===========================================================================
``from_settings``      build the sweeper from ``mlx.sweeper.*`` (its options), raising ConfigError
                       with one line for a bad one; called before anything is written
``sweep``              run the plan through a :class:`~mlxcore.sweepers.runner.TrialRunner` and
                       return the process exit code
``open_trial``         in the process that runs a trial (this one, or a job on a cluster): the
                       object the task sees as ``ctx.trial``, built from the trial record the
                       sweeper gave the run (``info.trial``); default: none
=====================  ===========================================================================

**Trials are ordinary runs.** Each :class:`TrialPoint` becomes a run with its own directory, status and
metrics, made by the run store like any other, whose info holds the point's ``trial`` record (what the sweeper
needs to find it again, and what a reader queries as ``info.trial.*``). The runner launches a batch of points
through the selected scheduler and returns when every one has ended, each as a :class:`TrialResult` whose
status is the run's as ``mlxcore status`` shows it: COMPLETE, PRUNED (the task stopped a trial its sweeper
judged hopeless, :class:`TrialPruned`), FAILED, TIMEOUT, CANCELLED, DEAD (its process or job is gone),
INTERRUPTED or PREEMPTED (stopped before it ended: running the same point again, in the same run directory
with :attr:`TrialPoint.log_id`, resumes it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..overrides import ConfigOverride, SweepPlan
    from .runner import TrialRunner

#: the version of this interface a sweeper class implements (shown by ``mlxcore plugins``)
INTERFACE_VERSION = "0.1"


class TrialPruned(Exception):
    """Raised by a task to end its run PRUNED: ``if ctx.trial.should_prune(): raise mlxcore.TrialPruned()``.

    PRUNED is a final status like COMPLETE: the run keeps its rows, is not rerun by ``rerun_failed``, and its
    process exits with 0. A sweeper may accept its own library's exception too (:attr:`Trial.pruned_exceptions`).
    """


@runtime_checkable
class Trial(Protocol):
    """What ``ctx.trial`` is inside a search (``None`` outside one): the running trial, told intermediate
    values so that its sweeper can stop it early."""

    #: the trial's number in its study (0, 1, ...)
    number: int
    #: the sampled values, by config key
    params: dict[str, Any]
    @property
    def pruned_exceptions(self) -> tuple[type[BaseException], ...]:
        """Exceptions that end the run PRUNED besides :class:`TrialPruned` (``optuna.TrialPruned``); read only
        once the task raised (a plain class attribute satisfies this too)."""

    def report(self, value: float, step: int) -> None:
        """Tell the sweeper the objective's value at ``step`` (an epoch): what a pruner compares."""

    def should_prune(self) -> bool:
        """Whether the sweeper judges this trial hopeless now: the task should ``raise mlxcore.TrialPruned()``."""


@dataclass
class TrialPoint:
    """One point a sweeper wants run."""

    overrides: list[ConfigOverride]  #: the full point: fixed overrides, grid values, sampled values
    trial: dict[str, Any]  #: recorded as the run's ``info.trial`` (JSON-like values only)
    #: run the point again in this run (a trial stopped before it ended); ``None``: a new run
    log_id: int | None = None


@dataclass
class TrialResult:
    """How a trial's run ended (or stands, for :meth:`TrialRunner.trial_runs`)."""

    log_id: int | None  #: ``None``: no run was made (the point's config was refused)
    run_dir: Path | None
    status: str  #: the run's status as ``mlxcore status`` shows it
    trial: dict[str, Any] = field(default_factory=dict)  #: the run's ``info.trial``
    detail: str | None = None  #: why it failed, when known


class Sweeper(ABC):
    """A way of choosing sweep points; see the module docstring."""

    #: selected with ``mlx.sweeper.name``
    name: ClassVar[str]
    interface_version: ClassVar[str] = INTERFACE_VERSION

    @classmethod
    def from_settings(cls, options: dict[str, Any]) -> Sweeper:
        """Build from ``mlx.sweeper``'s options; the default accepts none."""
        if options:
            from ..errors import ConfigError

            raise ConfigError(f"unknown mlx.sweeper option {next(iter(options))!r}: the {cls.name} sweeper takes none")
        return cls()

    @abstractmethod
    def sweep(self, plan: SweepPlan, runner: TrialRunner) -> int:
        """Run ``plan``'s points through ``runner``; return the exit code (0, 1 if a point failed, 128+N when
        signal N stopped the sweep)."""

    @classmethod
    def open_trial(cls, record: dict[str, Any], run_dir: Path) -> Trial | None:
        """``ctx.trial`` for the run in ``run_dir``, whose info holds ``record`` (``info.trial``)."""
        return None


def is_pruned(exc: BaseException, trial: Trial | None) -> bool:
    """Whether ``exc``, raised by a task, means that its run ends PRUNED."""
    if isinstance(exc, TrialPruned):
        return True
    return trial is not None and isinstance(exc, tuple(getattr(trial, "pruned_exceptions", ())))


def open_trial(record: Any, run_dir: Path) -> Trial | None:
    """The ``ctx.trial`` of a run whose info holds ``record``: asked of the sweeper named in it."""
    if not isinstance(record, dict) or not isinstance(record.get("sweeper"), str):
        return None
    from ..plugins import get_sweeper_class

    return get_sweeper_class(record["sweeper"]).open_trial(record, run_dir)
