"""The knowledge base both ingestion and answering use: Chroma collection, keyword index,
record manager, document registry and the ingest lock, all opened from one ``Settings``.

Chroma holds the chunks and vectors. A SQL database (SQLite in the data dir, or PostgreSQL
shared between machines) holds LangChain's record manager, which makes indexing incremental;
the keyword index (``kb.keyword``), written through the same vector store calls so both
engines hold the same chunk ids; a small ``documents`` table: one row per indexed file with the
content hash that lets an unchanged file be skipped without being read or embedded again; and
a ``kb_file_problems`` table: the latest failed or skipped outcome per file, for the staff page.

Chroma refuses a write larger than its client's maximum batch (5,461 records on embedded
SQLite) and a read whose ids overflow SQLite's variable limit, so every bulk read and delete
here goes in pages of ``KnowledgeBase.max_batch``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa
from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings

from kb.access import Scope, collection_of, create_tables, members_table, source_filter
from kb.embeddings import UniqueTextEmbeddings, embedding_model_id, make_embeddings
from kb.keyword import KeywordIndex, KeywordRow, open_keyword_index
from kb.locks import NotAcquired, advisory_lock, file_lock, schema_lock
from kb.settings import ConfigError, Settings
from kb.terms import terms

log = logging.getLogger(__name__)

_meta = sa.MetaData()
documents_table = sa.Table(
    "kb_documents",
    _meta,
    sa.Column("collection", sa.String(63), primary_key=True),
    sa.Column("source", sa.String(1024), primary_key=True),
    sa.Column("root", sa.String(32), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("chunks", sa.Integer, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("ingested_at", sa.Float, nullable=False),
)
problems_table = sa.Table(
    "kb_file_problems",
    _meta,
    sa.Column("collection", sa.String(63), primary_key=True),
    sa.Column("source", sa.String(1024), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)
state_table = sa.Table(
    "kb_state",
    _meta,
    sa.Column("collection", sa.String(63), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
originals_table = sa.Table(
    "kb_originals",
    _meta,
    sa.Column("collection", sa.String(63), primary_key=True),
    sa.Column("source", sa.String(1024), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
upgrades_table = sa.Table(
    "kb_upgrades",
    _meta,
    sa.Column("collection", sa.String(63), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("done_at", sa.Float, nullable=False),
)
KEYWORD_UPGRADE = "keyword-index-v1"  # an index built before the keyword index lived in SQL
COLLECTIONS_UPGRADE = "collections-v1"  # chunks written before they carried their collection


class IngestBusy(Exception):
    """Another ingest holds the data dir's lock."""


@dataclass(frozen=True)
class DocumentRecord:
    """One indexed file, as listed to staff."""

    source: str
    root: str
    title: str
    sha256: str
    chunks: int
    size_bytes: int
    ingested_at: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FileProblem:
    """The latest ingest of a file that did not index it: staff see why until the file is fixed."""

    source: str
    status: str  # "failed" | "skipped"
    reason: str
    at: float  # Unix time of that ingest

    def to_dict(self) -> dict:
        return asdict(self)


