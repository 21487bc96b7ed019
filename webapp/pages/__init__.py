"""The tabs of the Gradio page, one module each (chat, documents, evaluation); ``webapp.ui``
assembles them. What they share lives here: who is asking, and the one staff check.

Who may do what is decided on the server in every handler, never by what the page shows. The
caller is the session cookie of the request (``webapp.sessions``), never a value the page sends:
every staff handler starts with ``require_staff(...)``, which raises ``gr.Error`` otherwise, and
is registered with ``api_visibility="private"`` (that only hides it from the API page: the role
check is what refuses a caller).
"""

from __future__ import annotations

import logging

import gradio as gr

from webapp.auth import PermissionDenied, User
from webapp.auth import require_staff as _require_staff
from webapp.services import Services
from webapp.sessions import browser_id, browser_owner

log = logging.getLogger(__name__)

PRIVATE = "private"
BAD_COLLECTION_NAME = "A collection name is letters, digits, spaces, '.', '_' or '-' (64 at most)."


def caller(services: Services, request: gr.Request | None) -> User | None:
    """The signed-in user of a Gradio event (its session cookie), or None."""
    return services.user_of(request) if request is not None else None


def owner(services: Services, request: gr.Request | None) -> str | None:
    """Whose saved conversations an event sees: the signed-in user, else this browser (its
    random cookie), else nobody (a client that keeps no cookie saves nothing)."""
    user = caller(services, request)
    if user is not None:
        return "user:" + user.name
    token = browser_id(request) if request is not None else None
    return browser_owner(token) if token else None


def require_staff(services: Services, request: gr.Request | None) -> User:
    try:
        return _require_staff(caller(services, request))
    except PermissionDenied as exc:
        log.warning("refused staff action: %s", exc)
        raise gr.Error(str(exc), title="Not allowed") from None


def table(headers: list[str], rows: list[list] | None = None) -> dict:
    return {"headers": headers, "data": rows or []}


def progress_reporter(progress: gr.Progress, what: str = "Ingesting"):
    """Adapts ``progress(done, total, name)`` callbacks (ingest, evaluation) to ``gr.Progress``."""

    def report(done: int, total: int, name: str) -> None:
        progress((done, total or None), desc=f"{what} {name}" if name else "Finishing", unit="steps")

    return report
