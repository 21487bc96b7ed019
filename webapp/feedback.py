"""Like/dislike votes on answers, kept in SQLite in the data dir for staff to review and export."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kb.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    user TEXT NOT NULL,
    vote TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    sources TEXT NOT NULL
)
"""
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
    """One small table; a connection per call keeps it safe across Gradio's worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.execute(_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackStore:
        return cls(settings.data_dir / "feedback.sqlite")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def add(self, item: FeedbackItem) -> int:
        if item.vote not in VOTES:
            raise ValueError(f"a vote is one of {VOTES}, not {item.vote!r}")
        item.created_at = item.created_at or time.time()
        with self._lock, self._connect() as conn:
            cur = conn.execute(
                "INSERT INTO feedback (created_at, user, vote, question, answer, sources)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (item.created_at, item.user, item.vote, item.question, item.answer, json.dumps(item.sources)),
            )
            item.id = cur.lastrowid
        return item.id or 0

    def items(self, limit: int | None = None) -> list[FeedbackItem]:
        """Newest first."""
        query = "SELECT id, created_at, user, vote, question, answer, sources FROM feedback ORDER BY id DESC"
        params: tuple = ()
        if limit:
            query += " LIMIT ?"
            params = (limit,)
        with self._connect() as conn:
            rows = conn.execute(query, params).fetchall()
        return [
            FeedbackItem(
                id=r[0],
                created_at=r[1],
                user=r[2],
                vote=r[3],
                question=r[4],
                answer=r[5],
                sources=json.loads(r[6]),
            )
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        with self._connect() as conn:
            return dict(conn.execute("SELECT vote, COUNT(*) FROM feedback GROUP BY vote").fetchall())

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
