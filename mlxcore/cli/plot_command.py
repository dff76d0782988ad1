"""``mlxcore plot``: mean curves of a metric over the runs of each group, with a std or sem band, to a file.

matplotlib is imported by this command only, with the non-interactive Agg backend (no display needed on a
cluster node); the output format (PNG, SVG, PDF) follows the file name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

FORMATS = (".png", ".svg", ".pdf")


def curve_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of the commands that draw curves (``plot``, ``report``): the logs, the metric against ``x``,
    the groups, the runs' filter, the band, the title and the y scale."""
    options = [
        click.argument("logs", type=click.Path(file_okay=False, path_type=Path)),
        click.option("--metric", required=True, help="<stream>.<key>, e.g. train.loss"),
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
@curve_options
@click.option("--size", default="6.4x4", show_default=True, help="Figure size in inches, WxH.")
@click.option("--dpi", type=int, default=100, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file: .png, .svg or .pdf")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), default=None)
def plot_command(logs: Path, metric: str, x: str | None, group_by: tuple[str, ...], filter_string: str, band: str,
                 title: str | None, logy: bool, size: str, dpi: int, output: Path, catalog: Path | None) -> None:
    """Plot METRIC of the runs of LOGS: one mean curve per group, with a band over its runs (seeds).

    \b
    mlxcore plot ./logs --metric train.loss --x epoch --group-by config.optimizer.lr -o curves.png
    """
    from ..errors import QueryError
    from .query_command import open_reader

    if output.suffix.lower() not in FORMATS:
        raise QueryError(f"cannot write {output.name!r}: give a file name ending in {', '.join(FORMATS)}")
    try:
        width, height = (float(v) for v in size.lower().split("x"))
    except ValueError:
        raise QueryError(f"bad --size {size!r}: give WxH in inches, e.g. 6.4x4") from None
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
