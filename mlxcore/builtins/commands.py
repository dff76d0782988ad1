"""Builtin plugin: the ``plugins`` and ``version`` commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    from ..cli.plugins_command import plugins_command, version_command

    cli.add_command(plugins_command)
    cli.add_command(version_command)
