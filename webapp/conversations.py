"""Saved conversations: each owner's chats, kept in the record store (SQLite in the data dir, or
the shared PostgreSQL of a scaled-out install), so a reload or another replica continues them.

An owner is a signed-in user (``user:<name>``) or, when sign-in is not required, one browser
(``browser:<sha256 of a random cookie>``, see ``webapp.security.BrowserId``). Every call names
the owner and touches only that owner's rows: a conversation id from the page is a handle, not a
permission. Each exchange is stored with its whole ``Answer`` (citations and passages), so an old
answer still opens its passages.

Callable from Python without Gradio; ``webapp.pages.chat`` is the thin UI over it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa

from assistant.models import Answer
from kb.locks import create_all

TITLE_CHARS = 80
LISTED = 200  # conversations a list shows (newest first)

_meta = sa.MetaData()
conversations_table = sa.Table(
    "kb_conversations",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("title", sa.String(TITLE_CHARS), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_kb_conversations_owner", "owner", "updated_at"),
)
exchanges_table = sa.Table(
    "kb_conversation_turns",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "conversation_id",
        sa.String(32),
        sa.ForeignKey("kb_conversations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer_text", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),  # the Answer as JSON
)


def title_from(question: str) -> str:
    """A conversation's first title: its first question on one line, cut at a word."""
    line = " ".join(question.split())
    if len(line) <= TITLE_CHARS:
        return line or "New chat"
    return line[: TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    updated_at: float


@dataclass(frozen=True)
class Exchange:
    question: str
    answer: Answer


@dataclass(frozen=True)
class SavedConversation:
    id: str
    title: str
    exchanges: list[Exchange]


class ConversationStore:
    """Two tables in the record store; every call takes its own connection from the pool."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_all(engine, _meta)

    def create(self, owner: str, first_question: str) -> str:
        """A new, empty conversation titled after its first question; returns its id."""
        cid, now = secrets.token_urlsafe(16), time.time()
        with self.engine.begin() as conn:
            conn.execute(
                conversations_table.insert().values(
                    id=cid, owner=owner, title=title_from(first_question), created_at=now, updated_at=now
                )
            )
        return cid

    def add(self, owner: str, cid: str, question: str, answer: Answer) -> bool:
        """Append one exchange; False when ``cid`` is not ``owner``'s (deleted meanwhile)."""
        t, now = conversations_table, time.time()
        with self.engine.begin() as conn:
            touched = conn.execute(
                t.update().where(t.c.id == cid, t.c.owner == owner).values(updated_at=now)
            ).rowcount
            if not touched:
                return False
            conn.execute(
                exchanges_table.insert().values(
                    conversation_id=cid,
                    created_at=now,
                    question=question,
                    answer_text=answer.text,
                    answer=answer.model_dump_json(),
                )
            )
        return True

    def list(self, owner: str, search: str = "", limit: int = LISTED) -> list[ConversationSummary]:
        """``owner``'s conversations, newest first; ``search`` matches titles and the text of
        questions and answers (case-insensitive)."""
        t, e = conversations_table, exchanges_table
        query = sa.select(t.c.id, t.c.title, t.c.updated_at).where(t.c.owner == owner)
        words = search.split()
        for word in words[:8]:
            pattern = f"%{_escape_like(word)}%"
            in_text = (
                sa.select(e.c.id)
                .where(
                    e.c.conversation_id == t.c.id,
                    sa.or_(
                        e.c.question.ilike(pattern, escape="\\"), e.c.answer_text.ilike(pattern, escape="\\")
                    ),
                )
                .exists()
            )
            query = query.where(sa.or_(t.c.title.ilike(pattern, escape="\\"), in_text))
        query = query.order_by(t.c.updated_at.desc(), t.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [ConversationSummary(*row) for row in conn.execute(query).all()]

    def get(self, owner: str, cid: str) -> SavedConversation | None:
        """The conversation with every exchange in order, or None when it is not ``owner``'s."""
        t, e = conversations_table, exchanges_table
        with self.engine.connect() as conn:
            head = conn.execute(sa.select(t.c.title).where(t.c.id == cid, t.c.owner == owner)).first()
            if head is None:
                return None
            rows = conn.execute(
                sa.select(e.c.question, e.c.answer).where(e.c.conversation_id == cid).order_by(e.c.id)
            ).all()
        exchanges = [Exchange(q, Answer.model_validate_json(a)) for q, a in rows]
        return SavedConversation(cid, head[0], exchanges)

    def rename(self, owner: str, cid: str, title: str) -> bool:
        title = " ".join(title.split())[:TITLE_CHARS]
        if not title:
            return False
        t = conversations_table
        with self.engine.begin() as conn:
            return bool(
                conn.execute(t.update().where(t.c.id == cid, t.c.owner == owner).values(title=title)).rowcount
            )

    def delete(self, owner: str, cid: str) -> bool:
        t = conversations_table
        with self.engine.begin() as conn:
            if not conn.execute(sa.select(t.c.id).where(t.c.id == cid, t.c.owner == owner)).first():
                return False
            # explicit: SQLite enforces ON DELETE CASCADE only with a pragma
            conn.execute(exchanges_table.delete().where(exchanges_table.c.conversation_id == cid))
            conn.execute(t.delete().where(t.c.id == cid))
        return True


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
