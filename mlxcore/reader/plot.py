"""Drawing the curves of :meth:`DuckDBReader.curves` with matplotlib (imported here, and only here).

The figure is a :class:`matplotlib.figure.Figure` built without pyplot: no global figure registry, no GUI
backend chosen behind the caller's back; ``fig.savefig`` renders it with Agg (PNG), SVG or PDF from the file
name. One line per group (the mean over the group's runs) and one band (``fill_between``) around it.
"""

from __future__ import annotations

from typing import Any

from ..errors import QueryError

BANDS = ("std", "sem")


def group_label(groups: list[str], values: tuple) -> str:
    """``optimizer.lr=0.01, seed=None``: the group's keys and values (``config.`` is implied, as in overrides)."""
    return ", ".join(f"{g.removeprefix('config.')}={v}" for g, v in zip(groups, values))


def _edges(point: dict[str, Any], band: str | None) -> list[float]:
    """The band's lower and upper edge at one point (a single run has no spread)."""
    spread = (point[band] if band is not None and point[band] is not None else 0.0)
    return [point["mean"] - spread, point["mean"] + spread]


def draw_curves(rows: list[dict[str, Any]], groups: list[str], metric: str, x: str | None, band: str | None,
                ax: Any = None, title: str | None = None, logy: bool = False,
                figsize: tuple[float, float] = (6.4, 4.0), dpi: int = 100) -> Any:
    """Draw ``rows`` (``groups``, ``x``, ``mean``, ``std``, ``sem``, ``n``) and return the figure."""
    if band is not None and band not in BANDS:
        raise QueryError(f"unknown band {band!r}; valid: {', '.join(BANDS)} or None")
    if not rows:
        raise QueryError(f"nothing to plot: no run selected has values of {metric!r}")
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        ax = fig.add_subplot()
    curves: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:  # already ordered by group, then x
        curves.setdefault(tuple(row[g] for g in groups), []).append(row)
    # on log axes a band edge at or below zero would run off the plot (to 1e-300): it stops at the bottom of the
    # axis, half the lowest positive value drawn
    lowest = min((v for p in rows for v in [_edges(p, band)[0], p["mean"]] if v is not None and v > 0), default=None)
    floor = lowest / 2 if logy and lowest is not None else None
    counts = []
    for key, points in curves.items():
        xs = [p["x"] for p in points]
        mean = [p["mean"] for p in points]
        runs = max((p.get("n") or 0 for p in points), default=0)
        counts.append(runs)
        label = (group_label(groups, key) if groups else metric) + f" (n={runs})"
        (line,) = ax.plot(xs, mean, label=label, linewidth=1.5, marker="o" if len(xs) == 1 else None)
        if band is not None:
            lower = [_edges(p, band)[0] for p in points]
            if floor is not None:
                lower = [v if v > 0 else floor for v in lower]
            ax.fill_between(xs, lower, [_edges(p, band)[1] for p in points], color=line.get_color(), alpha=0.2,
                            linewidth=0)
    ax.set_xlabel(x or "row")
    ax.set_ylabel(metric)
    if logy:
        ax.set_yscale("log")
        if floor is not None and band is not None:
            ax.set_ylim(bottom=floor)
    runs_text = (f"{counts[0]} run" + ("s" if counts[0] != 1 else "") if min(counts) == max(counts)
                 else f"{min(counts)}-{max(counts)} runs")
    ax.set_title(title if title is not None else
                 f"{metric}: mean" + (f" ± {band}" if band else "") + f" over {runs_text} per curve")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax.figure
