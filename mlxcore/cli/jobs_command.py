"""``mlxcore status`` and ``mlxcore cancel``: the runs of a logs directory, reconciled with their schedulers.

Runs are grouped by the scheduler that took them (``metadata/scheduler.yaml``, key ``name``) and each
scheduler is asked ONE batched status question for all of its job ids. The state shown is
:func:`mlxcore.schedulers.submission.reconcile` of the run's own info, the cancel marker and that answer; a
job the scheduler has forgotten is judged by the run's info alone. Runs that never went through a scheduler
show their info's status.

Runs are selected by log id (``12``, ``12-15``, ``12,14``), by status (``--status RUNNING``, the reconciled
status) and/or by a filter string (``--filter "config.lr <= 1e-2"``, answered by ``mlxcore.Reader``); several
criteria select the runs that meet all of them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from .. import store
from ..errors import ConfigError, SchedulerError
from ..schedulers.observe import RunState, observe

log = logging.getLogger(__name__)

ACTIVE = store.ACTIVE_STATUSES


def parse_ids(tokens: tuple[str, ...]) -> set[int] | None:
    """``("12", "14-16", "20,21")`` -> ``{12, 14, 15, 16, 20, 21}``; ``None`` when no id was given."""
    if not tokens:
        return None
    ids: set[int] = set()
    for token in tokens:
        for part in filter(None, token.split(",")):
            first, sep, last = part.partition("-")
            try:
                if sep:
                    low, high = int(first), int(last)
                    if low > high:
                        raise ValueError
                    ids.update(range(low, high + 1))
                else:
                    ids.add(int(part))
            except ValueError:
                raise ConfigError(f"bad log id {part!r}: give ids like 12, 12-15 or 12,14") from None
    return ids


def filter_ids(logs: Path, text: str) -> set[int]:
    """The log ids of ``logs`` that the reader's filter string ``text`` selects."""
    from .query_command import open_reader

    reader = open_reader(logs, None)
    try:
        return {int(row["log_id"]) for row in reader.filter(text, result_format="records", columns=["log_id"])}
    finally:
        reader.close()


def selected_ids(logs: Path, ids: tuple[str, ...], filter_text: str | None) -> set[int] | None:
    """The ids given on the command line, intersected with those the filter selects; ``None``: all runs."""
    chosen = parse_ids(ids)
    if filter_text:
        matched = filter_ids(logs, filter_text)
        chosen = matched if chosen is None else chosen & matched
    return chosen


def collect(logs: Path, ids: set[int] | None = None) -> list[RunState]:
    """The runs of ``logs`` (restricted to ``ids``), each reconciled with its scheduler's live answer."""
    return observe(logs, ids)


def select(states: list[RunState], statuses: tuple[str, ...]) -> list[RunState]:
    if not statuses:
        return states
    wanted = {s.upper() for s in statuses}
    return [s for s in states if s.status in wanted]


@click.command("cancel")
@click.argument("logs", type=click.Path(file_okay=False, path_type=Path))
@click.argument("ids", nargs=-1)
@click.option("--status", "statuses", multiple=True, metavar="STATE",
              help="Cancel the runs in this state (repeatable), e.g. --status PENDING.")
@click.option("--filter", "filter_text", metavar="TEXT",
              help="Cancel the runs this reader filter selects, e.g. \"config.optimizer.lr > 0.1\".")
@click.option("--all", "cancel_all", is_flag=True, help="Cancel every active run of LOGS.")
def cancel_command(logs: Path, ids: tuple[str, ...], statuses: tuple[str, ...], filter_text: str | None,
                   cancel_all: bool) -> None:
    """Cancel runs of LOGS: by id (12 12-15 12,14), by --status, by --filter, or --all active runs.

    The runs are marked (they end CANCELLED, not INTERRUPTED) and each scheduler gets one cancel call.
    """
    from ..plugins import get_scheduler_class
    from ..schedulers.submission import cancel_runs

    if not ids and not statuses and not filter_text and not cancel_all:
        raise ConfigError("say which runs to cancel: log ids (12 12-15), --status STATE, --filter TEXT, or --all")
    logs = logs.absolute()
    states = select(collect(logs, selected_ids(logs, ids, filter_text)), statuses)
    targets = [s for s in states if s.status in ACTIVE]
    for s in states:
        if s not in targets:
            click.echo(f"run {s.log_id}: {s.status}, nothing to cancel")
    by_scheduler: dict[str, list[RunState]] = {}
    for s in targets:
        if s.scheduler is None:
            click.echo(f"run {s.log_id}: {s.status} but not submitted to a scheduler; not cancelled")
            continue
        by_scheduler.setdefault(s.scheduler, []).append(s)
    failed = False
    for name, group in by_scheduler.items():
        try:
            job_ids = cancel_runs(get_scheduler_class(name)(), [s.run_dir for s in group])
        except SchedulerError as exc:
            click.echo(f"mlxcore: error: cancelling {len(group)} run(s) on {name}: {exc}", err=True)
            failed = True
            continue
        ids_text = ", ".join(str(s.log_id) for s in group)
        click.echo(f"cancelled {len(group)} run(s) on {name} ({ids_text}): job ids {', '.join(job_ids)}")
    if failed:
        raise click.exceptions.Exit(1)
