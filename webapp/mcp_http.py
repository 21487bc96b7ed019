"""``/mcp``: the MCP server of ``assistant.mcp`` over streamable HTTP, in the web app's process.

* Each request acts as the user of its API key (``Authorization: Bearer``, ``webapp.apikeys``),
  through the same scope as the chat. Without a key it acts as an anonymous visitor, and only
  where the chat itself is open to everyone (``ASSISTANT_REQUIRE_LOGIN`` off). A sign-in cookie
  does not count here, so a page of another site cannot make a browser call the tools.
* Stateless (each POST stands alone, JSON responses): any replica answers any request, with no
  sticky sessions and nothing held between calls.
* ``ask`` takes one of the app's answering slots (``webapp.gate``), like the chat and the APIs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.mcp import build_server
from kb.access import Scope as ReadScope
from webapp.apikeys import bearer_token
from webapp.auth import User
from webapp.gate import Busy
from webapp.services import Services

PATH = "/mcp"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def mcp_endpoint(services: Services) -> tuple[ASGIApp, contextlib.AbstractAsyncContextManager]:
    """The ASGI app to route at ``/mcp``, and the context the app's lifespan must hold open."""
    settings = services.settings

    def caller(ctx: Context) -> User | None:
        return ctx.request_context.request.scope["state"]["mcp_user"]

    def scope_of(ctx: Context) -> ReadScope:
        return services.scope_of(caller(ctx))

    def base_url_of(ctx: Context) -> str:
        return (settings.public_url or str(ctx.request_context.request.base_url)).rstrip("/")

    @contextlib.contextmanager
    def answer_slot() -> Iterator[None]:
        try:
            with services.gate.slot():
                yield
        except Busy as exc:
            raise ToolError(f"{exc} (retry in {exc.retry_after_s} s)") from None

    server = build_server(services.assistant, scope_of, base_url_of, answer_slot)
    server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        transport_security=_rebinding_guard(settings.host, settings.public_url),
    )
    endpoint = McpGate(StreamableHTTPASGIApp(server.session_manager), services)

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return endpoint, running()


def _rebinding_guard(host: str, public_url: str | None) -> TransportSecuritySettings | None:
    """On a loopback address, only requests naming this machine (or the public URL) as their
    host: a page whose domain an attacker re-points at 127.0.0.1 cannot reach the tools."""
    if host not in _LOOPBACK:
        return None
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    if public_url:
        parts = urlsplit(public_url)
        hosts.append(parts.netloc)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class McpGate:
    """Resolves the API key (only the key: see the module's note) into ``scope["state"]``, and
    refuses a key that opens nothing, or no key where sign-in is required, with a 401."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = bearer_token(Headers(scope=scope).get("authorization", ""))
        user = None
        if token is not None:
            user = await anyio.to_thread.run_sync(self._user, token)
            if user is None:
                await _unauthorized(send, "Incorrect or revoked API key.")
                return
        elif self.services.settings.require_login:
            await _unauthorized(send, "An API key is required: Authorization: Bearer <key>.")
            return
        scope.setdefault("state", {})["mcp_user"] = user
        await self.app(scope, receive, send)

    def _user(self, token: str) -> User | None:
        return self.services.users.get(self.services.api_keys.user(token))


async def _unauthorized(send: Send, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b'Bearer realm="assistant"'),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
