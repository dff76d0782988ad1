"""What a task receives: ``ctx.config``, ``ctx.mlx``, ``ctx.info``, ``ctx.logger`` and the stop request."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from .loggers.base import RunLogger
    from .settings import Settings
    from .sweepers.base import Trial

log = logging.getLogger(__name__)


@dataclass
class StopRequest:
    """Set when a stop signal (``mlx.stop_signals``: SLURM's ``--signal``, OAR's checkpoint) arrives."""

    signal_name: str | None = None
    callbacks: list[Callable[[], Any]] = field(default_factory=list)

    def trigger(self, signal_name: str) -> None:
        first = self.signal_name is None
        self.signal_name = signal_name
        if first:
            for callback in self.callbacks:
                try:
                    callback()
                except Exception:  # a failing callback must not hide the request from the task
                    log.exception("stop callback %r failed", callback)


@dataclass
class Context:
    """The argument of a task launched by :func:`mlxcore.launch`.

    A long task checks :attr:`should_stop` between steps (or registers :meth:`on_stop`), saves a checkpoint
    and returns: the run then ends PREEMPTED, and a resumed job finds the checkpoint with
    ``ctx.logger.load_checkpoint(name)``.
    """

    config: DictConfig
    mlx: Settings
    info: dict[str, Any]
    logger: RunLogger
    stop: StopRequest = field(default_factory=StopRequest)
    #: the running trial of a search (``mlx.sweeper.name=optuna``), ``None`` outside one: ``ctx.trial.report(
    #: value, step)`` and ``if ctx.trial.should_prune(): raise mlxcore.TrialPruned()``
    trial: Trial | None = None

    @property
    def should_stop(self) -> bool:
        """True once the scheduler asked the job to stop soon (time limit or preemption)."""
        return self.stop.signal_name is not None

    def on_stop(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` (in the main thread, from the signal handler) when a stop is requested."""
        self.stop.callbacks.append(callback)

    def __getattr__(self, name: str) -> Any:  # only for names the context lacks
        if name in ("mlxp", "mlxpy"):
            raise AttributeError(f"'Context' object has no attribute {name!r}: MLXP's ctx.{name} is ctx.mlx in "
                                 "mlxcore")
        raise AttributeError(f"'Context' object has no attribute {name!r}")
