"""A run opened by any script or notebook, and the engine every launched run goes through.

``mlxcore.open_run(logs, config)`` gives what ``@mlxcore.launch`` gives a task, without a launch: a new run (or,
with ``log_id``, an existing one resumed) written by this process through the run store, with its logger::

    with mlxcore.open_run("./logs", config={"lr": 0.1}) as run:
        for step in range(100):
            run.logger.log_metrics({"loss": 1 / (step + 1)}, log_name="train")
    # COMPLETE; an exception makes the run FAILED (with the error), Ctrl-C makes it INTERRUPTED

The launcher (:mod:`mlxcore.running`) starts its runs with :func:`start_run` and ends them with
:meth:`RunSession.finish`, as a notebook does.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from . import __version__
from .errors import ConfigError
from .loggers.base import RunLogger
from .loggers.metrics import MetricsWriteError
from .plugins import get_logger_class
from .schedulers.environment import CPUS_VARIABLE, JOB_ID_VARIABLE, SCHEDULER_VARIABLE, STARTED_BECAUSE_VARIABLE
from .settings import Settings, build_settings
from .signals import deferred
from .store import COMPLETE, FAILED, INTERRUPTED, RunStore, RunWriter, layout, now_iso

log = logging.getLogger(__name__)


def process_info(overrides: list[str] | None = None, config_dir: Path | None = None) -> dict[str, Any]:
    """Everything a run records about where and how this process started it."""
    info: dict[str, Any] = {
        "start_time": now_iso(),
        "start_timestamp": time.time(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "user": getpass.getuser(),
        "python": {"executable": sys.executable, "version": sys.version.split()[0]},
        "argv": list(sys.argv),
        "overrides": list(overrides or []),
        "working_directory": os.getcwd(),
        "mlxcore_version": __version__,
    }
    if config_dir is not None:
        info["config_dir"] = str(config_dir)
    info["allocation"] = allocation()
    scheduler_name = os.environ.get(SCHEDULER_VARIABLE)
    if scheduler_name:  # inside a job: its script exported the job id (no plugin is loaded for it)
        info["scheduler"] = {"name": scheduler_name, "job_id": os.environ.get(JOB_ID_VARIABLE) or None}
        # a restarted job: how the attempt before ended (NODE_FAIL, PREEMPTED); kept with this attempt's history
        info["started_because"] = os.environ.get(STARTED_BECAUSE_VARIABLE) or None
    else:  # a job keeps the sweep its submitter recorded
        info.update(sweep_info())
    return info


_SWEEP: dict[str, str] = {}


def sweep_info() -> dict[str, str]:
    """The sweep this process launches: every run it creates or submits records the same ``sweep`` (its start
    time and pid) and ``sweep_command`` (the command line), which ``mlxcore status --summary`` groups by."""
    if not _SWEEP:
        _SWEEP["sweep"] = f"{now_iso()} pid {os.getpid()}"
        _SWEEP["sweep_command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
    return dict(_SWEEP)


def allocation(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """What this process was given, for its CPU- and GPU-hours: ``cpus`` from its job (``MLXCORE_CPUS``, which
    the job script copies from the scheduler; ``None`` outside a job: the machine's count would overstate a
    run that shares it), ``gpus`` the ids in ``CUDA_VISIBLE_DEVICES`` (``None`` when it is unset: every GPU of
    the machine is visible, and which ones the run used is not known)."""
    env = os.environ if environ is None else environ
    cpus = env.get(CPUS_VARIABLE, "").strip()
    visible = env.get("CUDA_VISIBLE_DEVICES")
    gpus = None if visible is None else [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    return {"cpus": int(cpus) if cpus.isdigit() and int(cpus) > 0 else None, "gpus": gpus}


def check_config_keys(config: Any, path: str = "config") -> None:
    """Refuse a config the reader could not tell apart: an empty key, or two keys equal but for case."""
    if not isinstance(config, dict):
        return
    seen: dict[str, str] = {}
    for key in config:
        text = str(key)
        if not text:
            raise ConfigError(f"{path} has an empty key; name every config entry")
        other = seen.get(text.lower())
        if other is not None:
            raise ConfigError(f"{path}.{other} and {path}.{text} differ only by case; the reader cannot tell them "
                              "apart: rename one")
        seen[text.lower()] = text
        check_config_keys(config[key], f"{path}.{text}")


class RunSession:
    """A run this process writes: ``logger`` for the task, ``finish`` (or the ``with`` block) to end it."""

    def __init__(self, writer: RunWriter, logger: RunLogger, config: dict[str, Any] | None) -> None:
        self.writer = writer
        self.logger = logger
        self.config = config
        self.status: str | None = None  #: the final status, once finished

    @property
    def run(self) -> Any:
        return self.writer.run

    @property
    def log_id(self) -> int:
        return self.writer.log_id

    @property
    def log_dir(self) -> Path:
        return self.writer.run.root

    @property
    def info(self) -> dict[str, Any]:
        return self.writer.run.info

    def finish(self, status: str = COMPLETE, **fields: Any) -> str:
        """Write everything the logger holds, then record ``status`` and release the run; returns the status
        recorded. Rows that could not be written make the run FAILED (error in its info, one line logged).
        Calling it again does nothing."""
        if self.status is not None:
            return self.status
        with deferred():  # a Ctrl-C now would lose buffered rows and leave the run RUNNING: it waits till the end
            try:
                self.logger.close()
            except MetricsWriteError as exc:
                log.error("run %s: %s", self.log_id, exc)
                status = FAILED
                fields["error"] = {"type": "MetricsWriteError", "message": str(exc)}
            self.status = status
            self.writer.finish(status, **fields)
        return status

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self.finish(COMPLETE)
        elif isinstance(exc, KeyboardInterrupt):
            self.finish(INTERRUPTED)
        else:
            self.finish(FAILED, error={"type": type(exc).__name__, "message": str(exc),
                                       "traceback": "".join(traceback.format_exception(kind, exc, tb))})


def start_run(store: RunStore, settings: Settings, info: dict[str, Any], config: dict[str, Any] | None,
              metadata: dict[str, Any] | None = None, log_id: int | None = None) -> RunSession:
    """Create run ``log_id`` (the next id when ``None``) or, when it exists, resume it; attach the logger.

    :param metadata: extra metadata files (name -> data): the settings, a version manager's files.
    :raises RunBusyError: another live process writes that run.
    :raises ConfigChangedError: the run recorded another config (and ``settings.allow_config_change`` is off).
    """
    if config is not None:
        check_config_keys(config)
    logger_cls = get_logger_class(settings.logger.name)
    files = {layout.SETTINGS: settings.to_dict(), **(metadata or {})}
    existing = store.get(log_id) if log_id is not None else None
    interval = settings.logger.heartbeat_interval
    with deferred():  # a run starts whole: an interrupt waits until it is RUNNING with its logger
        if existing is not None:
            writer = RunWriter.attach(existing, info, files, interval, config,
                                      allow_config_change=settings.allow_config_change)
        else:
            if config is not None:
                files = {layout.CONFIG: config, **files}
            writer = RunWriter.create(store, info, files, interval, log_id=log_id)
        try:
            logger = logger_cls.attach(writer.run, settings.logger)
            logger.start()
        except BaseException as exc:
            status = INTERRUPTED if isinstance(exc, KeyboardInterrupt) else FAILED
            writer.finish(status, error={"type": type(exc).__name__, "message": str(exc)})
            raise
    return RunSession(writer, logger, config)


def open_run(logs: str | Path = "./logs", config: dict[str, Any] | None = None, *, log_id: int | None = None,
             mlx: dict[str, Any] | None = None) -> RunSession:
    """Open a run written by this process, outside ``@mlxcore.launch`` (a notebook, a script of one's own).

    :param logs: the logs directory.
    :param config: the run's config (a mapping, recorded as its ``config.yaml``).
    :param log_id: resume this run instead of creating one (its recorded config must match ``config``).
    :param mlx: framework settings, as in ``mlx.yaml`` (``{"logger": {"flush_interval": 5}}``).
    """
    data = dict(mlx or {})
    data["logger"] = {**(data.get("logger") or {}), "parent_log_dir": str(logs)}
    settings = build_settings(data)
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"config must be a mapping, got {type(config).__name__}")
    info = process_info()
    if config is not None:
        from .identity import config_identity

        info["config_identity"] = config_identity(config)
    return start_run(RunStore(settings.log_dir_root), settings, info, config, log_id=log_id)
