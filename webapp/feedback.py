"""Like/dislike votes on answers, kept in the record store (SQLite in the data dir, or the
shared PostgreSQL of a scaled-out install) for staff to review and export."""

from __future__ import annotations

import csv
import io
import json
import logging
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

from kb.locks import create_all

log = logging.getLogger(__name__)

_meta = sa.MetaData()
feedback_table = sa.Table(
    "kb_feedback",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("user_name", sa.String(256), nullable=False),
    sa.Column("vote", sa.String(8), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("sources", sa.Text, nullable=False),  # JSON list
)
CSV_COLUMNS = ("id", "time_utc", "user", "vote", "question", "answer", "sources")
VOTES = ("up", "down")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: one starting like a formula (``=HYPERLINK(...)``) is
    prefixed with an apostrophe, as OWASP advises against CSV injection."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


@dataclass
class FeedbackItem:
    question: str
    answer: str
    vote: str  # "up" | "down"
    user: str = "anonymous"
    sources: list[str] = field(default_factory=list)  # cited passages as "source#page" / "source"
    created_at: float = 0.0
    id: int | None = None

    @property
    def time_utc(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.created_at))


class FeedbackStore:
    """One table in the record store; every call takes its own connection from the engine's pool."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_all(engine, _meta)

    @classmethod
    def open(cls, url: str) -> FeedbackStore:
        return cls(sa.create_engine(url))

    def import_legacy(self, path: Path) -> int:
        """Move the votes of an older version's ``feedback.sqlite`` in here, once (the file is
        renamed ``*.imported``); returns how many."""
        if not path.is_file():
            return 0
        with sqlite3.connect(path) as conn:
            rows = conn.execute(
                "SELECT created_at, user, vote, question, answer, sources FROM feedback"
            ).fetchall()
        if rows:
            keys = ("created_at", "user_name", "vote", "question", "answer", "sources")
            with self.engine.begin() as conn:
                conn.execute(feedback_table.insert(), [dict(zip(keys, r)) for r in rows])
        path.rename(path.with_name(path.name + ".imported"))
        log.warning("moved %d feedback votes from %s into the record store", len(rows), path)
        return len(rows)

    def add(self, item: FeedbackItem) -> int:
        if item.vote not in VOTES:
            raise ValueError(f"a vote is one of {VOTES}, not {item.vote!r}")
        item.created_at = item.created_at or time.time()
        values = {
            "created_at": item.created_at,
            "user_name": item.user,
            "vote": item.vote,
            "question": item.question,
            "answer": item.answer,
            "sources": json.dumps(item.sources),
        }
        with self.engine.begin() as conn:
            item.id = conn.execute(feedback_table.insert().values(**values)).inserted_primary_key[0]
        return item.id or 0

    def items(self, limit: int | None = None) -> list[FeedbackItem]:
        """Newest first."""
        t = feedback_table
        query = sa.select(t).order_by(t.c.id.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            FeedbackItem(
                id=r["id"],
                created_at=r["created_at"],
                user=r["user_name"],
                vote=r["vote"],
                question=r["question"],
                answer=r["answer"],
                sources=json.loads(r["sources"]),
            )
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        t = feedback_table
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(t.c.vote, sa.func.count()).group_by(t.c.vote)).all())

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for item in reversed(self.items()):
            row = [item.id, item.time_utc, item.user, item.vote, item.question, item.answer]
            writer.writerow([csv_cell(v) for v in [*row, "; ".join(item.sources)]])
        return out.getvalue()

    @staticmethod
    def as_dict(item: FeedbackItem) -> dict:
        return asdict(item) | {"time_utc": item.time_utc}
