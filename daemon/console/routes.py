"""The web console's routes on a job's control endpoint: the page (public, no data) and its JSON (viewer).

=========================  ==========  =====================================================
``GET  /``                 public      the page (HTML); it asks for a token in a login form
``GET  /console/app.js``   public      its script; ``/console/app.css`` its style sheet
``GET  /console/data``     viewer      graph, numbers, sources, checkpoints, dead letters,
                                       the caller's role and the polling interval (JSON)
``GET  /console/history``  viewer      the last hour of watermarks and lag (``?step=LABEL``)
``GET  /console/source``   viewer      one source's backlog per split, read now (``?step=LABEL``)
=========================  ==========  =====================================================

The page calls ``POST /drain|/stop|/cancel`` itself, with the same token, so the same role checks apply.

>>> sorted(p for _, p in console_routes(None, 2.0))[:2]
['/', '/console/app.css']
"""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from millstream.daemon.control import PUBLIC, ROLES, Request, Response, Route, json_response

#: The assets shipped in the package (package-data), served as they are: no CDN, works offline.
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/console/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/console/app.css": ("app.css", "text/css; charset=utf-8"),
}
#: Scripts and styles from this origin only; no frames (clickjacking of the action buttons).
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


def asset(name: str) -> bytes:
    """The bytes of one shipped asset (``index.html``, ``app.js``, ``app.css``, ``jobs.html``, ...)."""
    return resources.files("millstream.daemon.console").joinpath("static", name).read_bytes()


def _static(name: str, content_type: str) -> Any:
    body = asset(name)

    async def handle(request: Request) -> Response:
        return Response(200, body, content_type, SECURITY_HEADERS)

    return handle


def console_routes(model: Any, poll_interval_s: float) -> dict[tuple[str, str], Route]:
    """The console's routes for `model` (a `ConsoleModel`); the page polls every `poll_interval_s`."""

    async def data(request: Request) -> Response:
        doc = model.document()
        role = request.role or "viewer"
        doc["viewer"] = {"role": role, "can_act": ROLES[role] >= ROLES["developer"]}
        doc["poll_interval_s"] = poll_interval_s
        return json_response(200, doc)

    async def history(request: Request) -> Response:
        steps = parse_qs(request.query).get("step")
        step = steps[0] if steps else None
        if step is not None and step not in model.job.plan.nodes:
            return json_response(404, {"error": f"no step {step!r} in this job"})
        return json_response(200, model.history_document(step))

    async def source(request: Request) -> Response:
        steps = parse_qs(request.query).get("step")
        if not steps:
            return json_response(400, {"error": "GET /console/source needs ?step=LABEL (a source step)"})
        doc = model.source_splits(steps[0])
        if doc is None:
            return json_response(404, {"error": f"no source step {steps[0]!r} in this job"})
        return json_response(200, doc)

    routes = {("GET", path): Route(PUBLIC, _static(name, kind)) for path, (name, kind) in ASSETS.items()}
    routes[("GET", "/console/data")] = Route("viewer", data)
    routes[("GET", "/console/history")] = Route("viewer", history)
    routes[("GET", "/console/source")] = Route("viewer", source)
    return routes


__all__ = ["ASSETS", "asset", "console_routes"]
