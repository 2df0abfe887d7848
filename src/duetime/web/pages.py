"""The web app's pages, static files and service worker.

Each page is a server-sent HTML shell (`templates/shell.html` around the page's own
fragment) that loads one ES module from `/static/`; the modules talk to the JSON APIs
with the session cookie and the session's CSRF token. Nothing here holds a business rule.

Every answer carries a strict Content-Security-Policy (`default-src 'self'`, no inline
script, no framing), `X-Content-Type-Options: nosniff` and `Referrer-Policy:
same-origin`. The files are read once, when the router is built, from package data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

SESSION_COOKIE = "duetime_session"
"""The accounts' session cookie (duetime.api.users); only its presence is looked at here."""

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}


@dataclass(frozen=True)
class Page:
    path: str
    template: str
    title: str
    signed_in: bool = True
    """False for the sign-in and sign-up pages: the module does not ask for a session."""


PAGES = (
    Page("/app", "app", "Tasks"),
    Page("/inbox", "inbox", "Inbox"),
    Page("/settings", "settings", "Settings"),
    Page("/deliveries", "deliveries", "Deliveries"),
    Page("/admin", "admin", "Operator"),
    Page("/signin", "signin", "Sign in", signed_in=False),
    Page("/signup", "signup", "Sign up", signed_in=False),
)


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _asset(body: bytes, media_type: str) -> _Asset:
    return _Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _read_static() -> dict[str, _Asset]:
    found: dict[str, _Asset] = {}
    for item in (files("duetime.web") / "static").iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1]
        if item.is_file() and suffix in _TYPES:
            found[item.name] = _asset(item.read_bytes(), _TYPES[suffix])
    return found


def _render(page: Page, shell: str) -> _Asset:
    body = (files("duetime.web") / "templates" / f"{page.template}.html").read_text("utf-8")
    html = (
        shell.replace("{{title}}", page.title)
        .replace("{{page}}", page.template)
        .replace("{{chrome}}", "" if page.signed_in else " hidden")
        .replace("{{body}}", body)
    )
    return _asset(html.encode("utf-8"), "text/html; charset=utf-8")


def _answer(request: Request, asset: _Asset, extra: dict[str, str] | None = None) -> Response:
    headers = {**SECURITY_HEADERS, "etag": asset.etag, "cache-control": "no-cache", **(extra or {})}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def _page_handler(asset: _Asset) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return _answer(request, asset)

    return serve


def web_router() -> APIRouter:
    """`/` (to the task list, or to sign-in without a session cookie), the pages of
    `PAGES`, `/static/{name}` and `/sw.js` at the root scope."""
    router = APIRouter(include_in_schema=False)
    static = _read_static()
    shell = (files("duetime.web") / "templates" / "shell.html").read_text("utf-8")
    rendered = {page.path: _render(page, shell) for page in PAGES}

    @router.get("/")
    async def root(request: Request) -> Response:
        where = "/app" if request.cookies.get(SESSION_COOKIE) else "/signin"
        return RedirectResponse(where, status_code=303, headers=SECURITY_HEADERS)

    for path, asset in rendered.items():
        router.add_api_route(path, _page_handler(asset), methods=["GET"])

    @router.get("/static/{name}")
    async def static_file(name: str, request: Request) -> Response:
        asset = static.get(name)
        if asset is None or name == "sw.js":
            return Response(
                "not found", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS
            )
        return _answer(request, asset)

    @router.get("/sw.js")
    async def service_worker(request: Request) -> Response:
        """The service worker, at the root so its scope is the whole app."""
        return _answer(request, static["sw.js"], {"service-worker-allowed": "/"})

    return router
