"""Drawing the curves of :meth:`DuckDBReader.curves` with matplotlib (imported here, and only here).

The figure is a :class:`matplotlib.figure.Figure` built without pyplot: no global figure registry, no GUI
backend chosen behind the caller's back; ``fig.savefig`` renders it with Agg (PNG), SVG or PDF from the file
name. One line per group (the mean over the group's runs) and one band (``fill_between``) around it.

:func:`draw_trials` draws a search's trials (:mod:`mlxcore.reader.trials`): one axes per study, each COMPLETE
trial's value against its number, the best value so far as a step line, and PRUNED and FAIL trials as marks
along the bottom of the axes (a value a pruned trial logged before it was stopped is not a result: drawn, it
would set the scale).
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


def draw_trials(rows: list[dict[str, Any]], ax: Any = None, title: str | None = None, logy: bool = False,
                figsize: tuple[float, float] = (6.4, 4.0), dpi: int = 100) -> Any:
    """Draw the trials ``rows`` (:func:`mlxcore.reader.trials.trial_rows`), one axes per study stacked in one
    figure (``figsize`` is each axes' share), and return the figure. ``ax``: draw one study into it.

    The best-so-far line is :func:`~mlxcore.reader.trials.trial_rows`' ``best_so_far`` at every trial from the
    first COMPLETE one on, drawn as steps (it changes at a trial that did better).
    """
    from .trials import COMPLETE, FAIL, PRUNED

    names = list(dict.fromkeys(r["study"] for r in rows))
    if not names:
        raise QueryError("nothing to plot: no trial run (a run made by a search sweeper) was selected")
    if ax is not None and len(names) > 1:
        raise QueryError(f"{len(names)} studies ({', '.join(names)}) cannot share one axes: choose one study")
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(figsize[0], figsize[1] * len(names)), dpi=dpi, layout="constrained")
        axes = list(fig.subplots(len(names), 1, squeeze=False)[:, 0])
    else:
        axes = [ax]
    for name, axis in zip(names, axes):
        study = [r for r in rows if r["study"] == name]
        first = study[0]
        maximize = first["direction"] == "maximize"
        metric = ".".join(p for p in (first["metric"], first["reduce"]) if p) or "value"
        done = [r for r in study if r["state"] == COMPLETE and r["value"] is not None]
        axis.plot([r["number"] for r in done], [r["value"] for r in done], "o", color="tab:blue", markersize=4,
                  label=f"COMPLETE trial ({len(done)})", gid="complete")
        # PRUNED and FAIL trials along the bottom: their values (if any) are not a result and would set the scale
        for state, marker, color in ((PRUNED, "x", "0.45"), (FAIL, "v", "tab:red")):
            ended = [r["number"] for r in study if r["state"] == state]
            if ended:
                axis.plot(ended, [0.03] * len(ended), marker, color=color, markersize=5, clip_on=False,
                          transform=axis.get_xaxis_transform(), gid=state.lower(),
                          label=f"{state} trial ({len(ended)}), no value drawn")
        steps = [r for r in study if r["best_so_far"] is not None]
        best = next((r for r in study if r["is_best"]), None)
        if steps and best is not None:
            axis.step([r["number"] for r in steps], [r["best_so_far"] for r in steps], where="post",
                      color="tab:orange", linewidth=1.8, gid="best-so-far",
                      label=f"best so far ({'max' if maximize else 'min'}); best: trial {best['number']} "
                            f"(run {best['log_id']}) = {best['value']:.6g}")
        axis.set_xlabel("trial number")
        axis.set_ylabel(metric)
        if logy:
            axis.set_yscale("log")
        axis.set_title(title if title is not None and len(axes) == 1 else
                       f"study {name}: {metric}, {'maximize' if maximize else 'minimize'} ({len(study)} trials)")
        axis.legend(fontsize="small")
        axis.grid(True, alpha=0.3)
    if title is not None and len(axes) > 1:
        axes[0].figure.suptitle(title)
    return axes[0].figure
