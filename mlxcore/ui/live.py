"""What the live page shows, kept up to date: one reader of the logs directory (its catalog outside it), refreshed
before a request is answered (at most once per :data:`REFRESH_EVERY` seconds, whoever asks), and the report's
views built again from it when the runs changed.

The views are the report's own pieces: :func:`mlxcore.report.data.read_runs` (the runs table's data, totals,
failures, rerun commands), :func:`mlxcore.report.curves.figure` (the Bokeh plot, sent as
:func:`bokeh.embed.json_item`) and the sections of :mod:`mlxcore.report.page`. ``version`` grows by one each time
what they show changes, so that a page polling ``/api/runs?since=N`` gets the new views only when there are some.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any

from ..errors import QueryError

log = logging.getLogger(__name__)

#: seconds between two refreshes of the catalog: a page polls every 2 s, several pages share a refresh
REFRESH_EVERY = 1.0
#: rows of a SQL result sent to the page (the count says how many there were)
SQL_MAX_ROWS = 1000
PLOT_SLOT = '<div id="mlx-plot-slot"></div>'


@dataclass
class Options:
    """The command's choices: the runs, the metric and how its curves are drawn (as ``mlxcore report``)."""

    metric: str | None = None
    x: str | None = None
    group_by: tuple[str, ...] = ()
    filter: str = ""
    band: str | None = "std"
    logy: bool = False
    title: str | None = None


@dataclass
class View:
    """The views as of one version: the sections' HTML, the runs for report.js, the plot's JSON item."""

    version: int
    html: str
    data: str | None = None  #: report.js's data (:func:`mlxcore.report.page.data_json`), None: no run
    plot: Any = None  #: a Bokeh json_item, or None
    runs: int = 0
    stamp: float = field(default_factory=time.time)

    def payload(self) -> dict[str, Any]:
        return {"version": self.version, "html": self.html, "data": self.data, "plot": self.plot, "runs": self.runs}


class Live:
    """The reader of one logs directory and the views built from it; thread-safe (one request at a time reads)."""

    def __init__(self, reader: Any, options: Options) -> None:
        self.reader = reader
        self.options = options
        self.lock = threading.Lock()
        self._checked = 0.0
        self._every = REFRESH_EVERY
        self._digest = ""
        self.view = View(0, "")
        with self.lock:
            self._rebuild()

    def current(self) -> View:
        """The views, after a refresh of the catalog when the last one is older than :data:`REFRESH_EVERY` (or
        than twice the time the last views took to build, on big logs). A refresh that fails (the catalog is
        busy) leaves the views as they were; the next poll tries again."""
        with self.lock:
            if time.monotonic() - self._checked >= self._every:
                started = time.monotonic()
                try:
                    stats = self.reader.refresh()
                    if stats.changed or stats.removed or stats.status_changed or stats.rebuilt:
                        self._rebuild()
                except QueryError as exc:
                    log.warning("could not refresh the views: %s", exc)
                self._checked = time.monotonic()
                self._every = max(REFRESH_EVERY, 2 * (self._checked - started))
            return self.view

    def sql(self, query: str) -> dict[str, Any]:
        """The result of a read-only query (through :meth:`Reader.sql`: its guard, timeout and memory limit), or
        ``{"error": one line}``."""
        with self.lock:
            try:
                names, rows = self.reader.sql(query, result_format="rows")
            except QueryError as exc:
                return {"error": str(exc).splitlines()[0] if str(exc) else "refused"}
        shown = [[_cell(v) for v in row] for row in rows[:SQL_MAX_ROWS]]
        return {"columns": list(names), "rows": shown, "count": len(rows),
                "note": "" if len(rows) <= SQL_MAX_ROWS else f"the first {SQL_MAX_ROWS} of {len(rows)} rows shown"}

    # -- building the views ----------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        html, data, rows, plot_source = self._build()
        digest = hashlib.sha1(json.dumps([html, data, rows], default=str).encode()).hexdigest()
        if digest == self._digest:
            return
        self._digest = digest
        plot = None
        if plot_source is not None:
            from bokeh.embed import json_item

            plot = json_item(plot_source)
        runs = json.loads(data)["count"] if data else 0
        self.view = View(self.view.version + 1, html, data, plot, runs)

    def _build(self) -> tuple[str, str | None, Any, Any]:
        """``(sections html, report.js data, the curves' rows, the Bokeh plot)``; a problem (no run yet, an
        unknown metric) is shown in the page instead of the section it concerns."""
        from ..report import curves_note
        from ..report.curves import figure
        from ..report.data import read_runs
        from ..report.page import SECTIONS, data_json, failures_html, totals_html

        o, reader = self.options, self.reader
        title = escape(o.title or f"mlxcore ui: {reader.path.name}")
        metric = o.metric or default_metric(reader)
        try:
            data = read_runs(reader, o.filter, metric or "")
        except QueryError as exc:
            message = escape(f"{exc}; the page shows the runs as they appear")
            return (f'<main><header><h1>{title}</h1><p class="meta" id="live-problem">{message}</p></header>'
                    "</main>"), None, None, None
        rows: Any = None
        plot = None
        try:
            groups = [reader.column(g, "--group-by") for item in o.group_by for g in item.split(",") if g.strip()]
            if metric is None:
                raise QueryError("no run has logged a metric yet")
            rows = reader.curves(metric, o.x, groups, o.filter, result_format="records")
            plot, info = figure(rows, groups, metric, o.x, o.band, o.logy, None) if rows else (None, {"curves": 0})
            note = curves_note(info, groups, o.band, metric)
        except QueryError as exc:
            note = str(exc)
        subtitle = (f"{data.count} run(s) of {reader.path}" + (f" matching {o.filter!r}" if o.filter.strip() else "")
                    + (f"; metric {metric} against {o.x or 'the row index'}" if metric else "")
                    + "; live: new runs and rows appear as they are written")
        headers = "".join(f'<th scope="col"><button type="button">{escape(n)}</button></th>' for n in data.shown)
        html = SECTIONS.format(title=title, subtitle=escape(subtitle), totals=totals_html(data), headers=headers,
                               curves_note=escape(note), failures=failures_html(data), plot=PLOT_SLOT)
        return html, data_json(data), rows, plot


def default_metric(reader: Any) -> str | None:
    """The metric drawn when none is chosen: the first stream's ``loss``-like key, else its first key."""
    for stream, keys in sorted(reader.streams.items()):
        chosen = [k for k in keys if "loss" in k.lower()] or [k for k in keys if k not in ("epoch", "step")] or keys
        if chosen:
            return f"{stream}.{chosen[0]}"
    return None


def _cell(value: Any) -> Any:
    """A SQL value as JSON carries it (NaN and infinities as text, other objects as their text)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, int) or abs(value) <= 2**53 else str(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else repr(value)
    return str(value)