def _chroma_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        try:
            client = chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
            client.heartbeat()
        except Exception as exc:  # the client raises several types for one cause
            raise ConfigError(
                f"cannot reach the Chroma server at {settings.chroma_host}:{settings.chroma_port} "
                f"(ASSISTANT_CHROMA_HOST/_PORT): {exc}"
            ) from None
        return client
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def _usable_data_dir(path: Path) -> None:
    """The data dir exists (or can be made) and is writable; else one line naming the setting."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"ASSISTANT_DATA_DIR {path}: cannot create it ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"ASSISTANT_DATA_DIR {path}: not writable by this user")


def _keyword_index(engine: sa.Engine, settings: Settings) -> KeywordIndex:
    try:
        with schema_lock(engine):
            return open_keyword_index(engine, settings.collection)
    except sa.exc.SQLAlchemyError as exc:
        raise ConfigError(f"the keyword index: cannot open it: {str(exc).splitlines()[0][:200]}") from None


def _record_engine(settings: Settings) -> sa.Engine:
    """The record store's engine, its tables created; a wrong URL or driver is one line."""
    where = "ASSISTANT_RECORD_DB_URL" if settings.record_db_url else "the record store"
    try:
        engine = sa.create_engine(settings.record_url)
        with schema_lock(engine):
            _meta.create_all(engine)
            create_tables(engine)
    except (sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(f"{where}: no database driver for it ({exc})") from None
    except sa.exc.SQLAlchemyError as exc:
        raise ConfigError(f"{where}: cannot open it: {str(exc).splitlines()[0][:200]}") from None
    return engine


@dataclass(frozen=True)
class IndexCheck:
    """Whether Chroma, the keyword index and the record manager hold the same chunk ids."""

    chunks: int
    keyword_rows: int
    records: int
    only_in_chroma: list[str]
    only_in_keywords: list[str]
    without_record: list[str]  # in Chroma, unknown to the record manager
    without_chunk: list[str]  # a record whose chunk is not in Chroma

    @property
    def ok(self) -> bool:
        return not (self.only_in_chroma or self.only_in_keywords or self.without_record or self.without_chunk)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def keyword_rows(
    ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict | None]
) -> list[KeywordRow]:
    """Chunks as the keyword index holds them: id, source and analysed terms."""
    return [
        KeywordRow(cid, (m or {}).get("source", ""), terms(t)) for cid, t, m in zip(ids, texts, metadatas)
    ]


def with_collection(metadata: dict | None) -> dict:
    """A chunk's metadata with its collection (from its source), as Chroma stores it."""
    metadata = metadata or {}
    return {**metadata, "collection": collection_of(metadata.get("source", ""))}


class _ChromaWithKeywords(Chroma):
    """Chroma whose writes also reach the keyword index, with the same ids.

    ``langchain_core.indexing.index`` writes through ``add_documents`` (which calls
    ``add_texts``) and ``delete``: one code path keeps the two engines in step. Chroma is
    written first: a run killed in between leaves a chunk without a record, which the next
    ingest of its file writes again or removes as an orphan."""

    def __init__(self, *, keywords: KeywordIndex, **kwargs) -> None:
        super().__init__(**kwargs)
        self.keywords = keywords

    def add_texts(self, texts, metadatas=None, ids=None, **kwargs) -> list[str]:
        texts = list(texts)
        # Each chunk's collection, for question-time filters; written here, not in the documents'
        # metadata, so the record manager's hashes (and what counts as "changed") stay as they were.
        metadatas = [with_collection(m) for m in metadatas or [{}] * len(texts)]
        ids = super().add_texts(texts, metadatas, ids=ids, **kwargs)
        self.keywords.add(keyword_rows(ids, texts, metadatas))
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs) -> None:
        super().delete(ids=ids, **kwargs)
        if ids:
            self.keywords.delete(ids)


