"""Range and format checks of the framework settings, run before anything is written.

:func:`check_settings` is called by :func:`mlxcore.settings.build_settings` once the types are right; it needs
no plugin. :func:`check_plugin_choices` checks the names that depend on the installed plugins (logger,
artifact format, scheduler and its options). The small ``check_*`` helpers are shared with the scheduler
constructors (:mod:`mlxcore.schedulers.base`, :mod:`mlxcore.schedulers.local`). Every error is one line
naming the setting (dotted, ``mlx.logger.flush_interval``), the bad value and what is valid.
"""

from __future__ import annotations

import math
import re
import signal
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, UnknownChoiceError

if TYPE_CHECKING:
    from .settings import Settings

#: seconds, inclusive: metric rows are flushed at least this often
FLUSH_INTERVAL_RANGE = (0.01, 3600.0)
#: seconds, inclusive: a running run touches its heartbeat this often
HEARTBEAT_INTERVAL_RANGE = (1.0, 3600.0)

#: signals that may ask a task to stop: catchable, not already meaning "interrupt", not faults, job control or
#: child notifications (a SIGCHLD stop signal would stop the run whenever a subprocess ends)
STOP_SIGNAL_CHOICES: tuple[str, ...] = tuple(
    name for name in ("SIGUSR1", "SIGUSR2", "SIGHUP", "SIGQUIT", "SIGALRM", "SIGXCPU", "SIGPWR")
    if hasattr(signal, name)  # SIGPWR is Linux's
)
_REFUSED_SIGNALS = {
    "SIGKILL": "cannot be caught",
    "SIGSTOP": "cannot be caught",
    "SIGINT": "already interrupts the run",
    "SIGTERM": "already interrupts the run",
}

#: what SLURM accepts for ``--time`` (OAR's walltime is the subset minutes, MM:SS, H:MM:SS)
TIME_FORMATS = "minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
_FIELD = re.compile(r"[0-9]{1,2}")
_LEADING = re.compile(r"[0-9]+")
#: SLURM's ``--mem``: a size, in megabytes unless a unit K, M, G or T follows (0: all the node's memory)
_MEMORY = re.compile(r"[0-9]+[KMGTkmgt]?")


# -- the settings without plugins (called by build_settings) --------------------------------------------------
def check_settings(settings: Settings) -> None:
    """Check the ranges and formats of ``settings`` (types are already right).

    :raises ConfigError: one line naming the setting, the bad value and the valid range or choices.
    """
    logger = settings.logger
    check_log_dir(logger.parent_log_dir, "mlx.logger.parent_log_dir")
    if logger.forced_log_id is not None:
        check_positive_int(logger.forced_log_id, "mlx.logger.forced_log_id")
    check_seconds(logger.flush_interval, "mlx.logger.flush_interval", *FLUSH_INTERVAL_RANGE)
    check_seconds(logger.heartbeat_interval, "mlx.logger.heartbeat_interval", *HEARTBEAT_INTERVAL_RANGE)
    check_stop_signals(settings.stop_signals, "mlx.stop_signals")


def check_log_dir(value: str, setting: str) -> None:
    if not value.strip():
        raise ConfigError(f"{setting} must name a directory (e.g. ./logs), got {value!r}")
    if "\0" in value:
        raise ConfigError(f"{setting} must not contain a NUL character, got {value!r}")


