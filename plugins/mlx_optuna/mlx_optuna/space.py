"""The search space: the command line's sampled dimensions as Optuna distributions, and back to overrides.

``interval(a,b)`` is a FloatDistribution (``tag(log, ...)``: log-uniform; ``tag(int, ...)``: an
IntDistribution of the rounded ends), ``range(a,b,step)`` a stepped Int- or FloatDistribution over exactly the
values the range lists, ``choice(...)`` a CategoricalDistribution. Optuna's categoricals hold only None, bools,
ints, floats and strings; a choice of anything else (a list, a mapping) is searched over the texts as typed and
mapped back to the value by position, so a trial's params stay JSON-like (they are recorded in its run).

The study's name is derived from what defines the search, so the same command finds the same study again
(:func:`study_name`); how much to search (``n_trials``) and how (sampler, pruner, parallel, seed) are not part
of it: raising ``n_trials`` extends the study.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxcore.errors import ConfigError
from mlxcore.overrides import INTERVAL, RANGE, ConfigOverride, SearchDimension

if TYPE_CHECKING:
    from .options import SearchOptions

_PLAIN = (type(None), bool, int, float, str)


class SearchSpace:
    """The sampled dimensions of a command, as the distributions every trial is asked with."""

    def __init__(self, dimensions: list[SearchDimension]) -> None:
        if not dimensions:
            raise ConfigError("nothing to search: give interval(), choice() or range() to at least one key, e.g. "
                              "'lr=tag(log, interval(1e-4, 1))' (a,b,c lists stay grid axes: a study per point)")
        seen: set[str] = set()
        for dimension in dimensions:
            if dimension.key in seen:
                raise ConfigError(f"{dimension.text!r}: key {dimension.key!r} is searched twice")
            seen.add(dimension.key)
        self.dimensions = dimensions
        #: keys whose choices are searched as their texts (not all plain values)
        self.by_text = {d.key for d in dimensions if d.form not in (INTERVAL, RANGE)
                        and not all(isinstance(c, _PLAIN) for c in d.choices)}
        self.distributions = {d.key: self._distribution(d) for d in dimensions}

    def _distribution(self, dimension: SearchDimension) -> Any:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        log = "log" in dimension.tags
        try:
            if dimension.form == INTERVAL:
                low, high = float(dimension.low or 0.0), float(dimension.high or 0.0)
                if "int" in dimension.tags:
                    return IntDistribution(round(low), round(high), log=log)
                return FloatDistribution(low, high, log=log)
            if dimension.form == RANGE:
                values = list(dimension.choices)
                low, high = min(values), max(values)
                step = abs(dimension.step or 1)
                if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                    return IntDistribution(int(low), int(high), step=int(step), log=log and step == 1)
                return FloatDistribution(float(low), float(high), step=float(step) if len(values) > 1 else None)
            if dimension.key in self.by_text:
                return CategoricalDistribution(dimension.choice_texts)
            return CategoricalDistribution(dimension.choices)
        except ValueError as exc:
            raise ConfigError(f"{dimension.text!r} cannot be searched: {' '.join(str(exc).split())}") from None

    def grid(self) -> dict[str, list[Any]]:
        """Every dimension's values, for the ``grid`` sampler: an interval has none to list."""
        out: dict[str, list[Any]] = {}
        for dimension in self.dimensions:
            if dimension.form == INTERVAL:
                raise ConfigError(f"{dimension.text!r}: the grid sampler needs a finite list of values; use range() "
                                  "or choice() there, or another sampler (+mlx.sweeper.sampler=tpe)")
            out[dimension.key] = list(dimension.choice_texts if dimension.key in self.by_text else dimension.choices)
        return out

    def size(self) -> int:
        """How many distinct points a grid search has."""
        return math.prod(len(values) for values in self.grid().values())

    def overrides(self, params: dict[str, Any]) -> list[ConfigOverride]:
        """The overrides that set each key to its sampled value."""
        out = []
        for dimension in self.dimensions:
            if dimension.key not in params:
                raise ConfigError(f"a trial of this study has no value for {dimension.key!r}: the study was made for "
                                  "another search space; give another +mlx.sweeper.study")
            value = params[dimension.key]
            if dimension.key in self.by_text:
                value = dimension.choices[dimension.choice_texts.index(value)]
            out.append(dimension.override(value))
        return out


def study_name(script: str, fixed: list[ConfigOverride], point: list[ConfigOverride],
               dimensions: list[SearchDimension], options: SearchOptions) -> str:
    """``<script stem>-<10 hex>``: readable, and the same for the same search (see the module docstring)."""
    defining = {"script": Path(script).name, "fixed": sorted(o.text for o in fixed),
                "point": [o.text for o in point], "dimensions": [d.text for d in dimensions],
                "metric": options.metric, "reduce": options.reduce, "direction": options.direction}
    digest = hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(script).stem) or "search"
    return f"{stem}-{digest}"
