"""The keyword side of retrieval: each chunk's analysed terms in the database's own full-text
engine, kept by ingestion next to the record manager and ranked by the engine.

* SQLite (the embedded default): an FTS5 table ranked by its ``bm25()``, plus a plain table
  mapping FTS rowids to chunk ids and sources.
* PostgreSQL (``ASSISTANT_RECORD_DB_URL=postgresql+psycopg://...``): one table with a
  ``tsvector`` column under a GIN index, queried with OR semantics; the best matches by
  idf-weighted ``ts_rank`` (fast through the index) are ranked by BM25 from their term counts.

Both store the terms of ``kb.terms.terms`` (stop words out, Snowball stems), never the engine's
own analysis, so the two dialects, the extractive answerer and the query agree on what a term
is. Each collection gets its own tables, so ranking statistics are per collection.

Rows are keyed by the chunk id Chroma and the record manager use. Writes are upserts and
deletes by id or source, so a killed ingest converges on re-run; nothing here is rebuilt at
question time and no process holds the chunk texts in memory.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from kb.access import Scope, source_filter
from kb.settings import ConfigError

BM25_K1, BM25_B = 1.2, 0.75  # FTS5's (and most engines') defaults
RESCORED = 100  # PostgreSQL: candidates ranked by BM25 itself
MAX_TERM_CHARS = 64  # longer "words" (hashes, base64, URLs) are noise to keyword search
_BATCH = 500  # ids per IN (...) list: well under every database's variable limit


@dataclass(frozen=True)
class KeywordRow:
    """One chunk as the keyword index holds it."""

    id: str
    source: str
    terms: Sequence[str]


def usable_terms(terms: Iterable[str]) -> list[str]:
    """Terms the index keeps: not empty, not absurdly long (Postgres refuses lexemes > 2 KB)."""
    return [t for t in terms if t and len(t) <= MAX_TERM_CHARS]


def _batches(items: Sequence, size: int = _BATCH) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def table_key(collection: str) -> str:
    """A safe, unique SQL name part for a collection (names may hold ``.`` and ``-``)."""
    slug = re.sub(r"[^a-z0-9]+", "_", collection.lower()).strip("_")[:32]
    return f"{slug}_{hashlib.sha256(collection.encode()).hexdigest()[:8]}"


class KeywordIndex(ABC):
    """Chunk terms in a full-text engine: upsert, delete, list by source, search."""

    # Postings one question's search may read: the rarest terms go first, and a term that would
    # pass the budget is left out with every more common one. Common terms weigh least in the
    # ranking and the dense side still sees them; below the budget (every collection of a few
    # thousand chunks) nothing is left out. Set from the measured cost per posting on 2 cores.
    max_postings: int = 15_000

    def __init__(self, engine: sa.Engine, collection: str) -> None:
        self.engine = engine
        self.collection = collection
        self.key = table_key(collection)
        self.id_table = f'"kb_kw_{self.key}"'  # one row per chunk: chunk_id, source (+ dialect's own)

    @abstractmethod
    def create(self) -> None:
        """Create the tables if missing (idempotent)."""

    @abstractmethod
    def add(self, rows: Sequence[KeywordRow]) -> None:
        """Insert or replace rows by chunk id, in one transaction."""

    @abstractmethod
    def delete(self, ids: Iterable[str]) -> None:
        """Remove rows by chunk id (unknown ids are ignored)."""

    def ids(self, source: str) -> set[str]:
        """Chunk ids held for one source."""
        stmt = sa.text(f"SELECT chunk_id FROM {self.id_table} WHERE source = :source")
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(stmt, {"source": source})}

    def search(self, terms: Sequence[str], n: int, scope: Scope | None = None) -> list[tuple[str, float]]:
        """Up to ``n`` (chunk id, score) holding any of ``terms``, best first; higher is better.
        With a ``scope``, only chunks of the sources it allows are ranked."""
        wanted = list(dict.fromkeys(usable_terms(terms)))
        if not wanted:
            return []
        where = ""
        if scope is not None and not scope.unlimited:
            condition = source_filter(sa.column("source"), scope)
            compiled = condition.compile(self.engine, compile_kwargs={"literal_binds": True})
            where = f" AND ({compiled})"
        return self._search(self.within_budget(wanted), n, where)

    def within_budget(self, terms: Sequence[str]) -> list[str]:
        """The rarest of ``terms`` whose postings together stay within ``max_postings`` (at least one)."""
        freqs = self.doc_freqs(terms)
        kept, total = [], 0
        for term in sorted(terms, key=lambda t: freqs.get(t, 0)):
            total += freqs.get(term, 0)
            if kept and total > self.max_postings:
                break
            kept.append(term)
        return kept

    @abstractmethod
    def doc_freqs(self, terms: Sequence[str]) -> dict[str, int]:
        """How many rows hold each term (exact or the database's estimate; absent: rare)."""

    @abstractmethod
    def _search(self, terms: Sequence[str], n: int, where: str = "") -> list[tuple[str, float]]:
        """``search`` over terms already chosen; ``where``: an SQL condition on the id table's
        ``source`` (literals escaped by SQLAlchemy), prefixed with " AND "."""

    @abstractmethod
    def refresh_stats(self) -> None:
        """Bring the database's term statistics up to date after an ingest."""

    def count(self) -> int:
        """Rows held."""
        with self.engine.connect() as conn:
            return conn.exec_driver_sql(f"SELECT count(*) FROM {self.id_table}").scalar_one()

    def all_ids(self, page: int = 10_000) -> Iterator[str]:
        """Every chunk id held, read in pages by id (for consistency checks)."""
        after = ""
        stmt = sa.text(
            f"SELECT chunk_id FROM {self.id_table} WHERE chunk_id > :after ORDER BY chunk_id LIMIT :n"
        )
        while True:
            with self.engine.connect() as conn:
                ids = [r[0] for r in conn.execute(stmt, {"after": after, "n": page})]
            yield from ids
            if len(ids) < page:
                return
            after = ids[-1]

    @abstractmethod
    def clear(self) -> None:
        """Remove every row of this collection."""


class SQLiteKeywordIndex(KeywordIndex):
    """FTS5 with ``bm25()``; terms keep their inner ``-``, ``'`` and ``.`` ("co-financ", "3.5")."""

    max_postings = 10_000  # ~1.3 us each (at 100k chunks: p95 ~20 ms, 15k: ~31 ms)

    TOKENIZE = "unicode61 remove_diacritics 0 tokenchars '-''._'"

    def __init__(self, engine: sa.Engine, collection: str) -> None:
        super().__init__(engine, collection)
        self.fts = f'"kb_fts_{self.key}"'
        self.vocab = f'"kb_fts_{self.key}_vocab"'

    def create(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {self.id_table} "
                "(rowid INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, source TEXT NOT NULL)"
            )
            conn.exec_driver_sql(
                f'CREATE INDEX IF NOT EXISTS "kb_kw_{self.key}_source" ON {self.id_table} (source)'
            )
            conn.exec_driver_sql(
                f'CREATE VIRTUAL TABLE IF NOT EXISTS {self.fts} USING fts5(terms, tokenize="{self.TOKENIZE}")'
            )
            conn.exec_driver_sql(  # FTS5's own term statistics, read per question
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.vocab} USING fts5vocab({self.fts}, 'row')"
            )

    def _rowids(self, conn: sa.Connection, ids: Sequence[str]) -> dict[str, int]:
        """chunk id -> rowid of those of ``ids`` held."""
        marks = ",".join("?" * len(ids))
        query = f"SELECT chunk_id, rowid FROM {self.id_table} WHERE chunk_id IN ({marks})"
        return dict(conn.exec_driver_sql(query, tuple(ids)).all())

    def _delete_rowids(self, conn: sa.Connection, rowids: Sequence[int]) -> None:
        if rowids:
            marks = ",".join("?" * len(rowids))
            conn.exec_driver_sql(f"DELETE FROM {self.fts} WHERE rowid IN ({marks})", tuple(rowids))
            conn.exec_driver_sql(f"DELETE FROM {self.id_table} WHERE rowid IN ({marks})", tuple(rowids))

    def add(self, rows: Sequence[KeywordRow]) -> None:
        rows = list({r.id: r for r in rows}.values())
        with self.engine.begin() as conn:
            for batch in _batches(rows):
                ids = [r.id for r in batch]
                self._delete_rowids(conn, list(self._rowids(conn, ids).values()))
                conn.exec_driver_sql(
                    f"INSERT INTO {self.id_table} (chunk_id, source) VALUES (?, ?)",
                    [(r.id, r.source) for r in batch],
                )
                rowid = self._rowids(conn, ids)
                conn.exec_driver_sql(
                    f"INSERT INTO {self.fts} (rowid, terms) VALUES (?, ?)",
                    [(rowid[r.id], " ".join(usable_terms(r.terms))) for r in batch],
                )

    def delete(self, ids: Iterable[str]) -> None:
        ids = sorted(set(ids))
        with self.engine.begin() as conn:
            for batch in _batches(ids):
                self._delete_rowids(conn, list(self._rowids(conn, batch).values()))

    def refresh_stats(self) -> None:
        return  # fts5vocab reads FTS5's own counts, always current

    def doc_freqs(self, terms: Sequence[str]) -> dict[str, int]:
        marks = ",".join("?" * len(terms))
        query = f"SELECT term, doc FROM {self.vocab} WHERE term IN ({marks})"
        with self.engine.connect() as conn:
            return dict(conn.exec_driver_sql(query, tuple(terms)).all())

    def _search(self, terms: Sequence[str], n: int, where: str = "") -> list[tuple[str, float]]:
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        # Rank inside the FTS table alone (FTS5's fast path for ORDER BY rank LIMIT), then map;
        # limited to some sources, the filter joins first (the ranked rows stay within the budget).
        query = (
            f"WITH top AS (SELECT rowid, rank FROM {self.fts} WHERE {self.fts} MATCH ? "
            f"ORDER BY rank LIMIT ?) SELECT m.chunk_id, -top.rank FROM top "
            f"JOIN {self.id_table} m ON m.rowid = top.rowid ORDER BY top.rank"
        )
        if where:
            query = (
                f"SELECT chunk_id, -rank FROM {self.fts} JOIN {self.id_table} m ON m.rowid = {self.fts}.rowid "
                f"WHERE {self.fts} MATCH ? {where} ORDER BY rank LIMIT ?"
            )
        with self.engine.connect() as conn:
            return [(cid, float(score)) for cid, score in conn.exec_driver_sql(query, (match, n))]

    def clear(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM {self.fts}")
            conn.exec_driver_sql(f"DELETE FROM {self.id_table}")


def _lexeme(term: str) -> str:
    """A tsvector/tsquery literal lexeme: quoted, so Postgres takes it as it is (no parsing)."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(terms: Sequence[str]) -> str:
    """``'term':1,4 'other':2`` with each term's positions (Postgres keeps up to 256 per term
    and positions up to 16,383), so ``ts_rank`` sees frequencies (and ``ts_rank_cd`` could see proximity)."""
    positions: dict[str, list[int]] = {}
    for pos, term in enumerate(usable_terms(terms), start=1):
        found = positions.setdefault(term, [])
        if len(found) < 256 and pos <= 16383:
            found.append(pos)
    return " ".join(f"{_lexeme(t)}:{','.join(map(str, p))}" for t, p in positions.items() if p)


class PostgresKeywordIndex(KeywordIndex):
    """``tsvector`` + GIN; OR query of the exact lexemes; the ``RESCORED`` best by the sum of
    each term's ``ts_rank`` weighted by its idf are ranked by BM25 (k1 1.2, b 0.75; a chunk's
    length is its number of distinct terms), which brought hit@1 on SQuAD and Solana up to
    SQLite's FTS5 (0.812 -> 0.844, 0.793 -> 0.828).

    ``ts_rank_cd`` was measured 4x slower per matching row (140 vs 33 ms for 11k matches at 100k
    chunks). The planner costs neither, so it picks a sequential scan for a filter matching ~10%
    of rows, which then ranks 6x slower than through the GIN index; the search turns
    sequential scans off for its own transaction."""

    max_postings = 8_000  # ~3 us each, ranking included

    def __init__(self, engine: sa.Engine, collection: str) -> None:
        super().__init__(engine, collection)
        self._stats: tuple[float, dict[str, int], float] | None = None  # (read at, lexeme -> rows, rows)
        self._avgdl: tuple[float, float] | None = None  # (read at, distinct terms per chunk)

    def create(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {self.id_table} "
                "(chunk_id TEXT PRIMARY KEY, source TEXT NOT NULL, terms TSVECTOR NOT NULL)"
            )
            conn.exec_driver_sql(
                f'CREATE INDEX IF NOT EXISTS "kb_kw_{self.key}_source" ON {self.id_table} (source)'
            )
            conn.exec_driver_sql(
                f'CREATE INDEX IF NOT EXISTS "kb_kw_{self.key}_terms" ON {self.id_table} USING GIN (terms)'
            )

    def add(self, rows: Sequence[KeywordRow]) -> None:
        rows = sorted({r.id: r for r in rows}.values(), key=lambda r: r.id)  # fixed lock order
        upsert = sa.text(
            f"INSERT INTO {self.id_table} (chunk_id, source, terms) "
            "VALUES (:id, :source, CAST(:terms AS tsvector)) "
            "ON CONFLICT (chunk_id) DO UPDATE SET source = excluded.source, terms = excluded.terms"
        )
        with self.engine.begin() as conn:
            for batch in _batches(rows):
                conn.execute(
                    upsert,
                    [{"id": r.id, "source": r.source, "terms": tsvector_literal(r.terms)} for r in batch],
                )

    def delete(self, ids: Iterable[str]) -> None:
        ids = sorted(set(ids))
        stmt = sa.text(f"DELETE FROM {self.id_table} WHERE chunk_id = ANY(:ids)")
        with self.engine.begin() as conn:
            for batch in _batches(ids):
                conn.execute(stmt, {"ids": list(batch)})

    def doc_freqs(self, terms: Sequence[str]) -> dict[str, int]:
        """Estimates from PostgreSQL's own statistics of the column (``ANALYZE`` keeps the most
        common lexemes with their frequencies); read once a minute."""
        now = time.monotonic()
        if self._stats is None or now - self._stats[0] > 60:
            stmt = sa.text(
                "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples "
                "FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename "
                "WHERE s.tablename = :t AND s.attname = 'terms' AND s.schemaname = current_schema()"
            )
            with self.engine.connect() as conn:
                row = conn.execute(stmt, {"t": self.id_table.strip('"')}).first()
            freqs: dict[str, int] = {}
            total = max(row[2], 0) if row else 0
            if row and row[0] and row[1]:
                freqs = {lexeme: int(f * total) for lexeme, f in zip(row[0], row[1])}
            self._stats = (now, freqs, total)
        known = self._stats[1]
        return {t: known[t] for t in terms if t in known}

    def idf_weights(self, terms: Sequence[str]) -> list[float]:
        """BM25's idf, log(1 + (N - n + 0.5) / (n + 0.5)), from the statistics' estimates; a term
        they do not list is taken as no more common than the rarest one they do."""
        freqs = self.doc_freqs(terms)
        _, known, total = self._stats or (0, {}, 0)
        if not total or not known:
            return [1.0] * len(terms)
        floor = min(known.values())
        dfs = [min(freqs.get(t, floor), total) for t in terms]
        return [math.log(1 + (total - n + 0.5) / (n + 0.5)) for n in dfs]

    def refresh_stats(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"ANALYZE {self.id_table}")
        self._stats = self._avgdl = None

    def _search(self, terms: Sequence[str], n: int, where: str = "") -> list[tuple[str, float]]:
        # Candidates: each term's ts_rank (its frequency in the chunk) weighted by its idf, which
        # the GIN index serves fast (ts_rank of the whole OR query has no idf, and lost 0.03-0.04
        # hit@5 on two dev sets). Then BM25 itself over the best RESCORED of them, from each
        # candidate's term counts and length, as SQLite's FTS5 ranks.
        weights = self.idf_weights(terms)
        score = " + ".join(
            f"CAST(:w{i} AS float8) * ts_rank(terms, CAST(:q{i} AS tsquery))" for i in range(len(terms))
        )
        stmt = sa.text(
            f"WITH top AS (SELECT chunk_id, terms, {score} AS score FROM {self.id_table} "
            f"WHERE terms @@ CAST(:q AS tsquery){where.replace(':', chr(92) + ':')} "  # a literal's ":" is no parameter
            "ORDER BY score DESC, chunk_id LIMIT :m) "
            "SELECT chunk_id, length(terms), ARRAY(SELECT u.lexeme || ' ' || "
            "coalesce(array_length(u.positions, 1), 1) FROM unnest(terms) u "
            "WHERE u.lexeme = ANY(CAST(:terms AS text[]))) FROM top"
        )
        params: dict = {
            "q": " | ".join(_lexeme(t) for t in terms),
            "m": max(n, RESCORED),
            "terms": list(terms),
        }
        for i, (term, weight) in enumerate(zip(terms, weights)):
            params[f"q{i}"], params[f"w{i}"] = _lexeme(term), weight
        with self.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = conn.execute(stmt, params).all()
        idf = dict(zip(terms, weights))
        avgdl = self.average_length()
        scored = []
        for cid, length, counts in rows:
            norm = BM25_K1 * (1 - BM25_B + BM25_B * length / avgdl)
            bm25 = 0.0
            for item in counts:
                lexeme, _, tf = item.rpartition(" ")
                bm25 += idf.get(lexeme, 0.0) * int(tf) * (BM25_K1 + 1) / (int(tf) + norm)
            scored.append((cid, bm25))
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored[:n]

    def average_length(self) -> float:
        """Distinct terms per chunk, averaged over a sample of rows; read once a minute."""
        now = time.monotonic()
        if self._avgdl is None or now - self._avgdl[0] > 60:
            stmt = sa.text(f"SELECT avg(length(terms)) FROM (SELECT terms FROM {self.id_table} LIMIT 2000) s")
            with self.engine.connect() as conn:
                self._avgdl = (now, float(conn.execute(stmt).scalar() or 1.0))
        return max(self._avgdl[1], 1.0)

    def clear(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM {self.id_table}")


def open_keyword_index(engine: sa.Engine, collection: str) -> KeywordIndex:
    """The keyword index for the record store's database, its tables created."""
    dialects = {"sqlite": SQLiteKeywordIndex, "postgresql": PostgresKeywordIndex}
    kind = dialects.get(engine.dialect.name)
    if kind is None:
        raise ConfigError(
            f"ASSISTANT_RECORD_DB_URL: {engine.dialect.name} is not supported for the keyword "
            "index; use SQLite (the default) or PostgreSQL"
        )
    found = kind(engine, collection)
    found.create()
    return found
