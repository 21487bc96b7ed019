"""The one web process: FastAPI with the Gradio page mounted at "/", plus a few small routes.

* ``GET|POST /login``, ``POST /logout`` -- sign-in for staff (and for everyone when
  ``ASSISTANT_REQUIRE_LOGIN`` is on): a plain form, a session cookie (``webapp.sessions``).
  Clients such as ``gradio_client.Client(auth=...)`` post the same form and get JSON.
* ``GET /healthz`` -- JSON for load balancers and scripts: ok, documents, chunks, answer mode,
  the start-up ingest's progress, the folder watcher's state (``ASSISTANT_WATCH``) and the
  answering queue.
* ``POST /api/ask`` -- ``{"question", "history", "stream"}`` in, the ``Answer`` as JSON out (with
  ``stream``, Server-Sent Events: ``delta`` events, then one ``answer`` event with the Answer);
  429/503 with ``Retry-After`` when every answering slot is taken (``webapp.gate``).
* ``GET /v1/models``, ``POST /v1/chat/completions`` -- the OpenAI-compatible API
  (``webapp.openai_api``), authenticated by per-user API keys (``webapp.apikeys``).
* ``/mcp`` -- the knowledge base as an MCP server (streamable HTTP; ``webapp.mcp_http``), with
  the same API keys and permissions.
* ``GET /files/{source}`` -- a source document, read-only, only if it is indexed and
  ``kb.store.source_path`` finds it inside the corpus or uploads folder (never any other path).

Gradio's queue lives in this process, so scaling out means several replicas with sticky sessions
behind a proxy, sharing a Chroma server (``ASSISTANT_CHROMA_HOST``) and a record database
(``ASSISTANT_RECORD_DB_URL``), which also holds the sign-in sessions.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import mimetypes
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

import anyio
import gradio as gr
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from kb.settings import Settings
from kb.store import source_path
from webapp import openai_api
from webapp.apikeys import bearer_token
from webapp.auth import MAX_NAME_CHARS, MAX_PASSWORD_CHARS, User
from webapp.chat import AskRequest
from webapp.gate import Busy
from webapp.mcp_http import PATH as MCP_PATH
from webapp.mcp_http import mcp_endpoint
from webapp.openai_api import SSE_HEADERS, hold_slot, last_answer, sse_answer, stream_in_slot
from webapp.security import AccessGate, BrowserCookie, SecurityHeaders
from webapp.services import Services
from webapp.sessions import COOKIE
from webapp.staff import upload_limit_bytes
from webapp.ui import CSS, build_ui

log = logging.getLogger(__name__)

# Served as text so a document can never run script in this site's origin.
_AS_TEXT = {".html", ".htm", ".md", ".markdown", ".rst", ".csv", ".txt", ".text", ".eml", ".mbox"}
# Where a browser goes after signing in or out: a fixed list, never a URL from the request.
_NEXT = {"chat": "./", "documents": "./?view=documents"}


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or Services.start(settings)
    mcp, mcp_running = mcp_endpoint(services)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if services.watch is not None:
            services.watch.start()
        try:
            async with mcp_running:
                yield
        finally:
            if services.watch is not None:
                await anyio.to_thread.run_sync(services.watch.stop)

    app = FastAPI(
        title="Documents assistant",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    ask_threads = anyio.CapacityLimiter(services.gate.capacity)  # /api/ask's own workers

    def user(request: Request) -> User | None:
        """Who is calling, as ``AccessGate`` resolved it for this request."""
        return getattr(request.state, "user", None)

    def check_login(request: Request) -> User | None:
        caller = user(request)
        if caller is None and bearer_token(request.headers.get("authorization", "")) is not None:
            raise HTTPException(401, "incorrect or revoked API key")
        if settings.require_login and caller is None:
            raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": 'Basic realm="assistant"'})
        return caller

    # --- sign-in ------------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(error: str = "", next: str = "chat") -> HTMLResponse:
        return HTMLResponse(login_html(error, next if next in _NEXT else "chat"))

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        username: str = Form("", max_length=MAX_NAME_CHARS),
        password: str = Form("", max_length=MAX_PASSWORD_CHARS),
        next: str = Form("chat", max_length=20),
    ) -> Response:
        _same_origin(request)
        browser = "text/html" in request.headers.get("accept", "")
        target = next if next in _NEXT else "chat"
        found = services.users.verify(username, password)
        if found is None:
            locked = services.users.locked_out(username)
            reason = "locked" if locked else "wrong"
            if browser:
                return RedirectResponse(f"login?error={reason}&next={target}", status_code=303)
            return JSONResponse({"success": False, "error": reason}, status_code=401)
        log.info("sign-in: %s (%s)", found.name, found.role)
        response: Response = (
            RedirectResponse(_NEXT[target], status_code=303) if browser else JSONResponse({"success": True})
        )
        services.sessions.set_cookie(response, services.sessions.create(found.name), request)
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, next: str = Form("chat", max_length=20)) -> Response:
        _same_origin(request)
        services.sessions.end(request.cookies.get(COOKIE))
        target = "login" if settings.require_login else _NEXT.get(next, "./")
        response = RedirectResponse(target, status_code=303)
        services.sessions.clear_cookie(response, request)
        return response

    # --- health and API -------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            st = services.stats()
        except Exception as exc:  # the check must answer even when the store is broken
            log.exception("health check failed")
            return JSONResponse({"ok": False, "error": type(exc).__name__}, status_code=503)
        return JSONResponse(
            {
                "ok": True,
                "documents": st.documents,
                "chunks": st.chunks,
                "answer_mode": services.assistant.answerer.mode,
                "model": services.assistant.answerer.model,
                "last_ingest": st.last_ingest,
                "ingest": services.startup.to_dict(),
                "watch": services.watch.to_dict() if services.watch else {"state": "off"},
                "answering": services.gate.stats(),
            }
        )

    @app.post("/api/ask")
    async def api_ask(request: Request, body: AskRequest) -> Response:
        scope = services.scope_of(check_login(request)).narrowed(body.collections, body.sources)
        started = time.perf_counter()
        try:
            slot = await hold_slot(services, ask_threads)
        except Busy as exc:
            return _busy(exc)
        items = stream_in_slot(services, slot, body.question, [t.model_dump() for t in body.history], scope)
        if body.stream:
            return StreamingResponse(
                sse_answer(
                    items,
                    lambda text: f"event: delta\ndata: {json.dumps({'text': text})}\n\n",
                    lambda answer: f"event: answer\ndata: {answer.model_dump_json()}\n\n",
                ),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )
        try:
            answer = await anyio.to_thread.run_sync(partial(last_answer, items), limiter=ask_threads)
        except Exception:
            log.exception("/api/ask failed")
            return JSONResponse(
                {"error": "the assistant failed to answer; see the server log"}, status_code=500
            )
        log.info("/api/ask answered in %.2fs", time.perf_counter() - started)
        return JSONResponse(answer.model_dump(mode="json"))

    app.include_router(openai_api.router(services, user, ask_threads))
    app.add_route(MCP_PATH, mcp, include_in_schema=False)

    @app.get("/files/{source:path}")
    def files(source: str, request: Request) -> Response:
        caller = check_login(request)
        # a document the caller may not read is as absent as one that does not exist
        indexed = services.scope_of(caller).allows(source) and services.kb.get_document(source) is not None
        # An upload's bytes live in the record store (any app process may have received it).
        original = services.kb.original(source) if indexed else None
        path = source_path(settings, source) if indexed and original is None else None
        if original is None and path is None:
            raise HTTPException(404, "no such document")
        name = PurePosixPath(source).name
        suffix = PurePosixPath(name).suffix.lower()
        media = "text/plain; charset=utf-8" if suffix in _AS_TEXT else mimetypes.guess_type(name)[0]
        media = media or "application/octet-stream"
        if path is not None:
            return FileResponse(
                path,
                media_type=media,
                content_disposition_type="inline",
                filename=name,
                headers={"Cache-Control": "no-store"},
            )
        disposition = f"inline; filename*=utf-8''{quote(name)}"
        return Response(
            original,
            media_type=media,
            headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
        )

    # --- the Gradio page ------------------------------------------------------------------------
    app.add_middleware(CORSMiddleware, allow_origins=[])  # no cross-origin callers (and Gradio adds none)
    demo = build_ui(services)
    demo.queue(default_concurrency_limit=1, max_size=services.gate.capacity)
    app = gr.mount_gradio_app(
        app,
        demo,
        path="/",
        max_file_size=upload_limit_bytes(settings),
        blocked_paths=[str(settings.data_dir.resolve())],
        ssr_mode=False,
        run_history=False,  # would keep inputs in the browser
        footer_links=["api"],
        css=CSS,
        # System fonts: nothing is fetched, and every browser has them.
        theme=gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"]),
    )
    # Under mount_gradio_app the Blocks is never "launched", and Gradio's check that an input file
    # was uploaded through it (not any server path a client names) returns early. Turn it on: a
    # second wall behind handlers that take no client file at all (see webapp/ui.py).
    demo.has_launched = True
    demo.state_session_capacity = 2000  # browser sessions whose conversation is kept (oldest go)
    app.add_middleware(BrowserCookie, secure=services.sessions.is_https)
    app.add_middleware(AccessGate, user_of=services.user_of, require_login=settings.require_login)
    app.add_middleware(SecurityHeaders)
    if settings.require_login and not len(services.users):
        log.warning("ASSISTANT_REQUIRE_LOGIN is on but no users are configured: nobody can sign in")
    return app


def _same_origin(request: Request) -> None:
    """Refuse a sign-in or sign-out posted by another site's page (login CSRF)."""
    origin = request.headers.get("origin")
    if request.headers.get("sec-fetch-site") == "cross-site" or (
        origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host")
    ):
        raise HTTPException(403, "cross-site request refused")


