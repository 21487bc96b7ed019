"""Sign-in sessions: a random token in an HttpOnly, SameSite cookie, its hash in the record store.

The cookie is the only thing that says who a browser or client is: not the Gradio
``session_hash`` (which any client may send), not a value in the page. The server keeps only
the SHA-256 of each token, so a copy of the database signs nobody in; sessions live in the shared
record store, so they hold across restarts and replicas, and signing out ends them everywhere.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import sqlalchemy as sa
from starlette.requests import HTTPConnection
from starlette.responses import Response

from kb.locks import create_all
from kb.settings import Settings

COOKIE = "kb_session"
CACHE_S = 5.0
BROWSER_COOKIE = "kb_browser"  # a random id per browser: whose saved conversations, when not signed in
BROWSER_MAX_AGE_S = 400 * 24 * 3600  # the most browsers keep a cookie
_BROWSER_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")

_meta = sa.MetaData()
sessions_table = sa.Table(
    "web_sessions",
    _meta,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RecentAnswers:
    """Who a credential's digest belonged to, for ``CACHE_S`` seconds: every request of a page or
    client asks, and the database need not answer each one. Bounded: cleared past 10,000."""

    def __init__(self) -> None:
        self._found: dict[str, tuple[float, str | None]] = {}  # digest -> (until, user)

    def get(self, key: str) -> tuple[bool, str | None]:
        hit = self._found.get(key)
        return (True, hit[1]) if hit is not None and hit[0] > time.monotonic() else (False, None)

    def put(self, key: str, user: str | None) -> str | None:
        if len(self._found) > 10_000:
            self._found.clear()
        self._found[key] = (time.monotonic() + CACHE_S, user)
        return user

    def forget(self, key: str | None = None) -> None:
        """One digest, or (None) all of them."""
        if key is None:
            self._found.clear()
        else:
            self._found.pop(key, None)


class SessionStore:
    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.max_age_s = int(settings.session_hours * 3600)
        self.https_only = bool(settings.public_url and settings.public_url.startswith("https://"))
        self._recent = RecentAnswers()
        create_all(engine, _meta)

    def create(self, user: str) -> str:
        """A new session for ``user``; returns the token the cookie carries."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        t = sessions_table
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.expires_at < now))  # housekeeping, cheap with the index
            conn.execute(
                t.insert().values(
                    token_sha256=digest(token), user=user, created_at=now, expires_at=now + self.max_age_s
                )
            )
        return token

    def user(self, token: str | None) -> str | None:
        """The user a token belongs to, if it is a live session.

        Every request of a page (assets, queue polls) asks, so answers are kept for
        ``CACHE_S`` seconds: a sign-out on another replica takes that long to reach this one."""
        if not token or len(token) > 128:
            return None
        key = digest(token)
        known, user = self._recent.get(key)
        if known:
            return user
        t = sessions_table
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.user).where(t.c.token_sha256 == key, t.c.expires_at > time.time())
            ).first()
        return self._recent.put(key, row[0] if row else None)

    def end(self, token: str | None) -> None:
        if token:
            key = digest(token)
            self._recent.forget(key)
            with self.engine.begin() as conn:
                conn.execute(sessions_table.delete().where(sessions_table.c.token_sha256 == key))

    # --- the cookie -------------------------------------------------------------------------------
    def from_request(self, request: HTTPConnection) -> str | None:
        """The signed-in user name of a request (None: anonymous)."""
        return self.user(request.cookies.get(COOKIE))

    def is_https(self, request: HTTPConnection) -> bool:
        """Cookies get ``Secure`` when the public URL is https or the request came over https
        (uvicorn sets the scheme from the proxy's X-Forwarded-Proto for trusted proxies)."""
        return self.https_only or request.url.scheme == "https"

    def set_cookie(self, response: Response, token: str, request: HTTPConnection) -> None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=self.max_age_s,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.is_https(request),
        )

    def clear_cookie(self, response: Response, request: HTTPConnection) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=self.is_https(request))


# --- the browser id ---------------------------------------------------------------------------
def new_browser_id() -> str:
    return secrets.token_urlsafe(32)


def browser_id(conn: HTTPConnection) -> str | None:
    """The browser's random id from its cookie (``webapp.security.BrowserCookie`` sets it), if
    well formed. It says "the same browser as before", never who someone is."""
    value = conn.cookies.get(BROWSER_COOKIE, "")
    return value if _BROWSER_ID.fullmatch(value) else None


def browser_owner(token: str) -> str:
    """The owner key a browser's saved data is filed under: a hash, so a copy of the database
    cannot be replayed as a cookie."""
    return "browser:" + digest(token)
