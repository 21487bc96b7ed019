"""The one web process: FastAPI with the Gradio page mounted at "/", plus three small routes.

* ``GET /healthz`` -- JSON for load balancers and scripts: ok, documents, chunks, answer mode.
* ``POST /api/ask`` -- ``{"question", "history"}`` in, the ``Answer`` as JSON out.
* ``GET /files/{source}`` -- a source document, read-only, only if it is indexed and
  ``kb.store.source_path`` finds it inside the corpus or uploads folder (never any other path).

Gradio's queue and its logins live in this process, so scaling out means several replicas with
sticky sessions behind a proxy, sharing a Chroma server (``ASSISTANT_CHROMA_HOST``) and a record
database (``ASSISTANT_RECORD_DB_URL``).
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import time

import gradio as gr
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.routing import Mount

from assistant.models import Answer
from kb.settings import Settings
from kb.store import source_path
from webapp.auth import User
from webapp.chat import assistant_history
from webapp.services import Services
from webapp.staff import upload_limit_bytes
from webapp.ui import CSS, build_ui

log = logging.getLogger(__name__)

# Served as text so a document can never run script in this site's origin.
_AS_TEXT = {".html", ".htm", ".md", ".markdown", ".rst", ".csv", ".txt", ".text"}


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    history: list[dict] = Field(default_factory=list, description='[{"role": "user"|"assistant", "content"}]')


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or Services.start(settings)
    app = FastAPI(title="Documents assistant", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    gradio_app: list = []  # filled after mounting; used to read Gradio's login cookie

    def request_user(request: Request) -> User | None:
        """HTTP Basic credentials, or the cookie of Gradio's login page."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return services.users.verify(name, password)
        if gradio_app:
            sub = gradio_app[0]
            token = request.cookies.get(f"access-token-{sub.cookie_id}") or request.cookies.get(
                f"access-token-unsecure-{sub.cookie_id}"
            )
            return services.users.get(sub.tokens.get(token)) if token else None
        return None

    def check_login(request: Request) -> None:
        if settings.require_login and request_user(request) is None:
            raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": 'Basic realm="assistant"'})

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
            }
        )

    @app.post("/api/ask")
    def api_ask(request: Request, body: AskRequest = Body(...)) -> JSONResponse:  # noqa: B008
        check_login(request)
        started = time.perf_counter()
        try:
            answer: Answer = services.assistant.ask(body.question, assistant_history(body.history))
        except Exception:
            log.exception("/api/ask failed")
            return JSONResponse(
                {"error": "the assistant failed to answer; see the server log"}, status_code=500
            )
        log.info("/api/ask answered in %.2fs", time.perf_counter() - started)
        return JSONResponse(answer.model_dump(mode="json"))

    @app.get("/files/{source:path}")
    def files(source: str, request: Request) -> FileResponse:
        check_login(request)
        path = source_path(settings, source) if services.kb.get_document(source) else None
        if path is None:
            raise HTTPException(404, "no such document")
        suffix = path.suffix.lower()
        media = "text/plain; charset=utf-8" if suffix in _AS_TEXT else mimetypes.guess_type(path.name)[0]
        return FileResponse(
            path,
            media_type=media or "application/octet-stream",
            content_disposition_type="inline",
            filename=path.name,
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        )

    demo = build_ui(services)
    demo.queue(default_concurrency_limit=1)
    app = gr.mount_gradio_app(
        app,
        demo,
        path="/",
        auth=services.users.gradio_auth if settings.require_login else None,
        auth_message="Sign in to use the documents assistant.",
        max_file_size=upload_limit_bytes(settings),
        blocked_paths=[str(settings.data_dir.resolve())],
        ssr_mode=False,
        run_history=False,  # would keep inputs (passwords too) in the browser
        footer_links=["api"],
        css=CSS,
        # System fonts: nothing is fetched, and every browser has them.
        theme=gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"]),
    )
    gradio_app.extend(r.app for r in app.routes if isinstance(r, Mount))
    if settings.require_login and not len(services.users):
        log.warning("ASSISTANT_REQUIRE_LOGIN is on but no users are configured: nobody can sign in")
    return app
