"""The report's curves: :meth:`Reader.curves` (per group and x, the mean over the group's runs with its std and
sem), downsampled to a budget of points, drawn with Bokeh (imported here, and only here).

One trace group per setting: a line (the mean) and a band (mean ± std or sem) that share one legend entry, so a
click on the legend hides both. On log axes a band edge at or below zero stops at the bottom of the axis (half
the lowest positive value drawn), as :mod:`mlxcore.reader.plot` does, and means at or below zero are not drawn.

Downsampling: a curve longer than its share of :data:`POINT_BUDGET` is cut into that many consecutive buckets of
equal length; each bucket is drawn at its mean x and mean of means, its band spanning the lowest lower edge and
the highest upper edge of the bucket (so the envelope of the spread is kept). Numbers travel as float32 arrays.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import QueryError
from ..reader.plot import group_label

POINT_BUDGET = 60_000  #: points over all curves
MIN_POINTS = 40  #: per curve, however many curves there are
MAX_CURVES = 200  #: more groups than this is a table, not a plot: the first ones are drawn and the page says so


def points_per_curve(curves: int) -> int:
    return max(MIN_POINTS, POINT_BUDGET // max(curves, 1))


def downsample(points: list[tuple[float, float, float, float]], limit: int) -> list[tuple[float, float, float, float]]:
    """``(x, mean, lower, upper)`` points reduced to at most ``limit`` buckets (see the module's docstring)."""
    if len(points) <= limit:
        return points
    out = []
    for b in range(limit):
        chunk = points[b * len(points) // limit:(b + 1) * len(points) // limit]
        xs = [p[0] for p in chunk]
        means = [p[1] for p in chunk if not math.isnan(p[1])]
        out.append((sum(xs) / len(xs), sum(means) / len(means) if means else math.nan,
                    min((p[2] for p in chunk), default=math.nan), max((p[3] for p in chunk), default=math.nan)))
    return out


def group_curves(rows: list[dict[str, Any]], groups: list[str], band: str | None
                 ) -> list[tuple[str, int, list[tuple[float, float, float, float]]]]:
    """``[(label, runs, [(x, mean, lower, upper)])]``, one per group, in the reader's order."""
    curves: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        curves.setdefault(tuple(row[g] for g in groups), []).append(row)
    out = []
    for key, found in curves.items():
        points = []
        for p in found:
            if p["x"] is None or p["mean"] is None:
                continue
            spread = p[band] if band is not None and p[band] is not None else 0.0
            points.append((float(p["x"]), float(p["mean"]), float(p["mean"]) - spread, float(p["mean"]) + spread))
        runs = max((p.get("n") or 0 for p in found), default=0)
        out.append((group_label(groups, key) if groups else "all runs", runs, points))
    return out


def figure(rows: list[dict[str, Any]], groups: list[str], metric: str, x: str | None, band: str | None,
           logy: bool, title: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The Bokeh figure, and what it shows (``curves``, ``labels``, ``drawn_points``, ``downsampled``, ...)."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.models.annotations.legends import Legend
    from bokeh.palettes import Category10_10, Category20_20
    from bokeh.plotting import figure as new_figure

    if band is not None and band not in ("std", "sem"):
        raise QueryError(f"unknown band {band!r}; valid: std, sem or none")
    curves = group_curves(rows, groups, band)
    omitted = max(0, len(curves) - MAX_CURVES)
    curves = curves[:MAX_CURVES]
    limit = points_per_curve(len(curves))
    longest = max((len(c[2]) for c in curves), default=0)
    curves = [(label, runs, downsample(points, limit)) for label, runs, points in curves]
    lowest = min((v for _, _, pts in curves for p in pts for v in (p[1], p[2]) if v > 0), default=None)
    floor = lowest / 2 if logy and lowest is not None else None
    counts = [runs for _, runs, _ in curves] or [0]
    runs_text = (f"{counts[0]} run" + ("s" if counts[0] != 1 else "") if min(counts) == max(counts)
                 else f"{min(counts)}-{max(counts)} runs")
    shown_title = title if title is not None else (
        f"{metric}: mean" + (f" ± {band}" if band else "") + f" over {runs_text} per curve")
    plot = new_figure(title=shown_title, x_axis_label=x or "row", y_axis_label=metric, height=440,
                      sizing_mode="stretch_width", y_axis_type="log" if logy else "linear",
                      tools="pan,wheel_zoom,box_zoom,reset,save", name="curves")
    palette = Category10_10 if len(curves) <= 10 else Category20_20
    legend_items = []
    lines: list[Any] = []
    import numpy as np

    for i, (label, runs, points) in enumerate(curves):
        color = palette[i % len(palette)]
        xs = np.array([p[0] for p in points], dtype=np.float32)
        mean = np.array([p[1] if not (logy and p[1] <= 0) else math.nan for p in points], dtype=np.float32)
        lower = np.array([p[2] if floor is None or p[2] > 0 else floor for p in points], dtype=np.float32)
        upper = np.array([p[3] for p in points], dtype=np.float32)
        source: dict[str, Any] = {"x": xs, "mean": mean}
        renderers: list[Any] = []
        if band is not None:
            source.update(lower=lower, upper=upper)
        data = ColumnDataSource(source)
        if band is not None:
            renderers.append(plot.varea(x="x", y1="lower", y2="upper", source=data, fill_color=color,
                                        fill_alpha=0.18, name=f"band:{i}"))
        line = plot.line(x="x", y="mean", source=data, line_color=color, line_width=2, name=f"curve:{i}: {label}")
        renderers.append(line)
        lines.append(line)
        if len(points) == 1:
            renderers.append(plot.scatter(x="x", y="mean", source=data, color=color, size=7, name=f"point:{i}"))
        legend_items.append((f"{label} (n={runs})", renderers))
    plot.add_tools(HoverTool(renderers=lines, tooltips=[("curve", "$name"), (x or "row", "@x"),
                                                        ("mean", "@mean{0.[0000]}")]))
    legend = Legend(items=legend_items, click_policy="hide", location="top_left", label_text_font_size="9pt")
    plot.add_layout(legend, "right")
    if floor is not None and band is not None:
        y_range: Any = plot.y_range  # a DataRange1d: the data's range, with the bottom fixed here
        y_range.start = floor
    info = {"curves": len(curves), "labels": [c[0] for c in curves], "omitted": omitted,
            "points_per_curve": limit, "downsampled": longest > limit, "longest": longest}
    return plot, info
