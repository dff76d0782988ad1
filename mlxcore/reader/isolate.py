"""When DuckDB refuses what a refresh hands it: find the runs it refuses and leave them out, keep the others.

A refresh loads every changed run in one transaction (:meth:`mlxcore.reader.catalog.Catalog._apply`). An input
that no check foresaw and that makes DuckDB raise would otherwise fail the refresh for every run of the
directory, at every refresh. Instead the refresh is made again in parts, each its own transaction: first the
removed and dead runs, then the changed runs, halved until each refused run stands alone. A refused run is left
out of the catalog, listed in ``problems`` with DuckDB's message, and not tried again until its metadata
changes; every other run is loaded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import tables
from .metrics import delete_runs

if TYPE_CHECKING:
    from .catalog import Catalog, _Plan
    from .workers import Progress

log = logging.getLogger(__name__)


def apply_in_parts(catalog: Catalog, plan: _Plan, scan_start: int, progress: Progress | None,
                   found: dict[int, int | None], error: BaseException) -> dict[str, Any]:
    """Apply ``plan`` as described in the module docstring; returns the catalog's shape after it."""
    import duckdb

    from .catalog import RefreshStats

    stats = plan.stats
    if _is_io(error) or not stats.changed:
        raise error
    log.warning("the catalog %s could not take %d changed run(s) at once (%s); loading them in parts to find "
                "the run(s) it refuses", catalog.path, len(stats.changed), _first_line(error))
    first = RefreshStats(runs=stats.runs, removed=stats.removed, rebuilt=stats.rebuilt)
    catalog.shape = catalog._apply(plan.on_disk, {}, first, plan.dead, scan_start, progress, found)
    refused: dict[int, str] = {}

    def attempt(ids: list[int]) -> None:
        part = RefreshStats(runs=stats.runs, changed=ids)
        try:
            catalog.shape = catalog._apply(plan.on_disk, {i: plan.stamps[i] for i in ids if i in plan.stamps},
                                           part, {}, scan_start, progress, found)
        except duckdb.Error as exc:
            if _is_io(exc):  # the catalog's disk or file, not a run's: nothing to isolate
                raise
            if len(ids) == 1:
                refused[ids[0]] = _first_line(exc)
                return
            middle = len(ids) // 2
            attempt(ids[:middle])
            attempt(ids[middle:])
            return
        stats.skipped_lines.update(part.skipped_lines)
        for log_id, problems in part.problems.items():
            stats.problems.setdefault(log_id, []).extend(problems)

    if stats.changed:
        attempt(list(stats.changed))
    if refused:
        racy_after = scan_start - catalog.racy_ns  # a stamp this young is not trusted: tried again next time
        leave_out(catalog, refused, {i: s if s is not None and s < racy_after else None
                                     for i, s in found.items() if i in refused})
    return catalog.shape or {}


def leave_out(catalog: Catalog, refused: dict[int, str], stamps: dict[int, int | None]) -> None:
    """Record ``refused`` (``{log_id: DuckDB's message}``) as runs left out: no rows, a problem each, and the
    stamp of their metadata so that they are tried again only once it changes. The caller holds the writers'
    lock."""
    import duckdb

    ids = sorted(refused)
    for log_id in ids:
        log.warning("run %s is left out of the catalog: DuckDB refuses its files (%s); see the problems table",
                    log_id, refused[log_id])
    with catalog.connection.attached(write=True) as con:
        try:
            con.execute("BEGIN TRANSACTION")
            delete_runs(con, ids)
            tables.leave_out(con, {i: f"left out: DuckDB refuses its files: {refused[i]}" for i in ids}, stamps)
            tables.update_runs_table(con, ids)
            catalog.shape = tables.save_shape(con)
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise


def _is_io(error: BaseException) -> bool:
    import duckdb

    return isinstance(error, (duckdb.IOException, duckdb.InterruptException))


def _first_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]

