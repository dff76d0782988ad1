"""``mlxcore report``: one self-contained HTML file about the runs of a logs directory.

**Why Bokeh.** The page needs an interactive plot (zoom, pan, hover, a legend that hides a curve) that works
from a file copied to a laptop: no server, no CDN, no request. Bokeh's wheel ships BokehJS, and
``bokeh.embed.file_html`` with ``bokeh.resources.INLINE`` writes it into the page, including only the bundles
the document uses (about 1.3 MB for a plot, against about 4.6 MB for plotly.js); its numpy arrays travel as
base64 binary (float32 here), which keeps 1,000 runs x 1,000 rows well under 5 MB. Bokeh is maintained
(NumFOCUS), BSD-licensed and pure Python to install. The runs table and its filter box are mlxcore's own
(``report.js``: a plain HTML table, so every row is in the page, sortable and usable from the keyboard, and an
evaluator of MLXP's filter language with the reader's semantics).

Everything is read through the public reader (``filter``, ``curves``, ``sql``); the page is written to a
temporary file beside the output and renamed onto it, so a failure never leaves half a report.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import QueryError


@dataclass
class Report:
    """A built report: the page and what it holds."""

    html: str
    runs: int
    curves: int
    failures: int


def build_report(reader: Any, metric: str, x: str | None = None, group_by: list[str] | tuple[str, ...] = (),
                 filter: str = "", band: str | None = "std", logy: bool = False, title: str | None = None
                 ) -> Report:
    """The report of the runs ``filter`` selects, with the curves of ``metric`` (see :meth:`Reader.curves`).

    :raises QueryError: an unknown metric, ``x`` or group column, a bad filter, or no run selected.
    """
    from .curves import figure
    from .data import read_runs
    from .page import render

    groups = [g.strip() for item in group_by for g in item.split(",") if g.strip()]
    groups = [reader.column(g, "--group-by") for g in groups]
    data = read_runs(reader, filter, metric)
    rows = reader.curves(metric, x, groups, filter, result_format="records")
    plot, info = figure(rows, groups, metric, x, band, logy, title) if rows else (None, {"curves": 0})
    note = curves_note(info, groups, band, metric)
    shown = title or f"mlxcore report: {reader.path.name}"
    subtitle = (f"{data.count} run(s) of {reader.path}" + (f" matching {filter!r}" if filter.strip() else "")
                + f"; metric {metric} against {x or 'the row index'}")
    html = render(plot, data, shown, subtitle, note)
    return Report(html, data.count, info["curves"], data.failures_total)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory, renamed onto it at the end.

    :raises QueryError: the directory cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise QueryError(f"cannot write the report to {str(path)!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise QueryError(f"cannot write the report to {str(path)!r}: {exc.strerror or exc}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def curves_note(info: dict[str, Any], groups: list[str], band: str | None, metric: str) -> str:
    """The line above the curves: what each curve is, and what was downsampled or left out (report and ui)."""
    if not info["curves"]:
        return f"No run selected logged numeric values of {metric}."
    note = (f"{info['curves']} curve(s), one per setting of {', '.join(groups)}" if groups
            else "one curve over all the runs") + (
        f"; mean ± {band} over the runs (seeds) of each" if band else "; mean over the runs (seeds) of each")
    note += "; click a legend entry to hide its curve."
    if info.get("downsampled"):
        note += (f" Curves longer than {info['points_per_curve']} points are downsampled (each point averages "
                 f"consecutive x; the band spans their extremes); the longest has {info['longest']}.")
    if info.get("omitted"):
        note += f" {info['omitted']} more group(s) are not drawn."
    return note
