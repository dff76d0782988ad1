"""Loading plugins, once and lazily, and the typed accessors through which the core reads them.

Builtins are plugins too: the modules in :data:`DEFAULT_PLUGINS` are registered first, exactly like external
ones, then every entry point of the ``mlxcore`` group is loaded *in isolation*: a plugin that fails to import,
implements an unknown hook, or registers a name another plugin already took is recorded in
:attr:`PluginManager.errors` and shown by ``mlxcore plugins``; it never takes the tool down. With
``MLXCORE_STRICT_PLUGINS=1`` such a failure raises :class:`~mlxcore.errors.PluginError` instead.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import Provider, Registry

if TYPE_CHECKING:  # type-only: the accessors' classes live in modules ``import mlxcore`` must not load
    from .loggers.base import RunLogger
    from .reader.base import Reader
    from .schedulers.base import Scheduler
    from .sweepers.base import Sweeper
    from .version_managers import VersionManager

log = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "mlxcore.builtins.files_logger",
    "mlxcore.builtins.local_scheduler",
    "mlxcore.builtins.serializers",
    "mlxcore.builtins.artifact_types",
    "mlxcore.builtins.commands",
    "mlxcore.builtins.job_commands",
    "mlxcore.builtins.duckdb_reader",
    "mlxcore.builtins.grid_sweeper",
)

#: registry kind -> (hook name, noun used in messages)
KINDS: dict[str, tuple[str, str]] = {
    "loggers": ("register_loggers", "logger"),
    "schedulers": ("register_schedulers", "scheduler"),
    "version_managers": ("register_version_managers", "version manager"),
    "serializers": ("register_serializers", "artifact format"),
    "readers": ("register_readers", "reader"),
    "sweepers": ("register_sweepers", "sweeper"),
}


@dataclass
class PluginInfo:
    """What ``mlxcore plugins`` shows about one plugin."""

    name: str
    builtin: bool
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def provider(self) -> Provider:
        return Provider(self.name, self.distribution, self.version)


class PluginManager:
    """A pluggy manager plus the registries filled from it. Build one with :func:`new_plugin_manager`."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry[Any]] = {}

    # -- loading ---------------------------------------------------------------------------------------
    def add_plugin(self, plugin: Any, info: PluginInfo) -> None:
        """Register one plugin object, validating its hooks; failures are recorded (or raised if strict)."""
        self.infos[info.name] = info
        try:
            self.pm.register(plugin, name=info.name)
            self.pm.check_pending()
        except Exception as exc:  # noqa: BLE001 - pluggy raises its own ValidationError, plugins raise anything
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self._fail(info, f"invalid hook implementation: {exc}")
            return
        info.hooks = sorted(impl_name for impl_name in _hook_names(self.pm, plugin))

    def load_entry_points(self) -> None:
        for ep in _entry_points():
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                builtin=False,
                distribution=dist.metadata["Name"] if dist else None,
                version=dist.version if dist else None,
            )
            if ep.name in self.infos:
                self.infos[f"{ep.name} ({info.distribution})"] = info
                self._fail(info, f"entry point name {ep.name!r} is already used by another plugin")
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - one broken plugin never takes the tool down
                self.infos[info.name] = info
                self._fail(info, f"cannot import {ep.value}: {type(exc).__name__}: {exc}")
                continue
            self.add_plugin(plugin, info)

    def _fail(self, info: PluginInfo, message: str) -> None:
        info.error = message
        if self.strict:
            raise PluginError(f"plugin {info.name!r}: {message}")
        log.warning("plugin %s not loaded: %s", info.name, message)

    # -- registries ------------------------------------------------------------------------------------
    def registry(self, kind: str) -> Registry[Any]:
        """The registry of ``kind`` (a key of :data:`KINDS`), filled on first use."""
        if kind not in self._registries:
            hook_name, noun = KINDS[kind]
            registry: Registry[Any] = Registry(noun)
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                info = self.infos[impl.plugin_name]
                registered = info.registered.setdefault(kind, [])

                def register(item: Any, name: str | None = None, _info=info, _reg=registered) -> None:
                    _reg.append(registry.add(item, _info.provider(), name))

                try:
                    impl.function(register)
                except PluginError as exc:
                    self._fail(info, str(exc))
                except Exception as exc:  # noqa: BLE001 - a failing plugin loses only what it registers
                    self._fail(info, f"{hook_name} failed: {type(exc).__name__}: {exc}")
            self._registries[kind] = registry
        return self._registries[kind]

    def refill(self, kind: str) -> Registry[Any]:
        """Ask the plugins for ``kind`` again: a plugin's offer changed while the process runs (a format added
        with ``register_artifact_type``)."""
        self._registries.pop(kind, None)
        for info in self.infos.values():
            info.registered.pop(kind, None)
        return self.registry(kind)

    def add_commands(self, cli: Any) -> None:
        """Let each plugin add its sub-commands to ``cli``; one failing plugin loses only its commands."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            info = self.infos[impl.plugin_name]
            before = set(cli.commands)
            try:
                impl.function(cli)
            except Exception as exc:  # noqa: BLE001 - a failing plugin loses only its commands
                self._fail(info, f"register_commands failed: {type(exc).__name__}: {exc}")
            info.registered["commands"] = sorted(set(cli.commands) - before)

    def fill_all_registries(self) -> None:
        for kind in KINDS:
            self.registry(kind)


def _hook_names(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    return [caller.name for caller in (pm.get_hookcallers(plugin) or [])]


def _entry_points() -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=hookspecs.PROJECT))


def new_plugin_manager(
    *, load_entry_points: bool = True, strict: bool | None = None, extra: tuple[tuple[str, Any], ...] = ()
) -> PluginManager:
    """Build a fresh manager: builtins, then ``extra`` ``(name, plugin)`` pairs, then entry points."""
    if strict is None:
        strict = os.environ.get("MLXCORE_STRICT_PLUGINS", "") not in ("", "0")
    manager = PluginManager(strict=strict)
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        manager.add_plugin(module, PluginInfo(name=module_name.rsplit(".", 1)[-1], builtin=True))
    for name, plugin in extra:
        manager.add_plugin(plugin, PluginInfo(name=name, builtin=False))
    if load_entry_points:
        manager.load_entry_points()
    return manager


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide manager, built on first use."""
    global _manager
    if _manager is None:
        _manager = new_plugin_manager()
    return _manager


def set_plugin_manager(manager: PluginManager | None) -> PluginManager | None:
    """Replace the process-wide manager (tests); returns the previous one. ``None`` rebuilds lazily."""
    global _manager
    previous, _manager = _manager, manager
    return previous


# -- typed accessors: the only way the core reads what plugins registered ---------------------------------
# Each raises UnknownChoiceError naming the registered names. The hookspecs' types say what a plugin registers.
def get_logger_class(name: str) -> type[RunLogger]:
    return get_plugin_manager().registry("loggers").get(name)


def get_scheduler_class(name: str) -> type[Scheduler]:
    return get_plugin_manager().registry("schedulers").get(name)


def get_version_manager_class(name: str) -> type[VersionManager]:
    return get_plugin_manager().registry("version_managers").get(name)


def get_reader_class(name: str) -> type[Reader]:
    return get_plugin_manager().registry("readers").get(name)


def get_sweeper_class(name: str) -> type[Sweeper]:
    return get_plugin_manager().registry("sweepers").get(name)
