"""``python main.py --help``: what a launch takes, from the task's own config and the settings in effect.

A decorated task's command line holds hydra-style overrides only, so ``--help`` used to reach hydra's override
parser and fail with a lexer error. It now prints a usage: the grammar in two lines, every key of the task's
config with its value (what ``key=value`` may change), and every ``mlx.*`` setting in effect (``mlx.yaml``
with its defaults). Any other word starting with ``-`` is refused in one line that points to ``--help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, MlxcoreError

if TYPE_CHECKING:
    from .settings import Settings

HELP_FLAGS = ("-h", "--help")

GRAMMAR = """\
usage: {prog} [KEY=VALUE ...] [+mlx.SETTING=VALUE ...]

Runs the task once per sweep point: KEY=A,B or KEY=range(0,3) sweeps a key, several sweeps make a grid
(lr=0.01,0.1 seed=1,2,3 is 6 runs); +KEY=VALUE adds a key, ~KEY removes one; +mlx.SETTING=VALUE changes a
setting of mlxcore for this launch only. Each run gets its own directory under mlx.logger.parent_log_dir.
"""


def wants_help(argv: list[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)


def check_flags(argv: list[str]) -> None:
    """Refuse a word that looks like an option: the command line takes overrides only.

    :raises ConfigError: naming the word and what the command line takes.
    """
    for arg in argv:
        if arg.startswith("-") and arg not in HELP_FLAGS:
            raise ConfigError(f"{arg!r} is not an option of a launch: the command line takes KEY=VALUE overrides "
                              "and +mlx.SETTING=VALUE settings (see --help)")


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` -> ``[("a.b", 1)]``; an empty mapping stays a value."""
    if isinstance(data, dict) and data:
        out: list[tuple[str, Any]] = []
        for key, value in data.items():
            out += flatten(value, f"{prefix}{key}.")
        return out
    return [(prefix[:-1], data)]


def settings_items(settings: Settings) -> list[tuple[str, Any]]:
    """Every ``mlx.*`` setting of ``settings`` with its value (a plugin section shows its name and options)."""
    return flatten(settings.to_dict())


def render(prog: str, config_dir: Path, argv: list[str]) -> str:
    """The whole usage text; a config or ``mlx.yaml`` that cannot be read is said in its section."""
    import yaml

    from .compose import Composer, resolve
    from .launching import load_settings
    from .overrides import parse_command_line

    def show(value: Any) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("\n...")

    lines = [GRAMMAR.format(prog=prog)]
    config_file = config_dir / "config.yaml"
    lines.append(f"config keys ({config_file}):")
    try:
        config = resolve(Composer(config_dir).compose([]))
        items = flatten(config)
        lines += [f"  {key}={show(value)}" for key, value in items if key] or ["  (none)"]
    except MlxcoreError as exc:
        lines.append(f"  (cannot be read: {exc})")
    lines += ["", f"mlx settings in effect ({config_dir / 'mlx.yaml'} and the defaults; +mlx.KEY=VALUE):"]
    try:
        mlx_overrides = parse_command_line([a for a in argv if a not in HELP_FLAGS], config_dir).mlx_overrides
        settings = load_settings(config_dir, mlx_overrides)
        lines += [f"  mlx.{key}={show(value)}" for key, value in settings_items(settings)]
    except MlxcoreError as exc:
        lines.append(f"  (cannot be read: {exc})")
    closing = "Every setting is in the README, 'Configuration reference'; `mlxcore status LOGS` shows the runs."
    lines += ["", closing]
    return "\n".join(lines) + "\n"
