"""Framework settings: ``config_path/mlx.yaml`` plus ``mlx.KEY=V`` / ``+mlx.KEY=V`` overrides.

Settings are plain dataclasses so that reading them costs no omegaconf import and every key has a documented
default. An unknown key is an error listing the valid keys. The ``scheduler``, ``version_manager``,
``reader`` and ``sweeper`` sections hold a ``name`` plus options that belong to the chosen plugin; the plugin
validates them (see :meth:`mlxcore.schedulers.base.Scheduler.from_settings`). Ranges and formats are checked by
:mod:`mlxcore.settings_checks`: :func:`build_settings` runs the checks that need no plugin, and
:func:`check_plugin_choices` those that depend on the installed plugins.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, UnknownChoiceError
from .settings_checks import check_plugin_choices, check_settings  # noqa: F401 - check_plugin_choices re-exported


@dataclass
class LoggerSettings:
    #: logger plugin name
    name: str = "files"
    #: where run directories are created (relative paths are relative to the working directory)
    parent_log_dir: str = "./logs"
    #: reuse this run directory (resume) instead of allocating a new id
    forced_log_id: int | None = None
    #: tee the task's stdout/stderr into ``log.stdout``/``log.stderr`` in the run directory
    log_streams_to_file: bool = False
    #: artifact format used by ``log_checkpoint`` when none is given
    checkpoint_format: str = "pickle"
    #: metric rows are buffered and written at least this often (seconds)
    flush_interval: float = 1.0
    #: how often a running run touches ``metadata/heartbeat`` (seconds); a stale heartbeat means DEAD
    heartbeat_interval: float = 10.0


@dataclass
class PluginSection:
    """A ``name`` plus the chosen plugin's own options (validated by that plugin)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        options = self.__dict__.get("options", {})
        if key in options:
            return options[key]
        raise AttributeError(key)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


@dataclass
class Settings:
    logger: LoggerSettings = field(default_factory=LoggerSettings)
    #: give each run a directory and a logger; false: the task runs and nothing is written (``ctx.logger`` keeps
    #: nothing, ``load_checkpoint`` finds nothing)
    use_logger: bool = True
    #: submit each sweep point to ``scheduler`` instead of running it in this process
    use_scheduler: bool = False
    scheduler: PluginSection = field(default_factory=lambda: PluginSection("local"))
    #: let ``version_manager`` choose and record the code that runs
    use_version_manager: bool = False
    version_manager: PluginSection = field(default_factory=lambda: PluginSection("git"))
    reader: PluginSection = field(default_factory=lambda: PluginSection("duckdb"))
    #: how the points of a sweep are chosen: ``grid`` (every combination of the listed values) or a search
    #: sweeper plugin (``optuna``) with its own options
    sweeper: PluginSection = field(default_factory=lambda: PluginSection("grid"))
    #: do not run a sweep point whose config identity matches a COMPLETE run in the same logs directory
    skip_completed: bool = False
    #: run only the points whose latest run failed or was interrupted, back into that run's directory
    rerun_failed: bool = False
    #: let a resumed or rerun run take a config that differs from the one it recorded (the change is recorded in
    #: its history); off, such a resume is refused, so a run's results are never relabelled silently
    allow_config_change: bool = False
    #: signals that ask the task to checkpoint and stop (``ctx.should_stop``); the run ends PREEMPTED
    stop_signals: list[str] = field(default_factory=lambda: ["SIGUSR1", "SIGUSR2"])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, PluginSection):
                out[f.name] = value.to_dict()
            elif dataclasses.is_dataclass(value) and not isinstance(value, type):
                out[f.name] = dataclasses.asdict(value)
            else:
                out[f.name] = value
        return out

    @property
    def log_dir_root(self) -> Path:
        return Path(self.logger.parent_log_dir).expanduser().absolute()


def build_settings(data: dict[str, Any] | None) -> Settings:
    """Check ``data`` (the content of mlx.yaml after overrides) and build :class:`Settings`.

    Types, then ranges and formats (:func:`mlxcore.settings_checks.check_settings`) are checked; the names that
    depend on the installed plugins are not (:func:`check_plugin_choices`).

    :raises ConfigError: one line naming the setting, the bad value and what is valid.
    """
    settings = _build(Settings, data or {}, "mlx")
    check_settings(settings)
    return settings


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise UnknownChoiceError("setting", f"{path}.{key}", [f"{path}.{n}" for n in sorted(names)])
        hint = hints[key]
        if hint is PluginSection:
            kwargs[key] = _plugin_section(value, f"{path}.{key}", getattr(cls(), key).name)
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{path}.{key}")
        else:
            kwargs[key] = _check_type(value, hint, f"{path}.{key}")
    return cls(**kwargs)


def _plugin_section(value: Any, path: str, default_name: str) -> PluginSection:
    if isinstance(value, str):  # ``scheduler: slurm`` is short for ``scheduler: {name: slurm}``
        return PluginSection(value)
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must be a mapping with a 'name', got {value!r}")
    options = dict(value)
    name = options.pop("name", default_name)
    if not isinstance(name, str):
        raise ConfigError(f"{path}.name must be a string, got {name!r}")
    return PluginSection(name, options)


def _check_type(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path} must be a list, got {value!r}")
        return [_check_type(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (hint is int and isinstance(value, bool)) or not isinstance(value, hint):
        raise ConfigError(f"{path} must be {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_dotted(d, "logger.forced_log_id", 3)`` creating intermediate mappings."""
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if isinstance(child, str):  # short form ``scheduler: slurm``
            child = {"name": child}
        if not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    node[last] = value


def delete_dotted(data: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)
