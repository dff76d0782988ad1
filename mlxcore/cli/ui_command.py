"""``mlxcore ui``: the report's views (runs table and filter box, curves, failures, totals) and a SQL box, served
live by a local read-only web app (``pip install "mlxcore[ui]"``: Starlette, uvicorn and Bokeh, imported by this
command only)."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import click

CATALOG_NAME = "catalog.duckdb"


def ui_catalog(logs: Path) -> Path:
    """The catalog of ``logs`` kept in the user's cache (``$XDG_CACHE_HOME/mlxcore/catalogs/<hash of the logs
    path>/``, where the reader keeps the catalog of a read-only logs directory): never under ``logs``."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha1(str(logs.resolve()).encode()).hexdigest()[:16]
    return cache / "mlxcore" / "catalogs" / digest / CATALOG_NAME


@click.command("ui")
@click.argument("logs", type=click.Path(file_okay=False, path_type=Path))
@click.option("--metric", default=None, help="<stream>.<key> to draw, e.g. train.loss (default: the first "
              "stream's loss, else its first key).")
@click.option("--x", "x", default=None, help="A key of the same stream (e.g. epoch); default: the row index.")
@click.option("--group-by", "group_by", multiple=True,
              help="runs column(s) defining the curves, e.g. config.optimizer.lr (repeat or comma-separate).")
@click.option("--filter", "filter_string", default="", help="An MLXP filter string selecting the runs.")
@click.option("--band", type=click.Choice(["std", "sem", "none"]), default="std", show_default=True)
@click.option("--title", default=None)
@click.option("--logy", is_flag=True, help="Logarithmic y axis.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any other than loopback requires the printed access token.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: a free port.")
@click.option("--token", "force_token", is_flag=True, help="Require an access token on loopback too.")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to keep the catalog (default: in the user's cache; never under LOGS).")
@click.option("--timeout", type=float, default=None, metavar="SECONDS", help="Stop a SQL query after this long "
              "(default 300).")
@click.option("--memory-limit", default=None, metavar="SIZE", help="Memory a query may take, e.g. 2GB.")
def ui_command(logs: Path, metric: str | None, x: str | None, group_by: tuple[str, ...], filter_string: str,
               band: str, title: str | None, logy: bool, host: str, port: int, force_token: bool,
               catalog: Path | None, timeout: float | None, memory_limit: str | None) -> None:
    """Serve the runs of LOGS live in a browser: the runs table with its filter box, the curves of METRIC, the
    failures, totals and a read-only SQL box; new runs and rows appear while a sweep runs. It never writes
    under LOGS. Ctrl-C stops it.

    \b
    mlxcore ui ./logs --metric train.loss --x epoch --group-by config.optimizer.lr
    mlxcore ui ./logs --host 0.0.0.0 --port 8080     # prints a URL with its access token
    """
    from ..errors import QueryError

    try:
        import bokeh  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise QueryError(f'mlxcore ui needs {exc.name}: pip install "mlxcore[ui]"') from None
    from ..ui import bind, is_loopback, serve, url_of
    from ..ui.app import build_app
    from ..ui.live import Live, Options
    from .query_command import open_reader

    if not logs.is_dir():
        raise QueryError(f"no logs directory {str(logs)!r}")
    chosen = (catalog or ui_catalog(logs)).expanduser().absolute()
    if chosen.resolve().is_relative_to(logs.resolve()):
        raise QueryError(f"the catalog {str(chosen)!r} is under {str(logs)!r}: mlxcore ui never writes there; "
                         "give another --catalog")
    token = secrets.token_urlsafe(24) if force_token or not is_loopback(host) else None
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise QueryError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    reader = open_reader(logs, chosen, timeout=timeout, memory_limit=memory_limit)
    try:
        options = Options(metric, x, group_by, filter_string, None if band == "none" else band, logy, title)
        live = Live(reader, options)
        app = build_app(live, token, title or f"mlxcore ui: {reader.path.name}")
        click.echo(f"mlxcore ui: serving {logs} at {url_of(sock, host, token)} (read-only; Ctrl-C stops it)")
        serve(app, sock)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        reader.close()
    click.echo("mlxcore ui: stopped")
