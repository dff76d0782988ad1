"""``mlxcore plot``: mean curves of a metric over the runs of each group, with a std or sem band, to a file;
with ``--trials``, each search study's trial values and best-so-far line (:func:`mlxcore.reader.plot.draw_trials`).

matplotlib is imported by this command only, with the non-interactive Agg backend (no display needed on a
cluster node); the output format (PNG, SVG, PDF) follows the file name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

FORMATS = (".png", ".svg", ".pdf")


def curve_options(command: Callable[..., Any] | None = None, *, metric_required: bool = True) -> Any:
    """The options of the commands that draw curves (``plot``, ``report``): the logs, the metric against ``x``,
    the groups, the runs' filter, the band, the title and the y scale (``@curve_options``, or
    ``@curve_options(metric_required=False)`` for a command that checks ``--metric`` itself)."""
    if command is None:
        return lambda c: curve_options(c, metric_required=metric_required)
    options = [
        click.argument("logs", type=click.Path(file_okay=False, path_type=Path)),
        click.option("--metric", required=metric_required, help="<stream>.<key>, e.g. train.loss"),
        click.option("--x", "x", default=None, help="A key of the same stream (e.g. epoch); default: the row index."),
        click.option("--group-by", "group_by", multiple=True,
                     help="runs column(s) defining the curves, e.g. config.optimizer.lr (repeat or comma-separate)."),
        click.option("--filter", "filter_string", default="", help="An MLXP filter string selecting the runs."),
        click.option("--band", type=click.Choice(["std", "sem", "none"]), default="std", show_default=True),
        click.option("--title", default=None),
        click.option("--logy", is_flag=True, help="Logarithmic y axis."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("plot")
@curve_options(metric_required=False)
@click.option("--trials", is_flag=True,
              help="Plot search trials: per study, each trial's value and the best so far (no --metric: each "
                   "study's own).")
@click.option("--study", "study_names", multiple=True, metavar="NAME", help="With --trials: only this study "
              "(repeatable).")
@click.option("--size", default="6.4x4", show_default=True, help="Figure size in inches, WxH (per study with "
              "--trials).")
@click.option("--dpi", type=int, default=100, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file: .png, .svg or .pdf")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), default=None)
def plot_command(logs: Path, metric: str | None, x: str | None, group_by: tuple[str, ...], filter_string: str,
                 band: str, title: str | None, logy: bool, trials: bool, study_names: tuple[str, ...], size: str,
                 dpi: int, output: Path, catalog: Path | None) -> None:
    """Plot METRIC of the runs of LOGS: one mean curve per group, with a band over its runs (seeds); or, with
    --trials, each search study: its trials' values against their number and the best value so far.

    \b
    mlxcore plot ./logs --metric train.loss --x epoch --group-by config.optimizer.lr -o curves.png
    mlxcore plot ./logs --trials --study main-3f2a9c01bd -o best.png
    """
    from ..errors import QueryError
    from .query_command import open_reader

    if output.suffix.lower() not in FORMATS:
        raise QueryError(f"cannot write {output.name!r}: give a file name ending in {', '.join(FORMATS)}")
    try:
        width, height = (float(v) for v in size.lower().split("x"))
    except ValueError:
        raise QueryError(f"bad --size {size!r}: give WxH in inches, e.g. 6.4x4") from None
    if trials:
        _plot_trials(logs, metric, x, group_by, filter_string, study_names, title, logy, (width, height), dpi,
                     output)
        return
    if study_names:
        raise QueryError("--study selects the studies of --trials")
    if not metric:
        raise QueryError("give --metric <stream>.<key> (e.g. train.loss), or --trials to plot a search's trials")
    import matplotlib

    matplotlib.use("Agg")
    groups = [g.strip() for item in group_by for g in item.split(",") if g.strip()]
    reader = open_reader(logs, catalog)
    try:
        figure = reader.plot(metric, x=x, group_by=groups, filter=filter_string, band=None if band == "none" else band,
                             title=title, logy=logy, figsize=(width, height), dpi=dpi)
    finally:
        reader.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output)
    click.echo(f"wrote {output} ({len(figure.axes[0].get_lines())} curve(s))")


def _plot_trials(logs: Path, metric: str | None, x: str | None, group_by: tuple[str, ...], filter_string: str,
                 study_names: tuple[str, ...], title: str | None, logy: bool, figsize: tuple[float, float], dpi: int,
                 output: Path) -> None:
    from ..errors import QueryError
    from ..reader.trials import read_trials

    if metric or x or group_by:
        raise QueryError("--trials plots each study's own objective against the trial number: --metric, --x and "
                         "--group-by do not apply")
    ids = None
    if filter_string.strip():
        from .jobs_command import filter_ids

        ids = filter_ids(logs.absolute(), filter_string)
    rows = read_trials(logs, ids=ids)
    if study_names:
        known = list(dict.fromkeys(r["study"] for r in rows))
        unknown = [s for s in study_names if s not in known]
        if unknown:
            raise QueryError(f"no study {unknown[0]!r} in {logs}; studies: {', '.join(known) or 'none'}")
        rows = [r for r in rows if r["study"] in study_names]
    import matplotlib

    matplotlib.use("Agg")
    from ..reader.plot import draw_trials

    figure = draw_trials(rows, title=title, logy=logy, figsize=figsize, dpi=dpi)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output)
    studies = len(figure.axes)
    click.echo(f"wrote {output} ({studies} stud{'y' if studies == 1 else 'ies'})")
