"""Builtin plugin: the ``duckdb`` reader and the ``query`` and ``plot`` commands that use it."""

from ..hookspecs import hookimpl


@hookimpl
def register_readers(register):
    from ..reader.engine import DuckDBReader

    register(DuckDBReader)


@hookimpl
def register_commands(cli):
    from ..cli.plot_command import plot_command
    from ..cli.query_command import query_command

    cli.add_command(query_command)
    cli.add_command(plot_command)