def _busy(exc: Busy) -> JSONResponse:
    return JSONResponse(
        {"error": str(exc)}, status_code=exc.status, headers={"Retry-After": str(exc.retry_after_s)}
    )


_LOGIN_ERRORS = {
    "wrong": "Wrong user name or password.",
    "locked": "Too many failed sign-ins for this name: wait a few minutes and try again.",
}


def login_html(error: str, next: str) -> str:
    """The sign-in page: a plain form, no script."""
    message = _LOGIN_ERRORS.get(error, "")
    note = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Sign in · Documents assistant</title>
<style>
body {{ font-family: ui-sans-serif, system-ui, sans-serif; background: #f6f7fb; margin: 0; }}
main {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: 12px;
       box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
label {{ display: block; margin: 1rem 0 .3rem; font-size: .95rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem; border: 1px solid #ccd;
        border-radius: 6px; }}
button {{ margin-top: 1.4rem; width: 100%; padding: .65rem; font-size: 1rem; border: 0; border-radius: 6px;
         background: #4f46e5; color: #fff; cursor: pointer; }}
.error {{ color: #b91c1c; }}
</style></head>
<body><main>
<h1>Documents assistant</h1>
{note}
<form method="post" action="login">
<input type="hidden" name="next" value="{html.escape(next)}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" maxlength="{MAX_NAME_CHARS}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main></body></html>"""
