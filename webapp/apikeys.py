"""Per-user API keys for the OpenAI-compatible API, ``/api/ask`` and ``/files``.

A key is ``kb-`` and 43 random URL-safe characters, shown once when it is created; the record
store keeps only its SHA-256 (a copy of the database lets nobody in), a short prefix to tell keys
apart, its label, owner and times. A request carrying ``Authorization: Bearer <key>`` acts as the
key's user with that user's role (and, when collections exist, permissions); a revoked key, or
one whose user has left the users file, opens nothing. Keys live in the shared record store, so
every replica accepts them and a revocation reaches all of them within ``webapp.sessions.CACHE_S`` (5) seconds.

Staff create and revoke keys on the staff page (``webapp.pages.keys``), or from a terminal::

    python -m webapp.apikeys create alice --label "reporting script"
    python -m webapp.apikeys list
    python -m webapp.apikeys revoke 3
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from dataclasses import dataclass

import sqlalchemy as sa

from kb.locks import create_all
from webapp.sessions import RecentAnswers, digest

PREFIX = "kb-"
MAX_LABEL_CHARS = 80

_meta = sa.MetaData()
keys_table = sa.Table(
    "kb_api_keys",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("shown", sa.String(16), nullable=False),  # "kb-AbC1…" to tell keys apart
    sa.Column("user_name", sa.String(64), nullable=False, index=True),
    sa.Column("label", sa.String(MAX_LABEL_CHARS), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if that is what it is."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and 0 < len(token) <= 256 else None


@dataclass(frozen=True)
class ApiKey:
    id: int
    shown: str
    user: str
    label: str
    created_at: float
    created_by: str
    last_used_at: float | None
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiKeyStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._recent = RecentAnswers()
        create_all(engine, _meta)

    def create(self, user: str, label: str = "", created_by: str = "") -> tuple[ApiKey, str]:
        """A new key for ``user``; returns it and the secret, which is never available again."""
        secret = PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        label = " ".join(label.split())[:MAX_LABEL_CHARS]
        values = dict(
            key_sha256=digest(secret),
            shown=secret[:8] + "…",
            user_name=user,
            label=label,
            created_at=now,
            created_by=created_by or user,
        )
        with self.engine.begin() as conn:
            key_id = conn.execute(keys_table.insert().values(**values)).inserted_primary_key[0]
        return ApiKey(key_id, values["shown"], user, label, now, values["created_by"], None, None), secret

    def list(self, user: str | None = None) -> list[ApiKey]:
        """Every key (or ``user``'s), newest first, revoked ones included."""
        t = keys_table
        query = sa.select(
            t.c.id,
            t.c.shown,
            t.c.user_name,
            t.c.label,
            t.c.created_at,
            t.c.created_by,
            t.c.last_used_at,
            t.c.revoked_at,
        ).order_by(t.c.id.desc())
        if user is not None:
            query = query.where(t.c.user_name == user)
        with self.engine.connect() as conn:
            return [ApiKey(*row) for row in conn.execute(query).all()]

    def revoke(self, key_id: int) -> bool:
        """Revoke a key (kept, marked, for the record); False when no active key has that id."""
        t = keys_table
        with self.engine.begin() as conn:
            done = conn.execute(
                t.update().where(t.c.id == key_id, t.c.revoked_at.is_(None)).values(revoked_at=time.time())
            ).rowcount
        self._recent.forget()
        return bool(done)

    def user(self, secret: str | None) -> str | None:
        """The user an active key belongs to (None: no such key, or revoked). Answers are kept
        ``webapp.sessions.CACHE_S`` seconds, as every request of a client asks."""
        if not secret or not secret.startswith(PREFIX) or len(secret) > 128:
            return None
        key = digest(secret)
        known, user = self._recent.get(key)
        if known:
            return user
        t = keys_table
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(t.c.id, t.c.user_name).where(t.c.key_sha256 == key, t.c.revoked_at.is_(None))
            ).first()
            if row is not None:
                conn.execute(t.update().where(t.c.id == row[0]).values(last_used_at=time.time()))
        return self._recent.put(key, row[1] if row else None)


def main(argv: list[str] | None = None) -> int:
    from kb.settings import ConfigError, load_settings
    from kb.store import KnowledgeBase
    from webapp.auth import UserStore

    ap = argparse.ArgumentParser(prog="python -m webapp.apikeys", description="Manage API keys.")
    sub = ap.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key for a user; prints the key once")
    create.add_argument("user")
    create.add_argument("--label", default="")
    sub.add_parser("list", help="list keys (never the secrets)")
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id", type=int)
    args = ap.parse_args(argv)
    try:
        settings = load_settings()
        kb = KnowledgeBase(settings)
        users = UserStore.from_settings(settings, kb.engine)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = ApiKeyStore(kb.engine)
    if args.command == "create":
        if users.get(args.user) is None:
            print(f"error: no user named {args.user!r} in the users file", file=sys.stderr)
            return 2
        key, secret = store.create(args.user, args.label, created_by="cli")
        print(secret)
        print(f"key {key.id} for {key.user}: keep it now, it is not shown again", file=sys.stderr)
    elif args.command == "list":
        for k in store.list():
            state = "revoked" if k.revoked_at else "active"
            print(f"{k.id}\t{k.shown}\t{k.user}\t{state}\t{k.label}")
    elif not store.revoke(args.id):
        print(f"error: no active key {args.id}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
