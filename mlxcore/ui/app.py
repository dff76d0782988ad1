"""The web app: a handful of Starlette routes over one :class:`~mlxcore.ui.live.Live`, behind an access gate.

* ``GET /`` the page (:mod:`.page`); ``GET /static/...`` its scripts: ``ui.js``, the report's ``report.js`` and
  BokehJS from the installed Bokeh wheel (the page loads nothing from anywhere else);
* ``GET /api/runs?since=N``: ``{"version"}`` when the views are still those of version ``N``, else the views;
* ``POST /api/sql`` (``{"sql": "..."}``, JSON only): the result of :meth:`Reader.sql`, or ``{"error"}``.

Nothing writes: there is no route that changes anything, and the reader's catalog lives outside the logs
directory (:mod:`mlxcore.cli.ui_command`).

**The gate.** With a token (always when the server listens on an address other than loopback), a request must
carry it: as ``?token=`` (the URL the command prints; the answer then sets it as an ``HttpOnly``,
``SameSite=Strict`` cookie, which the page's own requests carry) or as that cookie; otherwise 403. Without a
token (loopback), the ``Host`` header must name a loopback address, which stops a web page on another site from
reading the app through DNS rebinding; and ``/api/sql`` takes only ``application/json``, which a page of another
origin cannot send without a preflight that is never answered.
"""

from __future__ import annotations

import hmac
import json
from importlib import resources
from pathlib import Path
from typing import Any

from . import is_loopback
from .live import Live
from .page import page_html

COOKIE = "mlxcore_ui_token"
#: the longest SQL text accepted
MAX_SQL = 100_000


def _static_files() -> dict[str, tuple[Path | None, str]]:
    """``{name: (path, package file)}`` of the scripts the page loads."""
    from bokeh.util.paths import bokehjs_path

    return {"bokeh.min.js": (bokehjs_path() / "js" / "bokeh.min.js", ""),
            "report.js": (None, "mlxcore.report:report.js"), "ui.js": (None, "mlxcore.ui:ui.js")}


def _read_static(path: Path | None, packaged: str) -> bytes:
    if path is not None:
        return path.read_bytes()
    package, name = packaged.split(":")
    return resources.files(package).joinpath(name).read_bytes()


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port (``[::1]:8000`` is ``[::1]``)."""
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0]


class Gate:
    """ASGI middleware: refuses (403) a request without the token when there is one, and (400) a request whose
    ``Host`` is not loopback when there is none."""

    def __init__(self, app: Any, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse

        request = Request(scope)
        if self.token is None:
            if not is_loopback(host_name(request.headers.get("host", ""))):
                await PlainTextResponse("mlxcore ui: this server answers on a loopback address only\n",
                                        status_code=400)(scope, receive, send)
                return
        elif not any(hmac.compare_digest(given.encode(), self.token.encode()) for given in
                     (request.query_params.get("token") or "", request.cookies.get(COOKIE) or "") if given):
            await PlainTextResponse("mlxcore ui: this server needs its access token: open the URL it printed\n",
                                    status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def build_app(live: Live, token: str | None = None, title: str = "mlxcore ui") -> Any:
    """The ASGI app serving ``live``; ``token``: required of every request (see :class:`Gate`)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    statics = _static_files()
    loaded: dict[str, bytes] = {}
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

    async def home(request: Request) -> Response:
        response = HTMLResponse(page_html(title), headers={**headers, "X-Frame-Options": "DENY"})
        given = request.query_params.get("token")
        if token is not None and given and hmac.compare_digest(given.encode(), token.encode()):
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in statics:
            return Response("not found\n", status_code=404, media_type="text/plain")
        if name not in loaded:
            loaded[name] = await run_in_threadpool(_read_static, *statics[name])
        return Response(loaded[name], media_type="text/javascript; charset=utf-8", headers=headers)

    async def runs(request: Request) -> Response:
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            since = -1
        view = await run_in_threadpool(live.current)
        body = {"version": view.version} if view.version == since else view.payload()
        return JSONResponse(body, headers=headers)

    async def sql(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "send the query as JSON: {\"sql\": \"SELECT ...\"}"}, status_code=415)
        try:
            query = json.loads(await request.body())["sql"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "send the query as JSON: {\"sql\": \"SELECT ...\"}"}, status_code=400)
        if not isinstance(query, str) or not query.strip() or len(query) > MAX_SQL:
            return JSONResponse({"error": f"give one SELECT or WITH query (at most {MAX_SQL:,} characters)"},
                                status_code=400)
        answer = await run_in_threadpool(live.sql, query)
        return JSONResponse(answer, status_code=400 if "error" in answer else 200, headers=headers)

    routes = [Route("/", home), Route("/static/{name}", static), Route("/api/runs", runs),
              Route("/api/sql", sql, methods=["POST"])]
    return Starlette(routes=routes, middleware=[Middleware(Gate, token=token)])