def check_seconds(value: float, setting: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ConfigError(f"{setting} must be a number of seconds in [{low:g}, {high:g}], got {value!r}")


def check_stop_signals(names: list[str], setting: str) -> None:
    valid = ", ".join(sorted(STOP_SIGNAL_CHOICES))
    for name in names:
        if name in STOP_SIGNAL_CHOICES:
            continue
        if name in _REFUSED_SIGNALS:
            raise ConfigError(f"{setting}: {name!r} {_REFUSED_SIGNALS[name]}; valid: {valid}")
        if name in signal.Signals.__members__:
            raise ConfigError(f"{setting}: {name!r} cannot be a stop signal; valid: {valid}")
        raise UnknownChoiceError(f"{setting} entry", name, STOP_SIGNAL_CHOICES)


# -- small helpers shared with the scheduler constructors ---------------------------------------------------
def check_positive_int(value: Any, setting: str) -> int:
    """``value`` when it is an int >= 1 (a bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{setting} must be a positive integer, got {value!r}")
    return value


def check_non_negative_int(value: Any, setting: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{setting} must be an integer >= 0, got {value!r}")
    return value


def check_bool(value: Any, setting: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{setting} must be true or false, got {value!r}")
    return value


def check_duration(value: Any, setting: str) -> None:
    """A positive wall time in one of SLURM's ``--time`` forms (:data:`TIME_FORMATS`); an int is minutes."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or duration_seconds(value) in (None, 0):
        raise ConfigError(f"{setting} must be a positive duration ({TIME_FORMATS}), got {value!r}")


def duration_seconds(value: int | str) -> int | None:
    """Seconds in a SLURM ``--time`` value, or ``None`` when it is in none of its forms."""
    if isinstance(value, int):
        return value * 60 if value >= 0 else None
    days_text, dash, rest = value.partition("-")
    if not dash:
        rest, days_text = value, ""
    parts = rest.split(":")
    if (dash and not _LEADING.fullmatch(days_text)) or not 1 <= len(parts) <= 3:
        return None
    leading, following = parts[0], parts[1:]
    if not (_FIELD if dash else _LEADING).fullmatch(leading) or not all(_FIELD.fullmatch(p) for p in following):
        return None
    numbers = [int(p) for p in parts]
    if any(n >= 60 for n in numbers[1:]) or (dash and numbers[0] >= 24):
        return None
    if dash:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = [*numbers, 0, 0][:3]
        return ((int(days_text) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(numbers) == 1:  # minutes
        return numbers[0] * 60
    if len(numbers) == 2:  # MM:SS
        return numbers[0] * 60 + numbers[1]
    return (numbers[0] * 60 + numbers[1]) * 60 + numbers[2]  # HH:MM:SS


def check_memory(value: Any, setting: str) -> None:
    """SLURM's ``--mem``: ``1024`` (megabytes), ``512M``, ``16G``, ... (units K, M, G, T)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not _MEMORY.fullmatch(str(value)):
        raise ConfigError(f"{setting} must be a size like 16G, 512M or 1024 (megabytes; units K, M, G, T), "
                          f"got {value!r}")


# -- the names that depend on the installed plugins ------------------------------------------------------------
def check_plugin_choices(settings: Settings, sweeper: bool = True) -> None:
    """Check the names the installed plugins define: ``logger.name``, ``logger.checkpoint_format``,
    ``sweeper.name`` and the sweeper's options (by building it) and, with
    ``use_scheduler``, ``scheduler.name`` and the scheduler's options (by building the scheduler, which
    validates them; nothing is submitted or checked on PATH). ``use_version_manager`` checks
    ``version_manager.name`` too (the manager is not built: building one may inspect the repository).

    :param sweeper: build the sweeper too (not in a job of a sweep, which runs one given point).
    :raises ConfigError: an :class:`UnknownChoiceError` naming the setting and the registered names, or the
        scheduler's or sweeper's own error for a bad option.
    """
    from .plugins import get_plugin_manager, get_scheduler_class, get_sweeper_class

    manager = get_plugin_manager()
    _check_registered(manager, "sweepers", settings.sweeper.name, "mlx.sweeper.name")
    if sweeper:  # a job of a sweep runs its one point: its launch checked the options (and built no search here)
        get_sweeper_class(settings.sweeper.name).from_settings(settings.sweeper.options)
    _check_registered(manager, "loggers", settings.logger.name, "mlx.logger.name")
    _check_registered(manager, "serializers", settings.logger.checkpoint_format, "mlx.logger.checkpoint_format")
    if settings.use_version_manager:
        _check_registered(manager, "version_managers", settings.version_manager.name, "mlx.version_manager.name")
    if settings.use_scheduler:
        _check_registered(manager, "schedulers", settings.scheduler.name, "mlx.scheduler.name")
        from .schedulers.resources import without_templates  # per-point options are checked per point

        get_scheduler_class(settings.scheduler.name).from_settings(without_templates(settings.scheduler.options))


def _check_registered(manager: Any, kind: str, name: str, setting: str) -> None:
    registry = manager.registry(kind)
    if name not in registry:
        raise UnknownChoiceError(setting, name, registry.names())
