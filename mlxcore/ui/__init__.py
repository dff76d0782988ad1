"""``mlxcore ui``: the report's views served live by a local, read-only web app.

**Why Starlette and uvicorn.** The app is five routes and a gate: Starlette (BSD, maintained by Encode, the
base of FastAPI) gives routing, requests, cookies and middleware without a framework's weight, and uvicorn (the
same maintainers) serves it from the command, on a socket bound here so that port 0 (a free port) can be printed
before the first request. Both are pure Python to install (``pip install "mlxcore[ui]"``) and imported by this
command only.

The page is the report's (:mod:`mlxcore.report`): the same sections, ``report.js`` over the same data, the same
Bokeh plot, BokehJS served from the installed wheel; ``ui.js`` polls for new views every 2 s (:mod:`.live` says
when they change) and the SQL box goes through :meth:`Reader.sql`. The reader's catalog is kept outside the logs
directory, so serving never writes under it.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any


def is_loopback(host: str) -> bool:
    """``host`` is an address of this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port chosen by the system).

    :raises OSError: the address cannot be bound (in use, not an address of this machine).
    """
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str, token: str | None) -> str:
    """The URL to open: the bound address (for a wildcard address, this machine's name), with the token."""
    port = sock.getsockname()[1]
    shown = host.strip("[]")
    if shown in ("0.0.0.0", "::", ""):
        shown = socket.getfqdn() or socket.gethostname()
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C (or SIGTERM): uvicorn stops taking requests, ends the ones under
    way (at most 3 s) and returns; the signal is then raised again as uvicorn does, which the command catches."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3,
                            lifespan="off", server_header=False)
    uvicorn.Server(config).run(sockets=[sock])
