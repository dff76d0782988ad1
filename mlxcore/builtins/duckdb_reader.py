"""Builtin plugin: the ``duckdb`` reader and the ``query``, ``plot``, ``report`` and ``ui`` commands that use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    import click

    from ..reader.base import Reader


@hookimpl
def register_readers(register: Callable[[type[Reader]], None]) -> None:
    from ..reader.engine import DuckDBReader

    register(DuckDBReader)


@hookimpl
def register_commands(cli: click.Group) -> None:
    from ..cli.plot_command import plot_command
    from ..cli.query_command import query_command
    from ..cli.report_command import report_command
    from ..cli.ui_command import ui_command

    cli.add_command(query_command)
    cli.add_command(plot_command)
    cli.add_command(report_command)
    cli.add_command(ui_command)
