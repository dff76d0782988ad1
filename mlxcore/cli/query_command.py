"""``mlxcore query``: filter strings or read-only SQL over a logs directory, printed as a table, CSV or JSON.

The selected reader plugin answers (``mlxcore.Reader``, through the reader interface only); the output is
formatted from its ``rows`` result (no pandas import: the command answers in a fraction of a second on a warm
catalog). While a refresh reads many runs and stderr is a terminal, a progress bar (rich)
shows it; otherwise nothing is drawn.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..reader.base import Reader

#: a refresh that re-reads fewer runs than this draws no progress bar
PROGRESS_MIN_RUNS = 200


_LABELS = {"metadata": "reading run metadata", "metrics": "loading metric files", "rows": "loading metric rows"}


class RefreshProgress:
    """The ``progress`` callback of a refresh: a rich progress bar on stderr, started on the first big phase.

    Called from two threads (metadata and metric files are read at the same time), hence the lock; stdout is
    never redirected, so a result piped to a file stays clean while the bar draws on the terminal.
    """

    def __init__(self) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if total < PROGRESS_MIN_RUNS or not sys.stderr.isatty():
            return
        with self._lock:
            if self._progress is None:
                from rich.console import Console
                from rich.progress import Progress

                self._progress = Progress(console=Console(stderr=True), transient=True, redirect_stdout=False,
                                          redirect_stderr=False)
                self._progress.start()
            if phase not in self._tasks:
                label = _LABELS.get(phase, phase)
                self._tasks[phase] = self._progress.add_task(label, total=total)
            self._progress.update(self._tasks[phase], completed=done)

    def stop(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress, self._tasks = None, {}


def open_reader(logs: Path, catalog: Path | None, progress: RefreshProgress | None = None, **options: Any) -> Reader:
    """The selected reader of ``logs`` (``mlxcore.Reader``: the reader plugin named by the newest run's
    ``mlx.reader.name``), refreshed, with a progress bar when useful. The bar (``progress``) is stopped once the
    refresh is done; the reader keeps it for the rows its queries load later, and it starts again then."""
    from ..reader.base import Reader

    bar = progress or RefreshProgress()
    try:
        return Reader.open(logs, catalog=catalog, progress=bar, **{k: v for k, v in options.items() if v is not None})
    finally:
        bar.stop()


def default_columns(columns: list[str]) -> list[str]:
    """``log_id``, ``status``, the config keys and the last value of every metric: what a first look needs."""
    return [c for c in columns if c in ("log_id", "status") or c.startswith("config.") or c.endswith(".last")]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def format_table(names: list[str], rows: list[tuple]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(names))]
    lines = ["  ".join(n.rjust(w) if num else n.ljust(w) for n, w, num in zip(names, widths, numeric)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for row in cells:
        lines.append("  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip())
    return "\n".join(lines)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def write_result(names: list[str], rows: list[tuple], fmt: str) -> None:
    out = sys.stdout
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
    elif fmt == "json":
        records = [{n: _json_value(v) for n, v in zip(names, row)} for row in rows]
        out.write(json.dumps(records, default=str, allow_nan=False) + "\n")
    else:
        out.write(format_table(names, rows) + "\n")


@click.command("query")
@click.argument("logs", type=click.Path(file_okay=False, path_type=Path))
@click.argument("filter_string", metavar="[FILTER]", required=False, default="")
@click.option("--sql", default=None, help="A read-only SQL query (SELECT or WITH) over runs and the stream tables.")
@click.option("--columns", default=None,
              help="Comma-separated runs columns to show (default: log_id, status, config.*, *.last); '*' for all.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to keep the catalog (default: LOGS/.mlxcore/catalog.duckdb, or a user cache directory).")
@click.option("--timeout", type=float, default=None, metavar="SECONDS",
              help="Stop the query after this long (default 300).")
@click.option("--memory-limit", default=None, metavar="SIZE",
              help="Memory the query and its result may take, e.g. 2GB (default: half the RAM, at most 4GB).")
@click.option("--rebuild", is_flag=True,
              help="Read every run again (after files were edited by hand rather than through mlxcore).")
def query_command(logs: Path, filter_string: str, sql: str | None, columns: str | None, fmt: str,
                  catalog: Path | None, timeout: float | None, memory_limit: str | None, rebuild: bool) -> None:
    """Query the runs of LOGS with an MLXP filter string or with --sql.

    \b
    mlxcore query ./logs "config.optimizer.lr <= 1e-2 & info.status == 'COMPLETE'"
    mlxcore query ./logs "train.loss.last < 0.1" --columns config.optimizer.lr,train.loss.last --format csv
    mlxcore query ./logs --sql 'SELECT status, count(*) FROM runs GROUP BY ALL'
    """
    from ..errors import QueryError

    if sql is not None and (filter_string or columns):
        raise QueryError("give either a filter (with --columns) or --sql, not both")
    progress = RefreshProgress()
    reader = open_reader(logs, catalog, progress, timeout=timeout, memory_limit=memory_limit, rebuild=rebuild or None)
    try:
        if sql is not None:
            names, rows = reader.sql(sql, result_format="rows")
        else:
            chosen = None
            if columns == "*":
                chosen = reader.columns
            elif columns:
                chosen = [c.strip() for c in columns.split(",") if c.strip()]
            names, rows = reader.filter(filter_string, result_format="rows",
                                        columns=chosen or default_columns(reader.columns))
        problems = reader.problems
    finally:
        progress.stop()
        reader.close()
    write_result(names, rows, fmt)
    report_problems(logs, problems)


def report_problems(logs: Path, problems: list[dict[str, Any]]) -> None:
    """One line on stderr when runs could not all be read, with where to look."""
    if problems:
        runs = len({p["log_id"] for p in problems})
        click.echo(f"mlxcore: {len(problems)} problem(s) in {runs} run(s) of {logs}: the other runs are all here; "
                   f"see mlxcore query {logs} --sql 'SELECT * FROM problems'", err=True)
