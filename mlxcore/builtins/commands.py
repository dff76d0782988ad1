"""Builtin plugin: the ``plugins`` and ``version`` commands."""

from ..hookspecs import hookimpl


@hookimpl
def register_commands(cli):
    from ..cli.plugins_command import plugins_command, version_command

    cli.add_command(plugins_command)
    cli.add_command(version_command)
