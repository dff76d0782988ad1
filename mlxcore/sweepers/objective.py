"""A trial's result, read from what its run logged: the task's code does not change to be searched.

``metric`` names a logged key as the reader does, ``<stream>.<key>`` (``train.loss``: key ``loss`` of the rows
logged with ``log_name="train"``), and ``which`` the value that counts: the ``last`` one logged, or the ``min``
or ``max`` over the run. The stream file is read line by line: a trial's file is small, and reading it needs no
reader, index or summary (a run killed mid-line leaves a torn last line, which is skipped).

Non-numbers are refused and non-finite values handled as Python compares them: ``last`` gives what was logged
last (NaN included: a diverged trial is a failed one, not a good one), ``min``/``max`` are taken over the finite
values (a run whose loss was 0.1 before it diverged did reach 0.1).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import ConfigError
from ..store import layout

WHICH = ("last", "min", "max")


def split_metric(metric: str) -> tuple[str, str]:
    """``("train", "loss")`` for ``train.loss``; the stream is the part before the first dot."""
    stream, dot, key = metric.partition(".")
    if not dot or not stream or not key:
        raise ConfigError(f"metric {metric!r} must be '<stream>.<key>' as logged, e.g. train.loss "
                          "(ctx.logger.log_metrics({'loss': ...}, log_name='train'))")
    return stream, key


def read_metric(run_dir: Path | str, metric: str, which: str = "last") -> float | None:
    """The value of ``metric`` that counts for the run in ``run_dir``; ``None`` when the run never logged it
    as a number.

    :raises ConfigError: ``which`` is not one of :data:`WHICH`, or ``metric`` is not ``<stream>.<key>``.
    """
    if which not in WHICH:
        raise ConfigError(f"unknown metric reduction {which!r}; valid: {', '.join(WHICH)}")
    stream, key = split_metric(metric)
    path = layout.RunPaths(Path(run_dir)).stream(stream)
    values: list[float] = []
    try:
        with open(path, "rb") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a torn last line
                value = row.get(key) if isinstance(row, dict) else None
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    values.append(float(value))
    except FileNotFoundError:
        return None
    if not values:
        return None
    if which == "last":
        return values[-1]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return values[-1]
    return min(finite) if which == "min" else max(finite)
