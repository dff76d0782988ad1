"""Loading the rows the catalog left for later: a refresh takes each run's stream summaries from the logger
(:mod:`.logged`) and parses a stream's files only when a query first reads its rows; this is that parse, for
every file of the stream still pending, in one transaction under the writers' lock."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import QueryError
from . import logged, tables
from .connection import ALIAS
from .metrics import ingest_stream, read_batches, update_summary, warn_skipped

if TYPE_CHECKING:
    from .catalog import Catalog
    from .workers import Progress

log = logging.getLogger(__name__)


def load_rows(catalog: Catalog, names: Iterable[str], progress: Progress | None = None) -> bool:
    """Load the pending rows of the streams ``names`` (catalog names); True when rows were loaded (then
    ``catalog.shape`` is new)."""
    import duckdb

    wanted = sorted(set(names))
    if not wanted:
        return False
    # asked of the catalog, not of the shape read at the last refresh: another process may have rebuilt it
    with catalog.connection.attached() as con:
        pending = dict(con.execute("SELECT stream, count(*) FROM mlxcore_pending WHERE stream IN "
                                   "(SELECT unnest($names)) GROUP BY stream", {"names": wanted}).fetchall())
    waiting = [name for name in wanted if pending.get(name)]
    if not waiting:
        return False
    started = time.perf_counter()
    skipped_lines: dict[tuple[int, str], int] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(catalog.writer_lock())
        try:
            con = stack.enter_context(catalog.connection.attached(write=True))
        except (OSError, duckdb.Error) as exc:
            raise QueryError(f"cannot write the catalog {catalog.path}: {str(exc).splitlines()[0]}") from None
        try:
            con.execute("BEGIN TRANSACTION")
            reshaped = False
            total = sum(pending[name] for name in waiting)
            done = 0
            for stream in waiting:
                # as of now: another process may have loaded some
                files = logged.pending_files(con, stream, str(catalog.root))
                found: dict[int, list[str]] = {}
                skipped, changed = ingest_stream(con, stream, read_batches(stream, files), found)
                tables.add_problems(con, found)
                skipped_lines.update({(log_id, stream): n for log_id, n in skipped.items()})
                con.execute("DELETE FROM mlxcore_pending WHERE stream = ?", [stream])
                if changed:  # a file changed since its summary was read: the columns follow its rows
                    update_summary(con, stream, None)
                    reshaped = True
                done += len(files)
                if progress:
                    progress("rows", done, total)
            if reshaped:
                tables.update_runs_table(con, None)
                tables.create_views(con)
            catalog.shape = tables.save_shape(con)
            con.execute("COMMIT")
            con.execute(f"CHECKPOINT {ALIAS}")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
    warn_skipped(skipped_lines)
    log.debug("catalog %s: rows of %s loaded in %.3f s", catalog.path, ", ".join(waiting),
              time.perf_counter() - started)
    return True
