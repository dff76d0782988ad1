"""Search trials as data: the runs a sweeper made (their info holds a ``trial`` record, :mod:`mlxcore.sweepers`),
one row a trial, grouped by study, with the best value so far.

``mlxcore status`` summarizes each study in one line, ``mlxcore plot --trials`` draws each study's values and
best-so-far line, and :func:`trials` gives the same rows to Python::

    from mlxcore.reader.trials import trials
    df = trials("./logs")                                    # every study: a pandas DataFrame
    best = df[df.is_best]                                    # the best trial of each study

A trial's ``state`` is what its sweeper told its study (``COMPLETE``, ``PRUNED``, ``FAIL``), except that a
trial whose run is still waiting or running is ``RUNNING``, and one whose run ended before its sweeper recorded
how is ``UNRECORDED`` (a batch still going on a cluster, or a sweeper stopped before it told its study).
The best trial of a study is the COMPLETE trial with the lowest (``minimize``, the default) or highest
(``maximize``) finite ``value``, by the study's ``direction``; on a tie, the earliest trial. ``best_so_far``
is the best value among the COMPLETE trials numbered up to the row's (``None`` before the first one).
When two runs hold the same trial of a study, the newer run counts.

The records are read from the runs' own info (through :func:`mlxcore.schedulers.observe.observe`, which
reconciles a run still recorded waiting or running with its scheduler); no metric file is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import QueryError

COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"
#: the state of a trial whose run waits or runs, and of one whose run ended before its sweeper recorded how
RUNNING, UNRECORDED = "RUNNING", "UNRECORDED"
MAXIMIZE = "maximize"
#: the columns of :func:`trials`, before the sampled values (``params.<key>``)
COLUMNS = ("study", "sweeper", "number", "log_id", "status", "state", "value", "best_so_far", "is_best", "metric",
           "reduce", "direction", "retry_of")
_ACTIVE = frozenset({"SUBMITTED", "PENDING", "RUNNING"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _better(value: float, best: float | None, maximize: bool) -> bool:
    return best is None or (value > best if maximize else value < best)


def trial_rows(runs: Iterable[tuple[int, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per trial among ``runs`` (``(log_id, status, info)``; runs without a ``trial`` record are left out),
    ordered by study (the order of their first run) and trial number, with ``best_so_far`` and ``is_best``."""
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    first_run: dict[str, int] = {}
    for log_id, status, info in runs:
        record = info.get("trial") if isinstance(info, dict) else None
        if not isinstance(record, dict):
            continue
        study = str(record.get("study", "-"))
        state = record.get("state")
        if status in _ACTIVE:
            state = RUNNING
        elif not isinstance(state, str):
            state = UNRECORDED
        params = record.get("params")
        if not isinstance(params, dict):
            params = {}
        row = {"study": study, "sweeper": record.get("sweeper"), "number": record.get("number"), "log_id": log_id,
               "status": status, "state": state.upper(), "value": _number(record.get("value")),
               "best_so_far": None, "is_best": False, "metric": record.get("metric"), "reduce": record.get("reduce"),
               "direction": str(record.get("direction") or "minimize").lower(), "retry_of": record.get("retry_of"),
               **{f"params.{key}": value for key, value in params.items()}}
        first_run[study] = min(first_run.get(study, log_id), log_id)
        key = (study, row["number"])
        if key not in found or found[key]["log_id"] < log_id:
            found[key] = row
    order = {study: i for i, study in enumerate(sorted(first_run, key=lambda s: first_run[s]))}
    rows = sorted(found.values(), key=lambda r: (order[r["study"]], _sort_number(r["number"]), r["log_id"]))
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        maximize = row["direction"] == MAXIMIZE
        previous = best.get(row["study"])
        if row["state"] == COMPLETE and row["value"] is not None and _better(
                row["value"], previous["value"] if previous else None, maximize):
            best[row["study"]] = previous = row
        row["best_so_far"] = previous["value"] if previous else None
    for row in best.values():
        row["is_best"] = True
    return rows


def _sort_number(number: Any) -> float:
    return float(number) if isinstance(number, (int, float)) and not isinstance(number, bool) else math.inf


