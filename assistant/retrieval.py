"""Hybrid retrieval: dense search in Chroma + BM25 over the same chunks, fused by weighted RRF.

The BM25 index is rebuilt from the Chroma collection whenever the knowledge base's version
changes (every ingest that changed something bumps it, whichever process ran it), so keyword
search never drifts from the collection. It is built lazily on the first question.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi

from assistant.models import Passage
from assistant.text import terms
from kb.settings import Settings
from kb.store import KnowledgeBase

RRF_K = 60  # the constant from Cormack et al. (2009); robust across collections
DUPLICATE_JACCARD = 0.9


class _BM25(BM25Okapi):
    """BM25 with Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)): never zero or negative, so a
    term found in half of a small collection still counts (rank_bm25's Okapi idf gives 0 there)."""

    def _calc_idf(self, nd: dict[str, int]) -> None:
        self.idf = {w: math.log(1 + (self.corpus_size - n + 0.5) / (n + 0.5)) for w, n in nd.items()}


@dataclass
class _KeywordIndex:
    version: int
    ids: list[str]
    texts: list[str]
    metadatas: list[dict]
    bags: list[frozenset[str]]  # each chunk's terms, for spotting near-duplicates
    bm25: _BM25 | None
    position: dict[str, int]


class HybridRetriever:
    def __init__(self, kb: KnowledgeBase, settings: Settings | None = None) -> None:
        self.kb = kb
        self.settings = settings or kb.settings
        self._index: _KeywordIndex | None = None
        self._lock = threading.Lock()

    # --- keyword side -----------------------------------------------------------------
    def keyword_index(self) -> _KeywordIndex:
        """The BM25 index for the collection's current version (rebuilt if an ingest happened)."""
        version = self.kb.current_version()
        current = self._index
        if current is not None and current.version == version:
            return current
        with self._lock:
            if self._index is not None and self._index.version == version:
                return self._index
            data = self.kb.all_chunks()
            texts = data["documents"] or []
            tokenised = [terms(t) for t in texts]
            self._index = _KeywordIndex(
                version=version,
                ids=data["ids"],
                texts=texts,
                metadatas=data["metadatas"] or [],
                bags=[frozenset(t) for t in tokenised],
                bm25=_BM25(tokenised) if any(tokenised) else None,
                position={cid: i for i, cid in enumerate(data["ids"])},
            )
            return self._index

    def _bm25_top(self, idx: _KeywordIndex, query: str, n: int) -> list[tuple[str, float]]:
        q = terms(query)
        if idx.bm25 is None or not q:
            return []
        scores = idx.bm25.get_scores(q)
        top = np.argsort(-scores)[:n]
        return [(idx.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # --- dense side -------------------------------------------------------------------
    def _dense_top(self, query_vec: list[float], n: int) -> list[tuple[str, float]]:
        count = self.kb.count_chunks()
        if count == 0:
            return []
        res = self.kb.collection.query(
            query_embeddings=[query_vec], n_results=min(n, count), include=["distances"]
        )
        return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0])]

    def _similarities(self, query_vec: list[float], ids: list[str]) -> dict[str, float]:
        """Cosine similarity for chunks found only by BM25 (their vectors are in Chroma)."""
        if not ids:
            return {}
        got = self.kb.collection.get(ids=ids, include=["embeddings"])
        q = np.asarray(query_vec, dtype=np.float32)
        return {
            cid: float(np.dot(np.asarray(e, dtype=np.float32), q))
            for cid, e in zip(got["ids"], got["embeddings"])
        }

    # --- fusion -----------------------------------------------------------------------
    def retrieve(self, query: str, k: int | None = None) -> list[Passage]:
        """Top-k passages above the relevance floor, numbered 1..k, best first."""
        k = k or self.settings.top_k
        idx = self.keyword_index()
        query_vec = self.kb.embeddings.embed_query(query)
        dense = self._dense_top(query_vec, self.settings.fetch_k)
        sparse = self._bm25_top(idx, query, self.settings.fetch_k)

        fused = rrf_scores(
            [
                (self.settings.dense_weight, [cid for cid, _ in dense]),
                (self.settings.bm25_weight, [cid for cid, _ in sparse]),
            ]
        )
        dense_scores = dict(dense)
        dense_scores.update(self._similarities(query_vec, [c for c in fused if c not in dense_scores]))
        bm25_scores = dict(sparse)

        passages: list[Passage] = []
        kept_terms: list[frozenset[str]] = []
        for cid in sorted(fused, key=fused.get, reverse=True):
            if dense_scores.get(cid, 0.0) < self.settings.relevance_floor or cid not in idx.position:
                continue
            pos = idx.position[cid]
            text, bag = idx.texts[pos], idx.bags[pos]
            if any(_jaccard(bag, other) >= DUPLICATE_JACCARD for other in kept_terms):
                continue  # the same text under another name, or a near copy
            kept_terms.append(bag)
            passages.append(
                _passage(
                    cid,
                    text,
                    idx.metadatas[pos],
                    fused[cid],
                    dense_scores.get(cid),
                    bm25_scores.get(cid),
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


def _passage(
    cid: str, text: str, meta: dict, score: float, dense: float | None, bm25: float | None
) -> Passage:
    return Passage(
        id=cid,
        text=text,
        source=meta.get("source", ""),
        title=meta.get("title", ""),
        page=meta.get("page"),
        section=meta.get("section"),
        start=meta.get("start"),
        end=meta.get("end"),
        score=score,
        dense_score=dense,
        bm25_score=bm25,
    )
