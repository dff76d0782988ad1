"""The README documents every hook and every ``mlx.*`` setting, and says what the code does about them."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

import pytest

from mlxcore import hookspecs
from mlxcore.settings import PluginSection, Settings

README = Path(__file__).parents[1] / "README.md"


def section(title: str) -> str:
    """The text of the README's ``## title`` section (up to the next ``## `` heading)."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if match is None:
        raise AssertionError(f"README.md has no '## {title}' section")
    return match.group(1)


def hook_names() -> list[str]:
    marker = f"{hookspecs.PROJECT}_spec"  # the attribute pluggy's HookspecMarker sets
    return sorted(name for name, value in vars(hookspecs).items() if callable(value) and hasattr(value, marker))


def settings_defaults(cls: type = Settings, prefix: str = "") -> dict[str, Any]:
    """Every key of ``mlx.yaml`` (dotted, without ``mlx.``) and its default; a plugin section has ``name``."""
    defaults: dict[str, Any] = {}
    instance = cls()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, hint = f"{prefix}{f.name}", hints[f.name]
        if hint is PluginSection:
            defaults[f"{key}.name"] = getattr(instance, f.name).name
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            defaults.update(settings_defaults(hint, f"{key}."))
        else:
            defaults[key] = getattr(instance, f.name)
    return defaults


def settings_table() -> dict[str, str]:
    """The configuration reference's table: key -> the default column, as printed."""
    rows = re.findall(r"^\| `([a-z_.]+)` \| `?([^|`]*)`? \|", section("Configuration reference"), flags=re.M)
    return dict(rows)


def as_yaml(value: Any) -> str:
    """A default as the table prints it (YAML's flow style)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return f"[{', '.join(as_yaml(v) for v in value)}]"
    return str(value)


def test_the_hooks_are_found():
    assert "register_schedulers" in hook_names()
    assert len(hook_names()) >= 6


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented(hook):
    assert f"`{hook}" in section("Writing a plugin"), f"README's 'Writing a plugin' does not document {hook}"
    assert (getattr(hookspecs, hook).__doc__ or "").strip(), f"hookspecs.{hook} has no docstring"


def test_the_settings_are_found():
    assert {"logger.parent_log_dir", "scheduler.name", "stop_signals"} <= set(settings_defaults())


@pytest.mark.parametrize("key", sorted(settings_defaults()))
def test_every_setting_is_documented_with_its_default(key):
    table = settings_table()
    assert key in table, f"mlx.{key} is missing from README's configuration reference"
    assert table[key] == as_yaml(settings_defaults()[key]), f"README gives mlx.{key} the wrong default"


def test_the_settings_table_names_only_real_settings():
    assert sorted(set(settings_table()) - set(settings_defaults())) == []
