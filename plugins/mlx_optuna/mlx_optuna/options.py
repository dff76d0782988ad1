"""The sweeper's options (``mlx.sweeper.<option>``), checked before anything is written.

Every bad value is a one-line :class:`~mlxcore.errors.ConfigError` naming the option, the value and what is
valid. The sampler and the pruner are given by name (``tpe``) or as a mapping whose other keys are passed to
the Optuna class's constructor (``{name: tpe, n_startup_trials: 5}``, which is what
``+mlx.sweeper.sampler=tpe +mlx.sweeper.sampler.n_startup_trials=5`` makes): they are kept as such a *spec*, a
plain mapping, because a trial's process (a job on a cluster) rebuilds the pruner from it
(:func:`build_pruner`). Optuna is imported only by the functions that build something from a spec.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from mlxcore.errors import ConfigError, UnknownChoiceError
from mlxcore.settings_checks import check_non_negative_int, check_positive_int
from mlxcore.sweepers.objective import WHICH, split_metric

#: sampler name -> the class of ``optuna.samplers``
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "cmaes": "CmaEsSampler", "grid": "GridSampler"}
#: pruner name -> the class of ``optuna.pruners``
PRUNERS = {"none": "NopPruner", "median": "MedianPruner", "percentile": "PercentilePruner",
           "hyperband": "HyperbandPruner", "successive_halving": "SuccessiveHalvingPruner",
           "threshold": "ThresholdPruner", "wilcoxon": "WilcoxonPruner"}
DIRECTIONS = ("minimize", "maximize")
#: constructor arguments the sweeper fills itself: the seed comes from ``mlx.sweeper.seed``, a grid's values
#: from the command line
RESERVED = {"seed": "mlx.sweeper.seed", "search_space": "the command line's choice() and range() values"}
OPTIONS = ("metric", "reduce", "direction", "n_trials", "sampler", "pruner", "parallel", "seed", "retry_failed",
           "study", "poll_interval")
POLL_RANGE = (0.01, 3600.0)


@dataclass(frozen=True)
class SearchOptions:
    """``mlx.sweeper.*`` of an optuna search, checked."""

    metric: str
    reduce: str = "last"
    direction: str = "minimize"
    n_trials: int = 20
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    parallel: int = 1
    seed: int | None = None
    retry_failed: int = 0
    study: str | None = None
    poll_interval: float = 2.0


def parse_options(options: dict[str, Any]) -> SearchOptions:
    """Check ``mlx.sweeper``'s options (``name`` taken out) and build :class:`SearchOptions`.

    :raises ConfigError: one line naming the option, the bad value and what is valid.
    """
    for key in options:
        if key not in OPTIONS:
            raise UnknownChoiceError("option of sweeper 'optuna' (mlx.sweeper.<option>)", key, OPTIONS)
    metric = options.get("metric")
    if metric is None:
        raise ConfigError("mlx.sweeper.metric is required: the logged value to optimise, '<stream>.<key>', "
                          "e.g. +mlx.sweeper.metric=train.loss")
    if not isinstance(metric, str):
        raise ConfigError(f"mlx.sweeper.metric must be '<stream>.<key>' as logged, e.g. train.loss, got {metric!r}")
    split_metric(metric)
    reduce = _choice(options.get("reduce", "last"), "mlx.sweeper.reduce", WHICH)
    direction = _choice(options.get("direction", "minimize"), "mlx.sweeper.direction", DIRECTIONS)
    n_trials = check_positive_int(options.get("n_trials", 20), "mlx.sweeper.n_trials")
    parallel = check_positive_int(options.get("parallel", 1), "mlx.sweeper.parallel")
    retry_failed = check_non_negative_int(options.get("retry_failed", 0), "mlx.sweeper.retry_failed")
    seed = options.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"mlx.sweeper.seed must be an integer or null, got {seed!r}")
    study = options.get("study")
    if study is not None and (not isinstance(study, str) or not study.strip()):
        raise ConfigError(f"mlx.sweeper.study must be a non-empty study name or null, got {study!r}")
    poll = options.get("poll_interval", 2.0)
    if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not math.isfinite(poll) \
            or not POLL_RANGE[0] <= poll <= POLL_RANGE[1]:
        raise ConfigError(f"mlx.sweeper.poll_interval must be a number of seconds in "
                          f"[{POLL_RANGE[0]:g}, {POLL_RANGE[1]:g}], got {poll!r}")
    sampler = parse_spec(options.get("sampler", "tpe"), "sampler", SAMPLERS, "tpe")
    pruner = parse_spec(options.get("pruner", "none"), "pruner", PRUNERS, "none")
    if sampler["name"] != "grid":
        build_sampler(sampler, seed)  # a bad argument value fails here, before anything is written
    build_pruner(pruner)
    return SearchOptions(metric=metric, reduce=reduce, direction=direction, n_trials=n_trials, sampler=sampler,
                         pruner=pruner, parallel=parallel, seed=seed, retry_failed=retry_failed, study=study,
                         poll_interval=float(poll))


def _choice(value: Any, setting: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UnknownChoiceError(setting, value, choices)
    return str(value)


def parse_spec(value: Any, kind: str, classes: dict[str, str], default: str) -> dict[str, Any]:
    """``{"name": ..., **constructor arguments}`` from a name or a mapping; the arguments are checked against
    the Optuna class's signature."""
    setting = f"mlx.sweeper.{kind}"
    if isinstance(value, str):
        spec: dict[str, Any] = {"name": value}
    elif isinstance(value, dict):
        spec = {"name": default, **value}
    else:
        raise ConfigError(f"{setting} must be a name ({', '.join(classes)}) or a mapping with a 'name', got {value!r}")
    name = spec["name"]
    if name not in classes:
        raise UnknownChoiceError(setting, name, classes)
    valid = _parameters(kind, classes[name])
    for key in spec:
        if key == "name":
            continue
        if key in RESERVED and key not in valid:
            raise ConfigError(f"{setting}.{key}: given by {RESERVED[key]}, not as a {kind} argument")
        if key not in valid:
            raise UnknownChoiceError(f"argument of the {name} {kind} ({setting}.<argument>)", key, valid)
    return spec


def _parameters(kind: str, class_name: str) -> list[str]:
    """The constructor arguments a user may give (not ``self``, ``*args``, nor what the sweeper fills)."""
    signature = inspect.signature(_optuna_class(kind, class_name).__init__)
    return [p.name for p in signature.parameters.values() if p.name != "self" and p.name not in RESERVED
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _optuna_class(kind: str, class_name: str) -> Any:
    import optuna

    return getattr(optuna.samplers if kind == "sampler" else optuna.pruners, class_name)


def _build(kind: str, classes: dict[str, str], spec: dict[str, Any], **extra: Any) -> Any:
    arguments = {k: v for k, v in spec.items() if k != "name"}
    try:
        return _optuna_class(kind, classes[spec["name"]])(**arguments, **extra)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"mlx.sweeper.{kind} {spec!r}: {' '.join(str(exc).split())}") from None


def build_sampler(spec: dict[str, Any], seed: int | None, grid: dict[str, list[Any]] | None = None) -> Any:
    """The Optuna sampler of ``spec``; ``grid`` is the search space of the ``grid`` sampler."""
    extra: dict[str, Any] = {"seed": seed}
    if spec["name"] == "grid":
        extra["search_space"] = grid or {}
    return _build("sampler", SAMPLERS, spec, **extra)


def build_pruner(spec: dict[str, Any]) -> Any:
    """The Optuna pruner of ``spec`` (also in a trial's process, from its record's ``pruner``)."""
    return _build("pruner", PRUNERS, spec)
