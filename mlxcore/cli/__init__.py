"""The ``mlxcore`` command line. Sub-commands come from plugins (``register_commands``), builtins included."""

from __future__ import annotations

import logging
import os
import sys

import click

from ..errors import MlxcoreError


class _Group(click.Group):
    """A group whose user errors print one line (traceback with ``MLXCORE_FULL_ERROR=1``)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MlxcoreError as exc:
            if os.environ.get("MLXCORE_FULL_ERROR", "") not in ("", "0"):
                raise
            click.echo(f"mlxcore: error: {exc}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("mlxcore: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group)
@click.version_option(package_name="mlxcore", prog_name="mlxcore")
def cli() -> None:
    """mlxcore: experiments from one function to a cluster, and back to an answer."""


def build_cli() -> click.Group:
    from ..plugins import get_plugin_manager

    get_plugin_manager().add_commands(cli)
    return cli


def main() -> None:
    logging.basicConfig(format="mlxcore: %(message)s", level=os.environ.get("MLXCORE_LOG_LEVEL", "WARNING").upper())
    try:
        group = build_cli()
    except MlxcoreError as exc:  # strict plugin loading
        click.echo(f"mlxcore: error: {exc}", err=True)
        sys.exit(2)
    group(prog_name="mlxcore")
