"""``mlxcore plugins`` and ``mlxcore version``."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict

import click

from .. import __version__


def plugin_rows(include_builtins: bool) -> list[dict]:
    from ..plugins import get_plugin_manager

    manager = get_plugin_manager()
    manager.fill_all_registries()
    rows = []
    for info in manager.infos.values():
        if info.builtin and not include_builtins:
            continue
        row = asdict(info)
        row["registered"] = {kind: names for kind, names in info.registered.items() if names}
        rows.append(row)
    return rows


@click.command("plugins")
@click.option("--all", "include_builtins", is_flag=True, help="Include the builtin plugins.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def plugins_command(include_builtins: bool, as_json: bool) -> None:
    """List installed plugins, what each registered, and load errors."""
    rows = plugin_rows(include_builtins)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no external plugins installed (use --all to list the builtin ones)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("plugin", "distribution", "registered", "status")
    for row in rows:
        dist = "builtin" if row["builtin"] else f"{row['distribution'] or '?'} {row['version'] or ''}".strip()
        registered = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in row["registered"].items())
        table.add_row(row["name"], dist, registered or "-", f"[red]error: {row['error']}[/red]" if row["error"] else "ok")
    Console(soft_wrap=False).print(table)


@click.command("version")
def version_command() -> None:
    """Print the versions of mlxcore, Python and the installed plugins."""
    click.echo(f"mlxcore {__version__}")
    click.echo(f"python {platform.python_version()} ({platform.python_implementation()})")
    for row in plugin_rows(include_builtins=False):
        click.echo(f"plugin {row['name']}: {row['distribution'] or '?'} {row['version'] or ''}".rstrip())
