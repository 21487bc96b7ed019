"""Hybrid retrieval: dense search in Chroma + keyword search in the record store's full-text
engine (``kb.keyword``), fused by weighted RRF.

Both sides are queried where the data lives, at question time: nothing is loaded into memory
or rebuilt after an ingest, so a chunk another process indexed is found by its next question.
This module only fuses the two rankings, drops weak and near-duplicate passages, and numbers
what is left.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from assistant.models import Passage
from kb.access import Scope
from kb.settings import Settings
from kb.store import KnowledgeBase
from kb.terms import terms

_KEYWORD_THREADS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="keyword-search")
_WORDS = re.compile(r"\w+")
RRF_K = 60  # the constant from Cormack et al. (2009); robust across collections
DUPLICATE_JACCARD = 0.9


class HybridRetriever:
    def __init__(self, kb: KnowledgeBase, settings: Settings | None = None) -> None:
        self.kb = kb
        self.settings = settings or kb.settings

    def _keyword_top(self, query: str, n: int, scope: Scope | None = None) -> list[tuple[str, float]]:
        return self.kb.keywords.search(terms(query), n, scope)

    def _dense_top(
        self, query_vec: list[float], n: int, scope: Scope | None = None
    ) -> tuple[list[tuple[str, float]], dict[str, tuple]]:
        """Nearest chunks as (id, cosine similarity), and each one's (text, metadata)."""
        res = self.kb.collection.query(  # (counting the collection first would cost more than this)
            query_embeddings=[query_vec],
            n_results=n,
            where=scope.chroma_where() if scope is not None else None,
            include=["distances", "documents", "metadatas"],
        )
        ids, dists = res["ids"][0], res["distances"][0]
        found = dict(zip(ids, zip(res["documents"][0], res["metadatas"][0])))
        return [(cid, 1.0 - float(d)) for cid, d in zip(ids, dists)], found

    def _fetch(self, query_vec: list[float], ids: list[str]) -> tuple[dict[str, float], dict[str, tuple]]:
        """Cosine similarity, text and metadata of chunks found only by keywords (ids the keyword
        index holds but Chroma does not, left by a killed ingest, are simply not returned)."""
        if not ids:
            return {}, {}
        got = self.kb.get_chunks(ids, include=["embeddings", "documents", "metadatas"])
        q = np.asarray(query_vec, dtype=np.float32)
        sims = {
            cid: float(np.dot(np.asarray(e, dtype=np.float32), q))
            for cid, e in zip(got["ids"], got["embeddings"])
        }
        return sims, dict(zip(got["ids"], zip(got["documents"], got["metadatas"])))

    def retrieve(self, query: str, k: int | None = None, scope: Scope | None = None) -> list[Passage]:
        """Top-k passages above the relevance floor, numbered 1..k, best first; with a ``scope``
        (what the caller may read and chose), only its chunks, filtered in both engines."""
        k = k or self.settings.top_k
        if scope is not None and scope.unlimited:
            scope = None
        self.kb.current_version()  # an embedded Chroma client notices another process's ingest
        # The keyword search needs no embedding: it runs beside the embedding and the dense search
        # (SQLite, PostgreSQL's driver, onnxruntime and Chroma all release the GIL while they work).
        keyword_search = _KEYWORD_THREADS.submit(self._keyword_top, query, self.settings.fetch_k, scope)
        query_vec = self.kb.embeddings.embed_query(query)
        dense, chunks = self._dense_top(query_vec, self.settings.fetch_k, scope)
        sparse = keyword_search.result()

        fused = rrf_scores(
            [
                (self.settings.dense_weight, [cid for cid, _ in dense]),
                (self.settings.bm25_weight, [cid for cid, _ in sparse]),
            ]
        )
        dense_scores = dict(dense)
        sims, more = self._fetch(query_vec, [c for c in fused if c not in dense_scores])
        dense_scores.update(sims)
        chunks.update(more)
        keyword_scores = dict(sparse)

        passages: list[Passage] = []
        kept_terms: list[frozenset[str]] = []
        seen: set[str] = set()
        for cid in sorted(fused, key=fused.get, reverse=True):
            if dense_scores.get(cid, 0.0) < self.settings.relevance_floor or cid not in chunks:
                continue
            text, meta = chunks[cid]
            if scope is not None and not scope.allows((meta or {}).get("source", "")):
                continue  # (both engines filtered already: a second wall)
            if text in seen:
                continue  # the same text under another name
            seen.add(text)
            # a near copy shares its words: no stemming needed
            bag = frozenset(_WORDS.findall(text.lower()))
            if any(_jaccard(bag, other) >= DUPLICATE_JACCARD for other in kept_terms):
                continue  # a near copy
            kept_terms.append(bag)
            passages.append(
                Passage.from_chunk(
                    cid,
                    text,
                    meta or {},
                    score=fused[cid],
                    dense_score=dense_scores.get(cid),
                    bm25_score=keyword_scores.get(cid),
                )
            )
            if len(passages) == k:
                break
        for n, p in enumerate(passages, start=1):
            p.n = n
        return passages


def rrf_scores(rankings: Iterable[tuple[float, Sequence[Hashable]]]) -> dict[Hashable, float]:
    """Weighted reciprocal rank fusion: each item scores sum(weight / (RRF_K + rank)), rank from 1."""
    fused: dict[Hashable, float] = {}
    for weight, ranked in rankings:
        for rank, item in enumerate(ranked, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (RRF_K + rank)
    return fused


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else float(a == b)