class KnowledgeBase:
    """Opens every store once; ``check_model=False`` only for ``--rebuild``."""

    def __init__(
        self,
        settings: Settings,
        embeddings: Embeddings | None = None,
        *,
        check_model: bool = True,
    ) -> None:
        self.settings = settings
        _usable_data_dir(settings.data_dir)
        self.model_id = embedding_model_id(settings)
        self.embeddings = embeddings or make_embeddings(settings)
        self.client = _chroma_client(settings)
        # Largest write or read page Chroma takes; tests lower it to cross batches cheaply.
        self.max_batch: int = self.client.get_max_batch_size()
        self.engine = _record_engine(settings)
        self.keywords = _keyword_index(self.engine, settings)
        self._open_collection(check_model)
        self._record_manager = None
        self._reopen_lock = threading.Lock()
        self._seen_version = self._own_version = self.version()
        self._upgrade_keywords()
        self._upgrade_collections()

    # --- Chroma -----------------------------------------------------------------------
    def _open_collection(self, check_model: bool) -> None:
        self.cached_embeddings = self._cached_embeddings()
        self.vectorstore = _ChromaWithKeywords(
            keywords=self.keywords,
            client=self.client,
            collection_name=self.settings.collection,
            embedding_function=self.cached_embeddings,
            collection_metadata={"embedding_model": self.model_id},
            collection_configuration={"hnsw": {"space": "cosine"}},
        )
        self.collection = self.vectorstore._collection
        built_with = (self.collection.metadata or {}).get("embedding_model")
        if check_model and built_with and built_with != self.model_id:
            raise ConfigError(
                f"the index '{self.settings.collection}' was built with {built_with} but the "
                f"settings select {self.model_id}: re-ingest with `python -m ingest --rebuild` "
                "or change ASSISTANT_EMBEDDINGS back"
            )

    def _cached_embeddings(self) -> Embeddings:
        """Embeddings keyed by chunk text: duplicate or unchanged text is never embedded twice.

        Repeats within one call are dropped before the cache is asked (a file of repeated
        boilerplate would otherwise write the same cache entry once per repeat)."""
        from langchain_classic.embeddings import CacheBackedEmbeddings
        from langchain_classic.storage import LocalFileStore

        store = LocalFileStore(self.settings.data_dir / "embedding-cache")
        return UniqueTextEmbeddings(
            CacheBackedEmbeddings.from_bytes_store(
                self.embeddings,
                store,
                namespace=self.model_id.replace(":", "_"),
                key_encoder="sha256",
            )
        )

    def count_chunks(self) -> int:
        return self.collection.count()

    def chunk_ids(self, source: str) -> set[str]:
        """Ids of ``source``'s chunks in Chroma or the keyword index (either may hold an orphan)."""
        in_chroma = {cid for page in self.pages(where={"source": source}, include=[]) for cid in page["ids"]}
        return in_chroma | self.keywords.ids(source)

    def get_chunks(self, ids: Sequence[str], include: list[str]) -> dict:
        """``collection.get(ids=...)`` of at most ``max_batch`` ids; empty if this process's embedded
        Chroma client cannot see them yet (written by another process since it opened; the next
        ``current_version`` reopens it)."""
        from chromadb.errors import ChromaError

        try:
            return self.collection.get(ids=list(ids), include=include)
        except ChromaError as exc:
            if self.settings.chroma_host:
                raise
            log.info("chunks not visible to this process yet (%s): skipped", exc)
            return {"ids": [], **{key: [] for key in include}}

    def pages(self, **query) -> Iterator[dict]:
        """``collection.get(**query)`` in pages of ``max_batch``: the only way to visit many
        chunks (one unbounded get fails past about 32k records: too many SQL variables)."""
        offset = 0
        while True:
            page = self.collection.get(limit=self.max_batch, offset=offset, **query)
            if page["ids"]:
                yield page
            if len(page["ids"]) < self.max_batch:
                return
            offset += len(page["ids"])

    def delete_chunks(self, ids: Iterable[str]) -> int:
        """Delete chunks from Chroma and the keyword index, then their records, in batches Chroma
        accepts; returns how many.

        Chunks go first, as ``langchain_core.indexing`` does: a run killed in between leaves a
        record without a chunk, which the next index of that source rewrites or cleans up.
        """
        ids = sorted(set(ids))
        for start in range(0, len(ids), self.max_batch):
            batch = ids[start : start + self.max_batch]
            self.vectorstore.delete(ids=batch)
            self.record_manager.delete_keys(batch)
        return len(ids)

    def check(self) -> IndexCheck:
        """Compare the chunk ids of Chroma, the keyword index and the record manager, each read
        in pages (holds the ids, not the texts, in memory)."""
        in_chroma = {cid for page in self.pages(include=[]) for cid in page["ids"]}
        in_keywords = set(self.keywords.all_ids())
        records = set(self.record_manager.list_keys())
        return IndexCheck(
            chunks=len(in_chroma),
            keyword_rows=len(in_keywords),
            records=len(records),
            only_in_chroma=sorted(in_chroma - in_keywords),
            only_in_keywords=sorted(in_keywords - in_chroma),
            without_record=sorted(in_chroma - records),
            without_chunk=sorted(records - in_chroma),
        )

    def repair(self) -> tuple[IndexCheck, list[str]]:
        """Bring Chroma, the keyword index and the records back in step, under the ingest lock.

        Returns what was found and the sources to ingest again: keyword rows missing for a chunk
        are filled from Chroma (no embedding), keyword rows and chunks nobody records are
        deleted, and a record whose chunk is gone is dropped along with its file's registry row
        (the next ingest of that file writes what is missing)."""
        with self.lock():
            found = self.check()
            for start in range(0, len(found.only_in_chroma), self.max_batch):
                batch = found.only_in_chroma[start : start + self.max_batch]
                got = self.collection.get(ids=batch, include=["documents", "metadatas"])
                self.keywords.add(keyword_rows(got["ids"], got["documents"], got["metadatas"]))
            self.keywords.delete(found.only_in_keywords)
            self.delete_chunks(found.without_record)
            redo = self._sources_of_records(found.without_chunk)
            self.record_manager.delete_keys(found.without_chunk)
            collection = self.settings.collection
            with self.engine.begin() as conn:
                for start in range(0, len(redo), 500):
                    t = documents_table
                    conn.execute(
                        t.delete().where(
                            t.c.collection == collection, t.c.source.in_(redo[start : start + 500])
                        )
                    )
            if found.without_chunk or found.without_record or found.only_in_keywords:
                self.bump_version()
        return found, redo

    def _sources_of_records(self, keys: Sequence[str]) -> list[str]:
        """The sources (record-manager group ids) of some record keys."""
        records = sa.table(
            "upsertion_record", sa.column("key"), sa.column("namespace"), sa.column("group_id")
        )
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                query = sa.select(records.c.group_id).where(
                    records.c.namespace == self.record_manager.namespace,
                    records.c.key.in_(keys[start : start + 500]),
                )
                found.update(r[0] for r in conn.execute(query) if r[0])
        return sorted(found)

    def _upgrade_keywords(self) -> None:
        """Fill the keyword index once from an index built before it existed, page by page,
        under the ingest lock (another process starting at the same time waits, then skips)."""
        if self._upgraded(KEYWORD_UPGRADE):
            return
        with self.lock():
            if self._upgraded(KEYWORD_UPGRADE):
                return
            total = self.count_chunks()
            if total:
                log.warning("filling the keyword index from %d chunks (once, after an upgrade)", total)
            done = 0
            for page in self.pages(include=["documents", "metadatas"]):
                self.keywords.add(keyword_rows(page["ids"], page["documents"], page["metadatas"]))
                done += len(page["ids"])
                log.info("keyword index: %d/%d chunks", done, total)
            self._mark_upgraded(KEYWORD_UPGRADE)

    def _upgrade_collections(self) -> None:
        """Give every chunk of an index built before collections existed its ``collection``
        metadata, once, page by page (metadata only: nothing is embedded again)."""
        if self._upgraded(COLLECTIONS_UPGRADE):
            return
        with self.lock():
            if self._upgraded(COLLECTIONS_UPGRADE):
                return
            for page in self.pages(include=["metadatas"]):
                missing = [
                    (cid, m)
                    for cid, m in zip(page["ids"], page["metadatas"])
                    if "collection" not in (m or {})
                ]
                if missing:
                    self.collection.update(
                        ids=[cid for cid, _ in missing],
                        metadatas=[with_collection(m) for _, m in missing],
                    )
            self._mark_upgraded(COLLECTIONS_UPGRADE)

    def _mark_upgraded(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                upgrades_table.insert().values(
                    collection=self.settings.collection, name=name, done_at=time.time()
                )
            )

    def _upgraded(self, name: str) -> bool:
        t = upgrades_table
        query = sa.select(t.c.name).where(t.c.collection == self.settings.collection, t.c.name == name)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    # --- record manager ---------------------------------------------------------------
    @property
    def record_manager(self):
        if self._record_manager is None:
            from langchain_classic.indexes import SQLRecordManager

            rm = SQLRecordManager(f"chroma/{self.settings.collection}", engine=self.engine)
            rm.create_schema()
            self._record_manager = rm
        return self._record_manager

    # --- document registry ------------------------------------------------------------
    def list_documents(self) -> list[DocumentRecord]:
        return self._documents()

    def get_document(self, source: str) -> DocumentRecord | None:
        found = self._documents(documents_table.c.source == source)
        return found[0] if found else None

    def documents_page(
        self, *, after: str | None = None, limit: int = 50, scope: Scope | None = None
    ) -> list[DocumentRecord]:
        """Up to ``limit`` documents ``scope`` allows, by source, after ``after``: a keyset page,
        so paging never skips or repeats a document while others are added or removed."""
        where = [] if after is None else [documents_table.c.source > after]
        limit_to = source_filter(documents_table.c.source, scope) if scope is not None else None
        if limit_to is not None:
            where.append(limit_to)
        return self._documents(*where, limit=limit)

    def passages_of(self, source: str, numbers: Iterable[int]) -> dict[int, tuple[str, str, dict]]:
        """Chunks of ``source`` by their number in the document: number -> (id, text, metadata)."""
        wanted = sorted(set(numbers))
        if not wanted:
            return {}
        got = self.collection.get(
            where={"$and": [{"source": source}, {"chunk": {"$in": wanted}}]},
            include=["documents", "metadatas"],
            limit=len(wanted),
        )
        return {
            meta["chunk"]: (cid, text, meta)
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"])
        }

    def document_text(self, source: str, max_chars: int) -> tuple[str, bool]:
        """The document's text as indexed (its chunks in order, overlaps removed), at most
        ``max_chars`` of it, and whether it was cut."""
        pieces: list[tuple[int, int, str]] = []
        for page in self.pages(where={"source": source}, include=["documents", "metadatas"]):
            for text, meta in zip(page["documents"], page["metadatas"]):
                pieces.append((meta.get("chunk", 0), meta.get("start", 0), text))
        out: list[str] = []
        size, end = 0, None  # characters gathered; the document offset reached
        for _n, start, text in sorted(pieces):
            stop = start + len(text)
            if end is not None and start < end:
                text = text[end - start :]  # the overlap with the chunk before
            elif end is not None:
                text = "\n\n" + text  # another section or page
            end = stop if end is None else max(end, stop)
            out.append(text)
            size += len(text)
            if size >= max_chars:
                return "".join(out)[:max_chars], True
        return "".join(out), False

    def _documents(self, *where, limit: int | None = None) -> list[DocumentRecord]:
        t = documents_table
        query = sa.select(t).where(t.c.collection == self.settings.collection, *where)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.source).limit(limit)).mappings().all()
        return [DocumentRecord(**{k: v for k, v in r.items() if k != "collection"}) for r in rows]

    def put_document(self, record: DocumentRecord, original: bytes | None = None) -> None:
        """Register an indexed file (and forget any earlier problem with it). ``original``: the
        file's bytes, kept for uploads so every app process can serve them, whichever machine
        received the upload."""
        collection = self.settings.collection
        with self.engine.begin() as conn:
            for t in (documents_table, problems_table, originals_table):
                conn.execute(t.delete().where(t.c.collection == collection, t.c.source == record.source))
            conn.execute(documents_table.insert().values(collection=collection, **record.to_dict()))
            if original is not None:
                conn.execute(
                    originals_table.insert().values(
                        collection=collection, source=record.source, sha256=record.sha256, data=original
                    )
                )

    def original(self, source: str) -> bytes | None:
        """The stored bytes of an indexed upload, if kept (see ``put_document``)."""
        t = originals_table
        query = sa.select(t.c.data).where(t.c.collection == self.settings.collection, t.c.source == source)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return bytes(row[0]) if row else None

    def forget_document(self, source: str) -> None:
        """Drop a removed document's rows, its extra collections included (a new document that
        takes its name must not inherit who may read it)."""
        with self.engine.begin() as conn:
            for t in (documents_table, problems_table, originals_table):
                conn.execute(
                    t.delete().where(t.c.collection == self.settings.collection, t.c.source == source)
                )
            conn.execute(members_table.delete().where(members_table.c.source == source))

    # --- file problems: why a file is not (or not newly) indexed ------------------------
    def file_problems(self) -> list[FileProblem]:
        """The latest failed or skipped outcome of each file that has one, by source."""
        t = problems_table
        query = sa.select(t).where(t.c.collection == self.settings.collection).order_by(t.c.source)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [FileProblem(**{k: v for k, v in r.items() if k != "collection"}) for r in rows]

    def update_problems(self, problems: Sequence[FileProblem], clear: Iterable[str] = ()) -> None:
        """Record ``problems`` (replacing earlier ones of the same files) and clear ``clear``."""
        t = problems_table
        sources = sorted(set(clear) | {p.source for p in problems})
        if not sources:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(sources), 500):  # well under any database's variable limit
                conn.execute(
                    t.delete().where(
                        t.c.collection == self.settings.collection,
                        t.c.source.in_(sources[start : start + 500]),
                    )
                )
            if problems:
                conn.execute(
                    t.insert(), [{"collection": self.settings.collection, **p.to_dict()} for p in problems]
                )

    # --- change tracking: lets readers in any process notice a finished ingest -----------
    def version(self) -> int:
        t = state_table
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.version).where(t.c.collection == self.settings.collection)
            ).first()
        return row[0] if row else 0

    def current_version(self) -> int:
        """The version, after making sure this process sees what another process ingested.

        An embedded Chroma client keeps its vector index in memory and does not notice writes
        by another process (a CLI ingest while the app runs); when the version moved and this
        process did not move it, the client is reopened. A Chroma server needs none of this.
        """
        version = self.version()
        if version != self._seen_version:
            with self._reopen_lock:
                if version != self._own_version and not self.settings.chroma_host:
                    from chromadb.api.client import SharedSystemClient

                    SharedSystemClient.clear_system_cache()
                    self.client = _chroma_client(self.settings)
                    self._open_collection(check_model=True)
                self._seen_version = version
        return version

    def bump_version(self) -> int:
        """Mark the index changed (readers in other processes notice); refresh term statistics."""
        self.keywords.refresh_stats()
        t = state_table
        current = self.version()
        new = current + 1
        if current == self._seen_version:  # else another process wrote too: let readers reopen
            self._own_version = new
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.collection == self.settings.collection))
            conn.execute(
                t.insert().values(collection=self.settings.collection, version=new, updated_at=time.time())
            )
        return new

    def last_updated(self) -> float | None:
        t = state_table
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.updated_at).where(t.c.collection == self.settings.collection)
            ).first()
        return row[0] if row else None

    # --- whole-index operations ---------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[None]:
        """Serialise writers of this index; a second ingest waits, then fails clearly.

        With PostgreSQL it is a session advisory lock per collection, so ingests on different
        machines serialise and a crashed holder's lock goes with its connection; with SQLite it
        is a file lock in the data dir (one machine)."""
        wait = self.settings.lock_timeout_s if timeout is None else timeout
        if self.engine.dialect.name == "postgresql":
            held = advisory_lock(self.engine, f"kb-ingest:{self.settings.collection}", wait)
            where = f"collection '{self.settings.collection}' (PostgreSQL advisory lock)"
        else:
            path = self.settings.data_dir / "ingest.lock"
            held, where = file_lock(path, wait), f"{self.settings.data_dir} (lock {path})"
        try:
            with held:
                yield
        except NotAcquired:  # only the wait for the lock: a timeout inside the body is its own error
            raise IngestBusy(
                f"another ingest is running on {where}; waited {wait:.0f}s, try again when it has finished"
            ) from None

    def close(self) -> None:
        """Release the Chroma system and database handles (before a temporary index's folder goes)."""
        with contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            self.engine.dispose()

    def reset(self) -> None:
        """Drop every chunk, record, registry row and file problem of this collection (``--rebuild``)."""
        self.client.delete_collection(self.settings.collection)
        self.keywords.clear()
        keys = self.record_manager.list_keys()
        for start in range(0, len(keys), self.max_batch):
            self.record_manager.delete_keys(keys[start : start + self.max_batch])
        with self.engine.begin() as conn:
            for t in (documents_table, problems_table, originals_table):
                conn.execute(t.delete().where(t.c.collection == self.settings.collection))
        self._open_collection(check_model=False)
        self.bump_version()


def source_path(settings: Settings, source: str) -> Path | None:
    """The file a source id names, only if it lies inside a known root (corpus or uploads)."""
    for root_dir, prefix in source_roots(settings):
        if prefix and not source.startswith(prefix):
            continue
        rel = source[len(prefix) :]
        candidate = (root_dir / rel).resolve()
        if candidate.is_relative_to(root_dir.resolve()) and candidate.is_file():
            return candidate
    return None


def source_roots(settings: Settings) -> list[tuple[Path, str]]:
    """Where documents may come from, with the prefix their source ids get (uploads first)."""
    return [(settings.uploads_dir, "uploads/"), (settings.corpus_dir, "")]
