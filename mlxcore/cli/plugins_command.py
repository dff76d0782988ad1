"""``mlxcore plugins`` and ``mlxcore version``.

Each plugin's row says which hook kinds it implements (``register_schedulers`` -> ``schedulers``) and, for each
object it registered that declares one, the interface version it implements (a scheduler's
``interface_version``: ``0.1`` for a class written for the old interface and translated at load).
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from typing import Any

import click

from .. import __version__

HOOK_PREFIX = "register_"


def plugin_rows(include_builtins: bool) -> list[dict[str, Any]]:
    from ..plugins import KINDS, get_plugin_manager

    manager = get_plugin_manager()
    manager.fill_all_registries()
    rows = []
    for info in manager.infos.values():
        if info.builtin and not include_builtins:
            continue
        row = asdict(info)
        row["registered"] = {kind: names for kind, names in info.registered.items() if names}
        row["kinds"] = [hook.removeprefix(HOOK_PREFIX) for hook in info.hooks]
        interfaces: dict[str, dict[str, str]] = {}
        for kind, names in row["registered"].items():
            for name in names if kind in KINDS else ():
                version = getattr(manager.registry(kind).get(name), "interface_version", None)
                if version is not None:
                    interfaces.setdefault(kind, {})[name] = str(version)
        row["interfaces"] = interfaces
        rows.append(row)
    return rows


def _registered(row: dict[str, Any]) -> str:
    """``schedulers: slurm (interface 0.2); commands: hello``."""
    parts = []
    for kind, names in row["registered"].items():
        versions = row["interfaces"].get(kind, {})
        parts.append(f"{kind}: " + ", ".join(f"{n} (interface {versions[n]})" if n in versions else n for n in names))
    return "; ".join(parts)


@click.command("plugins")
@click.option("--all", "include_builtins", is_flag=True, help="Include the builtin plugins.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def plugins_command(include_builtins: bool, as_json: bool) -> None:
    """List installed plugins, their hook kinds, what each registered (with interface versions), load errors."""
    rows = plugin_rows(include_builtins)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no external plugins installed (use --all to list the builtin ones)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("plugin", "distribution"):  # names never wrap; the long columns do
        table.add_column(column, no_wrap=True)
    for column in ("hook kinds", "registered", "status"):
        table.add_column(column)
    for row in rows:
        dist = "builtin" if row["builtin"] else f"{row['distribution'] or '?'} {row['version'] or ''}".strip()
        table.add_row(row["name"], dist, ", ".join(row["kinds"]) or "-", _registered(row) or "-",
                      f"[red]error: {row['error']}[/red]" if row["error"] else "ok")
    Console(soft_wrap=False).print(table)


@click.command("version")
def version_command() -> None:
    """Print the versions of mlxcore, Python and the installed plugins."""
    click.echo(f"mlxcore {__version__}")
    click.echo(f"python {platform.python_version()} ({platform.python_implementation()})")
    for row in plugin_rows(include_builtins=False):
        click.echo(f"plugin {row['name']}: {row['distribution'] or '?'} {row['version'] or ''}".rstrip())