@dataclass
class Study:
    """One study's trials: how many in each state, and the best one so far."""

    name: str
    sweeper: str | None
    metric: str | None
    reduce: str | None
    direction: str
    counts: dict[str, int] = field(default_factory=dict)
    best: dict[str, Any] | None = None  #: the best trial's row (:func:`trial_rows`)

    @property
    def trials(self) -> int:
        return sum(self.counts.values())

    def row(self) -> dict[str, Any]:
        """The study as JSON (``mlxcore status --studies --json``)."""
        best = None
        if self.best is not None:
            best = {"number": self.best["number"], "log_id": self.best["log_id"], "value": self.best["value"],
                    "params": params_of(self.best)}
        return {"study": self.name, "sweeper": self.sweeper, "metric": self.metric, "reduce": self.reduce,
                "direction": self.direction, "trials": self.trials, "states": dict(self.counts), "best": best}

    def line(self) -> str:
        """``study main-3f2a9c01bd (optuna): 40 trials: 31 COMPLETE, 8 PRUNED, 1 FAIL, 0 running; best trial 17
        (run 23): train.loss.last=0.00123 (minimize) with optimizer.lr=0.0031, model.depth=3``."""
        shown = [f"{self.counts.get(s, 0)} {s}" for s in (COMPLETE, PRUNED, FAIL)]
        shown.append(f"{self.counts.get(RUNNING, 0)} running")
        if self.counts.get(UNRECORDED):
            shown.append(f"{self.counts[UNRECORDED]} ended, not recorded yet")
        shown += [f"{n} {s}" for s, n in sorted(self.counts.items()) if s not in (COMPLETE, PRUNED, FAIL, RUNNING,
                                                                                   UNRECORDED)]
        text = f"study {self.name}" + (f" ({self.sweeper})" if self.sweeper else "")
        text += f": {self.trials} trial{'s' if self.trials != 1 else ''}: {', '.join(shown)}; "
        if self.best is None:
            return text + "no COMPLETE trial with a value yet"
        metric = ".".join(p for p in (self.metric, self.reduce) if p) or "value"
        params = ", ".join(f"{k}={short(v)}" for k, v in params_of(self.best).items())
        return (text + f"best trial {self.best['number']} (run {self.best['log_id']}): {metric}="
                f"{short(self.best['value'])} ({self.direction})" + (f" with {params}" if params else ""))


def params_of(row: dict[str, Any]) -> dict[str, Any]:
    """The sampled values of a trial row, by config key."""
    return {k.removeprefix("params."): v for k, v in row.items() if k.startswith("params.")}


def short(value: Any) -> str:
    """A value as a status line shows it: floats to 6 significant digits."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def studies(rows: list[dict[str, Any]]) -> list[Study]:
    """The studies of ``rows`` (:func:`trial_rows`), in the rows' order."""
    found: dict[str, Study] = {}
    for row in rows:
        study = found.get(row["study"])
        if study is None:
            study = found[row["study"]] = Study(row["study"], row["sweeper"], row["metric"], row["reduce"],
                                                row["direction"])
        study.counts[row["state"]] = study.counts.get(row["state"], 0) + 1
        if row["is_best"]:
            study.best = row
    return list(found.values())


def read_trials(path: str | Path, study: str | None = None, ids: Iterable[int] | None = None
                ) -> list[dict[str, Any]]:
    """The rows of :func:`trial_rows` for the runs of the logs directory ``path`` (restricted to ``ids``), of
    ``study`` only when given.

    :raises QueryError: ``study`` is not a study of these runs (the valid ones are named).
    """
    from ..schedulers.observe import observe

    states = observe(Path(path).expanduser().absolute(), ids, statuses={"SUBMITTED", "RUNNING"})
    rows = trial_rows((s.log_id, s.status, s.info) for s in states)
    if study is not None:
        names = list(dict.fromkeys(r["study"] for r in rows))
        if study not in names:
            raise QueryError(f"no study {study!r} in {path}; studies: {', '.join(names) or 'none (no trial run)'}")
        rows = [r for r in rows if r["study"] == study]
    return rows


def trials(path: str | Path, study: str | None = None, result_format: str = "pandas") -> Any:
    """The trials of the logs directory ``path`` (of ``study`` only, when given): one row a trial with the
    columns :data:`COLUMNS` and ``params.<key>`` for each sampled key; ``"pandas"`` (a DataFrame) or
    ``"records"`` (a list of dicts)."""
    if result_format not in ("pandas", "records"):
        raise QueryError(f"unknown result_format {result_format!r}; valid: pandas, records")
    rows = read_trials(path, study)
    if result_format == "records":
        return rows
    import pandas as pd

    params = list(dict.fromkeys(k for r in rows for k in r if k.startswith("params.")))
    return pd.DataFrame(rows, columns=[*COLUMNS, *params])
