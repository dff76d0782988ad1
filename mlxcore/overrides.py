"""Command-line overrides: parsed with hydra's public override parser, split, and expanded into sweep points.

``python main.py optimizer.lr=0.01,0.1 seed=range(1,4) +mlx.logger.forced_log_id=3`` gives one framework
override (``mlx.*``, applied to :class:`~mlxcore.settings.Settings`) and two sweep axes whose cartesian
product is six points. A sweep needs no ``-m``. Points are produced lazily, so a 100,000-point sweep costs
nothing until it runs.

Every swept key is also kept as a :class:`SearchDimension` (``plan.dimensions``): what a search sweeper
(:mod:`mlxcore.sweepers`) samples from. ``interval(a,b)``, ``tag(log, interval(a,b))``, ``choice(...)`` and
``range(...)`` are search dimensions; the bare ``a,b,c`` form stays a grid axis in a search (a search per grid
point). The grid sweeper refuses ``interval()``, which has no finite list of values.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

CHANGE, ADD, FORCE_ADD, DELETE = "change", "add", "force_add", "delete"
#: MLXP's names of the framework settings (``+mlxp.logger.forced_log_id=1``; ``mlxpy`` before MLXP 0.1): an
#: override under them is refused with the mlxcore spelling, never taken as a user config key
OLD_PREFIXES = ("mlxp", "mlxpy")


@dataclass(frozen=True)
class ConfigOverride:
    """One override of one sweep point, ready to apply."""

    text: str  #: as it would be typed, e.g. ``optimizer.lr=0.01``; re-parsable by hydra
    key: str
    kind: str  #: one of CHANGE, ADD, FORCE_ADD, DELETE
    value: Any
    is_group: bool  #: selects a config-group option (``model=resnet``): needs hydra's composition


#: the forms of a swept value: ``interval(a,b)``, ``choice(...)`` (or the bare ``a,b,c``), ``range(...)``
INTERVAL, CHOICE, RANGE = "interval", "choice", "range"


@dataclass(frozen=True)
class SearchDimension:
    """One swept key as typed, for a sweeper that samples values instead of listing them.

    ``low``/``high`` bound an interval (both ends included, floats) or a range (``high`` is the last value
    the range gives, so both ends are included there too); ``choices`` are the values of a choice or range
    and ``choice_texts`` how each is typed. ``tags`` are hydra's (``log``, ``int``, ...).
    """

    key: str
    key_text: str  #: the key as typed, with its ``+``/``++`` prefix
    text: str  #: the whole override as typed
    form: str  #: INTERVAL, CHOICE or RANGE
    simple: bool  #: the bare ``a,b,c`` form: a grid axis in a search
    tags: frozenset[str]
    is_group: bool
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    choice_texts: tuple[str, ...] = ()

    @property
    def is_grid_axis(self) -> bool:
        """Listed in a search rather than sampled: the bare ``a,b,c`` form or ``tag(grid, ...)``."""
        return self.simple or "grid" in self.tags

    def override(self, value: Any) -> ConfigOverride:
        """The override that sets this key to ``value`` (one of ``choices``, or a number from the interval)."""
        if value in self.choices:
            text = self.choice_texts[self.choices.index(value)]
        elif isinstance(value, str):
            text = hydra_quote(value)
        else:
            text = repr(value)
        return ConfigOverride(text=f"{self.key_text}={text}", key=self.key, kind=self.kind, value=value,
                              is_group=self.is_group)


@dataclass
class SweepPlan:
    """What the command line asked for."""

    mlx_overrides: list[ConfigOverride]
    fixed: list[ConfigOverride]
    axes: list[list[ConfigOverride]]
    #: every swept key, in command-line order (those with a finite list of values are also in ``axes``)
    dimensions: list[SearchDimension] = field(default_factory=list)

    def search(self) -> tuple[SweepPlan, list[SearchDimension]]:
        """For a search sweeper: the grid left once the sampled dimensions are taken out (its fixed overrides
        and its ``a,b,c`` axes), and those dimensions."""
        grid = SweepPlan(self.mlx_overrides, list(self.fixed), [], [])
        sampled = []
        axes = iter(self.axes)
        for dimension in self.dimensions:
            axis = next(axes) if dimension.form != INTERVAL else None
            if dimension.is_grid_axis and axis is not None:
                grid.axes.append(axis)
                grid.dimensions.append(dimension)
            else:
                sampled.append(dimension)
        return grid, sampled

    def __len__(self) -> int:
        n = 1
        for axis in self.axes:
            n *= len(axis)
        return n

    def points(self) -> Iterator[list[ConfigOverride]]:
        """Each point's overrides, in command-line order of the axes (the last axis varies fastest)."""
        for combo in itertools.product(*self.axes):
            yield [*self.fixed, *combo]


