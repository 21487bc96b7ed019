"""HTTP-level walls around the whole app, as plain ASGI middleware (streams pass straight through).

* ``SecurityHeaders``: a Content-Security-Policy that allows no inline script but the page's own
  (each HTML response gets a fresh nonce on its ``<script>`` tags: Gradio's page bootstraps with
  inline scripts, which the server writes and which carry no user input but escaped JSON), no
  third-party origin, no framing; plus ``Referrer-Policy``, ``X-Content-Type-Options`` and
  ``X-Frame-Options`` on every response.
* ``BrowserCookie``: gives a browser that has none a random id (an HttpOnly, SameSite=Lax cookie
  set with the page), under which its conversations are saved when nobody is signed in.
* ``AccessGate``: who may reach which path before any route runs. With
  ``ASSISTANT_REQUIRE_LOGIN`` only the sign-in page and ``/healthz`` are open to anonymous
  visitors (pages redirect to sign-in, everything else is 401). Always: Gradio's upload route and
  its file route serve only staff, because the only file input (and the only file outputs:
  feedback export, evaluation report) are on the staff page -- a chat visitor never needs them,
  so a file that reached Gradio's cache can still not be fetched by one.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable

import anyio
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.auth import User
from webapp.sessions import BROWSER_COOKIE, BROWSER_MAX_AGE_S, browser_id, new_browser_id

PUBLIC_PATHS = ("/login", "/logout", "/healthz")
STAFF_ONLY_PREFIXES = (
    "/gradio_api/upload",
    "/gradio_api/file=",
    "/gradio_api/file/",
    "/gradio_api/component_server",
)

_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])", re.IGNORECASE)


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",  # Gradio's components set inline styles
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "media-src 'self' blob:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        start: Message | None = None
        body = bytearray()

        async def send_wrapper(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                headers += [
                    (b"content-security-policy", content_security_policy(nonce).encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                message = {**message, "headers": headers}
                if _is_html(headers):
                    start = message  # hold it: the body's length changes with the nonces
                    return
                await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                body.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                html = _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode() + b'"', bytes(body))
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(html)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": html})
            else:
                await send(message)

        await self.app(scope, receive, send_wrapper)


_OURS = {b"content-security-policy", b"x-content-type-options", b"x-frame-options", b"referrer-policy"}


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)


class AccessGate:
    """Resolves who is calling (once per request, into ``scope["state"]["user"]``) and refuses a
    request before routing when that caller may not reach the path at all."""

    def __init__(
        self, app: ASGIApp, *, user_of: Callable[[HTTPConnection], User | None], require_login: bool
    ) -> None:
        self.app = app
        self.user_of = user_of
        self.require_login = require_login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        user = None
        if conn.cookies or "authorization" in conn.headers:  # a database read or a password check
            user = await anyio.to_thread.run_sync(self.user_of, conn)
        scope.setdefault("state", {})["user"] = user
        path = scope.get("path", "")
        if path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        refusal: tuple[int, str] | None = None
        if self.require_login and user is None:
            refusal = (401, "sign in first")
        elif path.startswith(STAFF_ONLY_PREFIXES) and not (user and user.is_staff):
            refusal = (403, "staff only")
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif (
            refusal[0] == 401
            and scope.get("method") == "GET"
            and "text/html" in conn.headers.get("accept", "")
        ):
            login = (scope.get("root_path") or "") + "/login"
            await _respond(send, 303, b"", [(b"location", login.encode())])  # a page: to the sign-in form
        else:
            extra = [(b"www-authenticate", b'Basic realm="assistant"')] if refusal[0] == 401 else []
            await _json(send, refusal[0], refusal[1], extra)


async def _json(send: Send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await _respond(send, status, body, [(b"content-type", b"application/json"), *(headers or [])])


async def _respond(send: Send, status: int, body: bytes, headers: list) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(name, password) of an ``Authorization: Basic`` header, for scripts calling the API."""
    if not header.lower().startswith("basic "):
        return None
    try:
        name, sep, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (name, password) if sep else None


class BrowserCookie:
    """Sets the browser-id cookie on an HTML page response when the request carried none."""

    def __init__(self, app: ASGIApp, *, secure: Callable[[HTTPConnection], bool]) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        if browser_id(conn) is not None:
            await self.app(scope, receive, send)
            return
        cookie = (
            f"{BROWSER_COOKIE}={new_browser_id()}; Max-Age={BROWSER_MAX_AGE_S}; Path=/; HttpOnly; SameSite=Lax"
            + ("; Secure" if self.secure(conn) else "")
        ).encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_html(message.get("headers", [])):
                message = {**message, "headers": [*message["headers"], (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_wrapper)
