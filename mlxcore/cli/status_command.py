"""``mlxcore status``: one table of the runs of a logs directory, their true state, and what tells them apart.

Each run's state comes from :func:`mlxcore.cli.jobs_command.collect` (the run's own info reconciled with ONE
batched status call per scheduler). The table adds what a user scans a sweep for: the config keys that vary
across the shown runs (keys equal everywhere say nothing), the last value of chosen metrics, and the duration
(so far, for a running run). Config and metric values come from the reader's catalog (incremental, so a warm
``status`` costs tens of milliseconds); when the reader cannot answer, the table still shows the states.

``--watch`` redraws until no shown run is waiting or running (live on a terminal; otherwise a new table
whenever a state changes).

When the shown runs include search trials (runs whose info holds a ``trial`` record), one line per study
follows the table: its trials by state and the best trial so far (:mod:`mlxcore.reader.trials`, from the info
already read for the table; ``--studies`` shows only these lines, ``--studies --json`` one object per study).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import store
from ..errors import MlxcoreError
from .jobs_command import ACTIVE, RunState, collect, select, selected_ids

if TYPE_CHECKING:
    from ..reader.trials import Study

log = logging.getLogger(__name__)

SUMMARIES = ("last", "min", "max", "mean", "count")


def split_selection(tokens: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """Positional words: log ids (``12``, ``12-15``, ``12,14``) and, for the rest, one filter string."""
    ids = tuple(t for t in tokens if t.replace(",", "").replace("-", "").isdigit())
    rest = " ".join(t for t in tokens if t not in ids)
    return ids, rest


def metric_column(spec: str) -> str:
    """``train.loss`` -> ``train.loss.last``; ``train.loss.min`` stays."""
    return spec if spec.rsplit(".", 1)[-1] in SUMMARIES and spec.count(".") >= 2 else f"{spec}.last"


def duration(info: dict[str, Any], status: str, now: float) -> float | None:
    if isinstance(info.get("duration_s"), (int, float)) and status not in ACTIVE:
        return float(info["duration_s"])
    start = info.get("start_timestamp")
    if status == store.RUNNING and isinstance(start, (int, float)):
        return now - start
    return None


def human(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def details(logs: Path, log_ids: list[int], metrics: list[str]
            ) -> tuple[list[str], dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """The varying config columns plus the metric columns, their values by log id (from the selected reader),
    and what the reader could not read (:attr:`mlxcore.reader.base.Reader.problems`)."""
    from .query_command import open_reader

    reader = open_reader(logs, None)
    try:
        wanted_metrics = [reader.column(metric_column(m), "--metric") for m in metrics]
        config = [c for c in reader.columns if c.startswith("config.")]
        problems = reader.problems
        if not log_ids:
            return [], {}, problems
        names, rows = reader.filter("", result_format="rows", columns=["log_id", *config, *wanted_metrics])
    finally:
        reader.close()
    wanted = set(log_ids)
    values = {int(row[0]): dict(zip(names[1:], row[1:])) for row in rows if int(row[0]) in wanted}
    varying = [c for c in config if len({json.dumps(v.get(c), default=str) for v in values.values()}) > 1]
    return [*varying, *wanted_metrics], values, problems


def table(states: list[RunState], columns: list[str], values: dict[int, dict[str, Any]]) -> str:
    from .query_command import format_table

    now = time.time()
    names = ["id", "status", *(c.removeprefix("config.") for c in columns), "duration", "job id", "detail"]
    rows = []
    for s in states:
        extra = values.get(s.log_id, {})
        detail = (s.detail or "").splitlines()[0][:60] if s.detail else ""
        if s.exit_code not in (None, 0):
            detail = f"exit {s.exit_code}" + (f": {detail}" if detail else "")
        rows.append((s.log_id, s.status, *(extra.get(c) for c in columns), human(duration(s.info, s.status, now)),
                     s.job_id or "-", detail))
    return format_table(names, rows)


def summary(states: list[RunState]) -> str:
    counts: dict[str, int] = {}
    for s in states:
        counts[s.status] = counts.get(s.status, 0) + 1
    return f"{len(states)} run(s): " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def study_summaries(states: list[RunState]) -> list[Study]:
    """The studies of the trial runs among ``states`` (:class:`mlxcore.reader.trials.Study`)."""
    from ..reader.trials import studies, trial_rows

    return studies(trial_rows((s.log_id, s.status, s.info) for s in states))


def study_lines(states: list[RunState]) -> list[str]:
    return [study.line() for study in study_summaries(states)]


def run_row(state: RunState) -> dict[str, Any]:
    """A run as ``--json`` shows it: its state, and its ``trial`` record (``None`` for an ordinary run)."""
    trial = state.info.get("trial")
    return {**state.row(), "trial": trial if isinstance(trial, dict) else None}


def snapshot(logs: Path, ids: set[int] | None, statuses: tuple[str, ...], metrics: list[str]
             ) -> tuple[list[RunState], str]:
    states = select(collect(logs, ids), statuses)
    if not states:
        return states, "no runs"
    problems: list[dict[str, Any]] = []
    try:
        columns, values, problems = details(logs, [s.log_id for s in states], metrics)
    except MlxcoreError as exc:
        if metrics:  # the user asked for these columns: a bad metric name is their error to see
            raise
        log.warning("config values not shown: %s", exc)
        columns, values = [], {}
    text = f"{table(states, columns, values)}\n{summary(states)}"
    lines = study_lines(states)
    if lines:
        text += "\n" + "\n".join(lines)
    if problems:
        runs = len({p["log_id"] for p in problems})
        text += (f"\n{len(problems)} problem(s) in {runs} run(s) could not be read; the other runs are all here: "
                 f"see mlxcore query {logs} --sql 'SELECT * FROM problems'")
    return states, text


@click.command("status")
@click.argument("logs", type=click.Path(file_okay=False, path_type=Path))
@click.argument("selection", nargs=-1)
@click.option("--status", "statuses", multiple=True, metavar="STATE", help="Only runs in this state (repeatable).")
@click.option("--filter", "filter_text", metavar="TEXT",
              help="Only runs this filter selects, e.g. \"config.lr <= 0.01\".")
@click.option("--metric", "metrics", multiple=True, metavar="STREAM.KEY",
              help="Show this metric's last value (train.loss) or another summary (train.loss.min); repeatable.")
@click.option("--watch", is_flag=True, help="Refresh until no shown run is waiting or running.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between refreshes with --watch.")
@click.option("--summary", is_flag=True,
              help="Per sweep and status: runs, elapsed time, CPU- and GPU-hours (accounting first).")
@click.option("--studies", is_flag=True,
              help="Per search study: its trials by state and the best trial so far (only these lines).")
@click.option("--json", "as_json", is_flag=True,
              help="Output JSON, one object per run (per group with --summary, per study with --studies).")
def status_command(logs: Path, selection: tuple[str, ...], statuses: tuple[str, ...], filter_text: str | None,
                   metrics: tuple[str, ...], watch: bool, interval: float, summary: bool, studies: bool,
                   as_json: bool) -> None:
    """Show the true state of the runs of LOGS: all, some ids (12 12-15 12,14) and/or a filter string
    ("config.optimizer.lr <= 0.01").

    Each scheduler is asked once for all of its jobs; when it has forgotten a job, the run's info decides. The
    table shows the config keys that vary across the shown runs, --metric values and durations, and, when
    some are search trials, one line per study with the best trial so far.
    """
    logs = logs.absolute()
    ids_words, positional_filter = split_selection(selection)
    text = " & ".join(f"({t})" for t in (positional_filter, filter_text) if t)
    ids = selected_ids(logs, ids_words, text or None)
    if summary:
        from .summary import summarize, summary_table

        states = select(collect(logs, ids), statuses)
        click.echo(json.dumps([g.row() for g in summarize(states)], indent=1) if as_json else summary_table(states))
        return
    if studies:
        found = study_summaries(select(collect(logs, ids), statuses))
        click.echo(json.dumps([study.row() for study in found], indent=1, default=str) if as_json
                   else "\n".join(study.line() for study in found) or "no search trial")
        return
    if as_json:
        click.echo(json.dumps([run_row(s) for s in select(collect(logs, ids), statuses)], indent=1, default=str))
        return
    if not watch:
        click.echo(snapshot(logs, ids, statuses, list(metrics))[1])
        return
    _watch(lambda: snapshot(logs, ids, statuses, list(metrics)), interval)


#: ``--watch`` waits at most this long between refreshes once nothing changes
WATCH_MAX_INTERVAL = 30.0


def _watch(render: Any, interval: float, sleep: Any = time.sleep) -> None:
    """Redraw ``render()`` until none of its runs is active; Ctrl-C ends the watch (not the runs). The wait
    between refreshes grows by half while nothing changes (up to :data:`WATCH_MAX_INTERVAL`) and is back to
    ``interval`` after a change: a sweep watched for hours asks its scheduler a few times a minute, not 1,800
    times an hour."""
    waits = _Backoff(interval)
    try:
        if sys.stdout.isatty():
            from rich.live import Live
            from rich.text import Text

            with Live(Text(""), auto_refresh=False) as live:
                while True:
                    states, text = render()
                    live.update(Text(text), refresh=True)
                    if not any(s.status in ACTIVE for s in states):
                        return
                    sleep(waits.next([(s.log_id, s.status) for s in states]))
        shown = None
        while True:
            states, text = render()
            key = [(s.log_id, s.status) for s in states]
            if key != shown:
                click.echo(text + "\n")
                shown = key
            if not any(s.status in ACTIVE for s in states):
                return
            sleep(waits.next(key))
    except KeyboardInterrupt:
        pass


class _Backoff:
    """The next wait: ``base`` after a change, half as long again each time nothing changed, at most the cap."""

    def __init__(self, base: float) -> None:
        self.base = self.current = base
        self.last: Any = None

    def next(self, key: Any) -> float:
        if key != self.last:
            self.last, self.current = key, self.base
        else:
            self.current = min(self.current * 1.5, max(self.base, WATCH_MAX_INTERVAL))
        return self.current