def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def parse_command_line(args: Sequence[str], config_dir: Path) -> SweepPlan:
    """Parse ``args`` (``sys.argv[1:]``) into a :class:`SweepPlan`.

    :raises ConfigError: a malformed override (hydra's message, on one line), a swept framework setting,
        or a ``hydra.*`` override (mlxcore does not run hydra's application runtime).
    """
    from hydra.errors import HydraException

    args = list(args)
    if args and args[0] in ("-m", "--multirun"):
        args = args[1:]  # accepted for hydra users; sweeps need no flag here
    try:
        parsed = _parser().parse_overrides(args)
    except HydraException as exc:
        raise ConfigError(" ".join(str(exc).split())) from None
    plan = SweepPlan([], [], [])
    for override in parsed:
        key = override.key_or_group
        if not key:  # hydra's grammar lets '=v' through; the empty key would name the config directory itself
            raise ConfigError(f"bad override {override.input_line!r}: no key before '=' (write key=value)")
        kind = _kind(override)
        if key.split(".", 1)[0] in OLD_PREFIXES:
            raise ConfigError(old_prefix_message(override.input_line, key))
        if key == "mlx" or key.startswith("mlx."):
            if override.is_sweep_override():
                raise ConfigError(f"framework setting {key!r} cannot be swept: give one value")
            plan.mlx_overrides.append(_make(override, key, kind, False, override.value(), None))
            continue
        if override.is_hydra_override():
            raise ConfigError(
                f"{override.input_line!r}: hydra.* settings have no effect in mlxcore; "
                "framework settings are mlx.* (see README, Configuration)"
            )
        is_group = override.package is not None or (config_dir / key).is_dir()
        if not override.is_sweep_override():
            value = None if kind == DELETE else override.value()
            plan.fixed.append(_make(override, key, kind, is_group, value, None))
            continue
        sweep = override.value()
        tags = frozenset(str(tag) for tag in sweep.tags)
        common = {"key": key, "key_text": override.get_key_element(), "text": override.input_line,
                  "tags": tags, "is_group": is_group, "kind": kind}
        if override.is_interval_sweep():
            plan.dimensions.append(SearchDimension(form=INTERVAL, simple=False, low=float(sweep.start),
                                                   high=float(sweep.end), **common))
            continue
        values = list(override.sweep_iterator())
        texts = list(override.sweep_string_iterator())
        if not values:
            raise ConfigError(f"{override.input_line!r} gives no value to sweep")
        plan.axes.append([_make(override, key, kind, is_group, v, t) for v, t in zip(values, texts)])
        is_range = type(sweep).__name__ == "RangeSweep"
        plan.dimensions.append(SearchDimension(
            form=RANGE if is_range else CHOICE, simple=bool(getattr(sweep, "simple_form", False)),
            low=values[0] if is_range else None, high=values[-1] if is_range else None,
            step=sweep.step if is_range else None, choices=tuple(values), choice_texts=tuple(texts), **common))
    return plan


def old_prefix_message(text: str, key: str) -> str:
    """``mlxp.* settings are mlx.* in mlxcore: write +mlx.logger.forced_log_id=1`` for ``text``."""
    head = key.split(".", 1)[0]
    return f"{head}.* settings are mlx.* in mlxcore: write {text.replace(key, 'mlx' + key[len(head):], 1)}"


def _kind(override: Any) -> str:
    if override.is_delete():
        return DELETE
    if override.is_force_add():
        return FORCE_ADD
    if override.is_add():
        return ADD
    return CHANGE


def _make(override: Any, key: str, kind: str, is_group: bool, value: Any, value_text: str | None) -> ConfigOverride:
    if kind == DELETE and override.value() is None:
        text = override.get_key_element()
    else:
        if value_text is None:
            value_text = override.get_value_element_as_str()
        text = f"{override.get_key_element()}={value_text}"
    return ConfigOverride(text=text, key=key, kind=kind, value=value, is_group=is_group)


def hydra_quote(value: str) -> str:
    """``value`` as a quoted override value the launch grammar reads back exactly (spaces, quotes, commas)."""
    if re.fullmatch(r"[A-Za-z0-9_./-]+", value):
        return value
    # inside quotes only backslashes before a quote or at the end are escapes
    body = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value)
    return f"'{body}'"


def pinned_log_dir(workdir: Path, log_dir_root: Path) -> list[str]:
    """The override that keeps runs in ``log_dir_root`` for a process started in ``workdir`` (a relative
    ``logger.parent_log_dir`` would otherwise resolve there); none when ``workdir`` is here."""
    if Path(workdir).absolute() == Path.cwd().absolute():
        return []
    return [f"+mlx.logger.parent_log_dir={hydra_quote(str(log_dir_root))}"]
