"""The hooks a plugin can implement.

Every hook is a ``register_*`` hook: mlxcore calls it once, the first time it needs that kind of thing, with a
``register`` callable; the plugin calls ``register`` for each thing it provides. Names are checked by the
core's registries (see :mod:`mlxcore.registry`), so a collision between two plugins is an error that names
both. A plugin module looks like this::

    from mlxcore import hookimpl

    @hookimpl
    def register_schedulers(register):
        from my_package.scheduler import MyScheduler   # import the heavy part lazily
        register(MyScheduler)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # type-only: importing the hookspecs (and so ``import mlxcore``) loads none of these
    import click

    from .loggers.base import RunLogger
    from .reader.base import Reader
    from .schedulers.base import Scheduler
    from .serializers import Serializer
    from .sweepers.base import Sweeper
    from .version_managers import VersionManager

PROJECT = "mlxcore"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_loggers(register: Callable[[type[RunLogger]], None]) -> None:
    """Register run-logger classes.

    :param register: call ``register(cls)`` with a subclass of :class:`mlxcore.loggers.base.RunLogger`;
        ``cls.name`` is the name users select with ``mlx.logger.name``.
    """


@hookspec
def register_schedulers(register: Callable[[type[Scheduler]], None]) -> None:
    """Register job schedulers.

    :param register: call ``register(cls)`` with a subclass of :class:`mlxcore.schedulers.base.Scheduler`;
        ``cls.name`` is the name users select with ``mlx.scheduler.name``.
    """


@hookspec
def register_version_managers(register: Callable[[type[VersionManager]], None]) -> None:
    """Register version managers (what code a run executes, and the record of it).

    :param register: call ``register(cls)`` with a subclass of
        :class:`mlxcore.version_managers.VersionManager`; selected with ``mlx.version_manager.name``.
    """


@hookspec
def register_serializers(register: Callable[[Serializer], None]) -> None:
    """Register artifact and checkpoint formats.

    :param register: call ``register(obj)`` with an instance of :class:`mlxcore.serializers.Serializer`;
        ``obj.name`` is the ``artifact_format`` users pass to ``log_artifacts``.
    """


@hookspec
def register_readers(register: Callable[[type[Reader]], None]) -> None:
    """Register readers (query engines over a logs directory).

    :param register: call ``register(cls)`` with a subclass of :class:`mlxcore.reader.base.Reader`; ``cls.name``
        is selected with ``mlx.reader.name`` and used by :class:`mlxcore.Reader`.
    """


@hookspec
def register_sweepers(register: Callable[[type[Sweeper]], None]) -> None:
    """Register sweepers (how the points of a sweep are chosen: a grid, a search that learns from results).

    :param register: call ``register(cls)`` with a subclass of :class:`mlxcore.sweepers.base.Sweeper`;
        ``cls.name`` is selected with ``mlx.sweeper.name``.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``mlxcore`` command line.

    :param cli: the top-level :class:`click.Group`; decorate functions with ``@cli.command()``.
    """
