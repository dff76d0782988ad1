"""Running sweep points in this process: one run directory each, a status that tells the truth.

While runs execute, handlers are installed for SIGTERM (raises :class:`Interrupted`, a ``KeyboardInterrupt``,
so the run ends INTERRUPTED, the buffers are flushed and the process exits 143) and for the stop signals
(``ctx.should_stop``; the run ends PREEMPTED). They are removed afterwards: importing mlxcore installs nothing.
"""

from __future__ import annotations

import logging
import signal
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import store
from .compose import Composer, resolve
from .context import Context, StopRequest
from .errors import ConfigError
from .identity import PointFilter, config_identity
from .loggers.null import NullLogger
from .loggers.streams import StreamTee
from .overrides import ConfigOverride
from .schedulers.environment import check_interpreter
from .session import process_info, start_run
from .settings import Settings
from .signals import deferred
from .store import RunStore
from .sweepers.base import is_pruned, open_trial
from .version_managers import PreparedCode

log = logging.getLogger(__name__)

#: the outcome of a point that ``skip_completed``/``rerun_failed`` left out
SKIPPED = "SKIPPED"


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


def _resume_overrides(run: Any, overrides: list[ConfigOverride], config_dir: Path) -> list[ConfigOverride]:
    """The overrides a resumed run composes with: those it recorded, then those of this command line (a key
    given again replaces the recorded one). Without new overrides this recomposes the recorded config."""
    from .overrides import parse_command_line

    recorded = run.info.get("overrides") or []
    if not isinstance(recorded, list) or not all(isinstance(text, str) for text in recorded):
        return overrides
    try:
        previous = parse_command_line(recorded, config_dir).fixed
    except ConfigError:
        return overrides
    given = {o.key for o in overrides}
    return [*(o for o in previous if o.key not in given), *overrides]


def run_point(
    task: Callable[[Context], Any],
    overrides: list[ConfigOverride],
    composer: Composer,
    settings: Settings,
    seeding_function: Callable[[Any], Any] | None,
    stop: StopRequest,
    prepared: PreparedCode | None = None,
    point_filter: PointFilter | None = None,
    extra_info: dict[str, Any] | None = None,
    into: int | None = None,
) -> RunOutcome:
    """Compose, start a run through the store (new, or resumed), call the task, and record how it ended (or
    skip the point).

    :param extra_info: fields added to the run's info (a sweeper's ``trial`` record).
    :param into: run the point in this run (a trial run again where it stopped), with exactly these overrides.
    """
    cfg = composer.compose(overrides)
    resolved = resolve(cfg)
    identity = config_identity(resolved)
    run_it, forced_id = point_filter.decide(identity) if point_filter else (True, None)
    if not run_it:
        return RunOutcome(None, SKIPPED)
    if into is not None:
        forced_id = into
    log_id = forced_id if forced_id is not None else settings.logger.forced_log_id
    runs = RunStore(settings.log_dir_root)
    existing = runs.get(log_id) if log_id is not None else None
    if existing is not None and forced_id is None:  # a resume: the run's recorded overrides apply again
        overrides = _resume_overrides(existing, overrides, composer.config_dir)
        cfg = composer.compose(overrides)
        resolved = resolve(cfg)
        identity = config_identity(resolved)
    if seeding_function is not None and "seed" not in cfg:
        raise ConfigError("a seeding_function was given but the config has no 'seed' key; add 'seed: 0' to config.yaml")
    info = {**process_info([o.text for o in overrides], composer.config_dir), "config_identity": identity,
            **(extra_info or {})}
    if not settings.use_logger:
        return _run_unlogged(task, cfg, settings, seeding_function, stop, info)
    metadata: dict[str, Any] = {}
    if prepared is not None:
        metadata.update(prepared.files)
        info["version"] = dict(prepared.record)
    session = start_run(runs, settings, info, resolved, metadata, log_id)
    log.info("run %s: %s", session.log_id, session.log_dir)  # its id, before a long task: status, cancel, reader
    ctx = Context(config=cfg, mlx=settings, info=session.info, logger=session.logger, stop=stop)
    status, exit_code = store.RUNNING, 0
    fields: dict[str, Any] = {}
    try:
        with StreamTee(session.log_dir) if settings.logger.log_streams_to_file else nullcontext():
            check_interpreter()  # inside a job: the Python that submitted it, or a FAILED run that says why
            ctx.trial = open_trial(session.info.get("trial"), session.log_dir)
            if seeding_function is not None:
                seeding_function(cfg.seed)
            task(ctx)
        status = store.PREEMPTED if ctx.should_stop else store.COMPLETE
        if status == store.PREEMPTED:
            fields["stop_signal"] = stop.signal_name
            exit_code = store.PREEMPTED_EXIT_CODE
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        status = store.CANCELLED if session.run.cancel_requested() else store.INTERRUPTED
        fields["signal"] = signal.Signals(signum).name
        exit_code = 128 + signum
        raise
    except SystemExit as exc:  # the task asked the process to end: record how, then honour it
        failed = exc.code not in (None, 0)
        status, exit_code = (store.FAILED, 1) if failed else (store.COMPLETE, 0)
        if failed:
            fields["error"] = {"type": "SystemExit", "message": f"the task called sys.exit({exc.code!r})",
                               "traceback": traceback.format_exc()}
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the task raises is recorded in the run, not propagated
        if is_pruned(exc, ctx.trial):  # the task stopped a trial its sweeper judged hopeless: a deliberate end
            status = store.PRUNED
            fields["pruned"] = {"type": type(exc).__name__, "message": str(exc)}
        else:
            status, exit_code = store.FAILED, 1
            fields["error"] = {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
            log.error("run %s failed:\n%s", session.log_id, traceback.format_exc().rstrip())
    finally:
        with deferred():
            recorded = session.finish(status, **fields)
    if recorded == store.FAILED and exit_code == 0:  # its metric rows could not all be written
        exit_code = 1
    log.info("run %s %s", session.log_id, recorded)
    return RunOutcome(session.log_id, recorded, exit_code)


def _run_unlogged(task: Callable[[Context], Any], cfg: Any, settings: Settings,
                  seeding_function: Callable[[Any], Any] | None, stop: StopRequest, info: dict[str, Any]) -> RunOutcome:
    """``mlx.use_logger=false``: the task runs with a :class:`~mlxcore.loggers.null.NullLogger`; nothing is written."""
    logger = NullLogger()
    logger.info = info
    # NullLogger has the task-facing methods of RunLogger but is no subclass: it has no run directory to manage
    ctx = Context(config=cfg, mlx=settings, info=info, logger=logger, stop=stop)  # type: ignore[arg-type]
    if seeding_function is not None:
        seeding_function(cfg.seed)
    try:
        task(ctx)
    except Exception:  # noqa: BLE001 - whatever the task raises becomes the FAILED outcome
        log.error("the task failed:\n%s", traceback.format_exc().rstrip())
        return RunOutcome(None, store.FAILED, 1)
    if ctx.should_stop:
        return RunOutcome(None, store.PREEMPTED, store.PREEMPTED_EXIT_CODE)
    return RunOutcome(None, store.COMPLETE)
