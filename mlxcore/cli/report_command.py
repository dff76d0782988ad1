"""``mlxcore report``: one self-contained HTML file (runs table with a filter box, seed-averaged curves, failure
triage, totals) that opens anywhere without a network. Bokeh is imported by this command only
(``pip install "mlxcore[report]"``)."""

from __future__ import annotations

from pathlib import Path

import click

from .plot_command import curve_options


@click.command("report")
@curve_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file, e.g. report.html")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), default=None)
def report_command(logs: Path, metric: str, x: str | None, group_by: tuple[str, ...], filter_string: str,
                   band: str, title: str | None, logy: bool, output: Path, catalog: Path | None) -> None:
    """Write one HTML file about the runs of LOGS: the runs table (sortable, with a filter box), the curves of
    METRIC (mean and band over the runs of each group), the failures with the end of their error, totals and
    the command that reruns the failures. The file needs no network and no server.

    \b
    mlxcore report ./logs --metric train.loss --x epoch --group-by config.optimizer.lr -o report.html
    """
    from ..errors import QueryError
    from .query_command import open_reader

    try:
        import bokeh  # noqa: F401
    except ImportError:
        raise QueryError('mlxcore report needs Bokeh: pip install "mlxcore[report]"') from None
    from ..report import build_report, write_atomically

    if output.suffix.lower() not in (".html", ".htm"):
        raise QueryError(f"cannot write {output.name!r}: give a file name ending in .html")
    if not logs.is_dir():
        raise QueryError(f"no logs directory {str(logs)!r}")
    reader = open_reader(logs, catalog)
    try:
        report = build_report(reader, metric, x=x, group_by=group_by, filter=filter_string,
                              band=None if band == "none" else band, logy=logy, title=title)
    finally:
        reader.close()
    write_atomically(output, report.html)
    size = len(report.html.encode())
    click.echo(f"wrote {output} ({report.runs} run(s), {report.curves} curve(s), {report.failures} failure(s), "
               f"{size / 1e6:.1f} MB)")
