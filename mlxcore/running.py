"""Running sweep points in this process: one run directory each, a status that tells the truth.

While runs execute, handlers are installed for SIGTERM (raises :class:`Interrupted`, a ``KeyboardInterrupt``,
so the run ends INTERRUPTED, the buffers are flushed and the process exits 143) and for the stop signals
(``ctx.should_stop``; the run ends PREEMPTED). They are removed afterwards: importing mlxcore installs nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__, runs
from .compose import Composer, resolve
from .context import Context, StopRequest
from .identity import PointFilter, config_identity
from .errors import ConfigError
from .loggers.streams import StreamTee
from .overrides import ConfigOverride
from .plugins import get_logger_class, get_scheduler_class
from .schedulers.submission import CANCEL_MARKER
from .settings import Settings
from .version_managers import PreparedCode, write_record

log = logging.getLogger(__name__)

#: the outcome of a point that ``skip_completed``/``rerun_failed`` left out
SKIPPED = "SKIPPED"

#: exit code of a process whose last run ended PREEMPTED (a scheduler plugin may choose another)
PREEMPTED_EXIT_CODE = 3


class Interrupted(KeyboardInterrupt):
    """Raised in the task when SIGTERM arrives; subclassing KeyboardInterrupt keeps ``except Exception`` out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class RunOutcome:
    log_id: int | None
    status: str
    exit_code: int = 0


@contextmanager
def signal_handlers(stop: StopRequest, stop_signals: list[str]) -> Iterator[None]:
    """Install SIGTERM and stop-signal handlers for the duration of the runs; restore the previous ones."""

    terms: list[int] = []

    def on_term(signum: int, frame: object) -> None:
        # once only: SLURM signals the task directly AND through the job script, and a second Interrupted
        # raised while the first is being handled would skip the recording of the run's final status
        if not terms:
            terms.append(signum)
            raise Interrupted(signum)

    def on_stop(signum: int, frame: object) -> None:
        stop.trigger(signal.Signals(signum).name)

    # SIGINT too: a task started in the background by a non-interactive shell (every job script) inherits
    # SIGINT *ignored*, and Python keeps it so; a forwarded Ctrl-C must still interrupt the run.
    wanted = {signal.SIGTERM: on_term, signal.SIGINT: signal.default_int_handler}
    for name in stop_signals:
        try:
            wanted[signal.Signals[name]] = on_stop
        except KeyError:
            raise ConfigError(f"unknown signal {name!r} in mlx.stop_signals; e.g. SIGUSR1, SIGUSR2") from None
    previous = {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the final status is written; they are delivered right after."""
    held = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def process_info(overrides: list[ConfigOverride], config_dir: Path) -> dict[str, Any]:
    """Everything a run records about where and how it started."""
    import getpass

    info: dict[str, Any] = {
        "start_time": runs.now_iso(),
        "start_timestamp": time.time(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "user": getpass.getuser(),
        "python": {"executable": sys.executable, "version": sys.version.split()[0]},
        "argv": list(sys.argv),
        "overrides": [o.text for o in overrides],
        "working_directory": os.getcwd(),
        "config_dir": str(config_dir),
        "mlxcore_version": __version__,
    }
    scheduler_name = os.environ.get("MLXCORE_SCHEDULER")
    if scheduler_name:
        variable = get_scheduler_class(scheduler_name).job_id_variable
        info["scheduler"] = {"name": scheduler_name, "job_id": os.environ.get(variable) if variable else None}
    return info


def run_point(
    task: Callable[[Context], Any],
    overrides: list[ConfigOverride],
    composer: Composer,
    settings: Settings,
    seeding_function: Callable[[Any], Any] | None,
    stop: StopRequest,
    prepared: PreparedCode | None = None,
    point_filter: PointFilter | None = None,
) -> RunOutcome:
    """Compose, open a run directory, call the task, and record how it ended (or skip the point)."""
    cfg = composer.compose(overrides)
    resolved = resolve(cfg)
    if seeding_function is not None and "seed" not in cfg:
        raise ConfigError("a seeding_function was given but the config has no 'seed' key; add 'seed: 0' to config.yaml")
    identity = config_identity(resolved)
    run_it, forced_id = point_filter.decide(identity) if point_filter else (True, None)
    if not run_it:
        return RunOutcome(None, SKIPPED)
    logger_settings = settings.logger if forced_id is None else dataclasses.replace(settings.logger, forced_log_id=forced_id)

    logger = get_logger_class(settings.logger.name).open(logger_settings)
    logger.write_metadata("config", resolved)
    logger.write_metadata("mlx", settings.to_dict())
    info = {"log_id": logger.log_id, "log_dir": str(logger.log_dir), **process_info(overrides, composer.config_dir),
            "config_identity": identity}
    if prepared is not None:
        info["version"] = write_record(logger.log_dir, prepared)
    logger.start(info)
    ctx = Context(config=cfg, mlx=settings, info=logger.info, logger=logger, stop=stop)
    status, fields, exit_code = runs.RUNNING, {}, 0
    try:
        with StreamTee(logger.log_dir) if settings.logger.log_streams_to_file else nullcontext():
            if seeding_function is not None:
                seeding_function(cfg.seed)
            task(ctx)
        status = runs.PREEMPTED if ctx.should_stop else runs.COMPLETE
        if status == runs.PREEMPTED:
            fields["stop_signal"] = stop.signal_name
            exit_code = PREEMPTED_EXIT_CODE
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        cancelled = (logger.log_dir / "metadata" / CANCEL_MARKER).exists()
        status = runs.CANCELLED if cancelled else runs.INTERRUPTED
        fields["signal"] = signal.Signals(signum).name
        exit_code = 128 + signum
        raise
    except SystemExit as exc:  # the task asked the process to end: record how, then honour it
        failed = exc.code not in (None, 0)
        status, exit_code = (runs.FAILED, 1) if failed else (runs.COMPLETE, 0)
        if failed:
            fields["error"] = {"type": "SystemExit", "message": f"the task called sys.exit({exc.code!r})",
                               "traceback": traceback.format_exc()}
        raise
    except Exception as exc:
        status, exit_code = runs.FAILED, 1
        fields["error"] = {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
        log.error("run %s failed:\n%s", logger.log_id, traceback.format_exc().rstrip())
    finally:
        with signals_deferred():
            logger.finish(status, **fields)
    return RunOutcome(logger.log_id, status, exit_code)
