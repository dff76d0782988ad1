"""Builtin plugin: ``mlxcore status``, ``mlxcore cancel`` and ``mlxcore sub`` (any scheduler)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    from ..cli.jobs_command import cancel_command
    from ..cli.status_command import status_command
    from ..subscript import sub_command

    cli.add_command(status_command)
    cli.add_command(cancel_command)
    cli.add_command(sub_command)
