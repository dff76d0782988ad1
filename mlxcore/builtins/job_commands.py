"""Builtin plugin: ``mlxcore status``, ``mlxcore cancel`` and ``mlxcore sub`` (any scheduler)."""

from ..hookspecs import hookimpl


@hookimpl
def register_commands(cli):
    from ..cli.jobs_command import cancel_command
    from ..cli.status_command import status_command
    from ..subscript import sub_command

    cli.add_command(status_command)
    cli.add_command(cancel_command)
    cli.add_command(sub_command)
