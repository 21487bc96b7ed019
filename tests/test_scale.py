"""Size is a non-event: an index past Chroma's read limit still answers, ingests, deletes and
checks; an index built before the keyword index existed is filled on first start."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import sqlalchemy as sa
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import index

from assistant.retrieval import HybridRetriever
from ingest.pipeline import delete_document, ingest
from kb import KnowledgeBase
from kb.store import upgrades_table
from tests._helpers_files import write_text

PAST_THE_LIMIT = 40_000  # an unbounded Collection.get with metadata fails past ~32k records


class TinyEmbeddings(Embeddings):
    """Eight-dimensional vectors from a hash of the words: cheap enough for 40k chunks, and
    still nearest for texts that share words."""

    def _vec(self, text: str) -> list[float]:
        v = np.zeros(8, dtype=np.float32)
        for word in text.lower().split():
            v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 8] += 1.0
        return (v / (np.linalg.norm(v) or 1.0)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


def _bulk(kb: KnowledgeBase, n: int) -> None:
    """``n`` short chunks in 400 sources, indexed the way ingestion does (records included)."""
    docs = [
        Document(
            f"Routine site log {i}: crew {i % 97} checked valve {i % 389}.",
            metadata={"source": f"logs/{i % 400}.txt"},
        )
        for i in range(n)
    ]
    index(
        docs,
        kb.record_manager,
        kb.vectorstore,
        cleanup=None,
        source_id_key="source",
        key_encoder="sha256",
        batch_size=kb.max_batch,
    )


def test_past_chromas_read_limit_it_answers_ingests_deletes_and_checks(settings):
    kb = KnowledgeBase(settings, embeddings=TinyEmbeddings())
    _bulk(kb, PAST_THE_LIMIT)
    assert kb.count_chunks() == kb.keywords.count() == PAST_THE_LIMIT

    retriever = HybridRetriever(kb)
    assert retriever.retrieve("Which crew checked valve 17?"), "the first question is answered"

    write_text(settings.corpus_dir / "permit.txt", "The QX-7731 permit covers the northern pumping station.")
    report = ingest(None, settings, kb)
    assert report.outcome("permit.txt").status == "added", report.to_json()
    top = retriever.retrieve("What does the QX-7731 permit cover?")[0]
    assert top.source == "permit.txt" and top.bm25_score

    assert delete_document(kb, "logs/7.txt") == PAST_THE_LIMIT // 400
    check = kb.check()
    assert check.ok, check.to_dict()
    assert check.chunks == check.keyword_rows == check.records == PAST_THE_LIMIT - PAST_THE_LIMIT // 400 + 1


def test_an_index_from_before_the_keyword_index_is_filled_on_first_start(settings):
    kb = KnowledgeBase(settings)
    write_text(
        settings.corpus_dir / "alpha.txt", "Project Alpha installs QX-5150 solar pumps in Kenyan clinics."
    )
    write_text(settings.corpus_dir / "beta.txt", "Project Beta trains nurses in telemedicine in Finland.")
    ingest(None, settings, kb)
    # What the previous version left: chunks and records, no keyword rows, no upgrade mark.
    kb.keywords.clear()
    with kb.engine.begin() as conn:
        conn.execute(sa.delete(upgrades_table))
    assert kb.keywords.search(["qx-5150"], 5) == []
    kb.close()

    reopened = KnowledgeBase(settings)
    assert reopened.check().ok
    [(found, _)] = reopened.keywords.search(["qx-5150"], 5)
    assert found in reopened.chunk_ids("alpha.txt")
    assert HybridRetriever(reopened).retrieve("QX-5150")[0].source == "alpha.txt"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_keyword_search_reads_the_rarest_terms_within_its_budget(
    database, make_settings, request, monkeypatch
):
    url = None if database == "sqlite" else request.getfixturevalue("postgres_url")
    settings = make_settings(record_db_url=url)
    for n in range(12):
        extra = " The QX-5150 permit is filed here." if n == 7 else ""
        write_text(settings.corpus_dir / f"log{n:02d}.txt", f"Pump log {n}: the pump ran {n} hours.{extra}")
    kb = KnowledgeBase(settings, embeddings=TinyEmbeddings())
    ingest(None, settings, kb)  # its end refreshes the database's term statistics
    freqs = kb.keywords.doc_freqs(["pump", "qx-5150"])
    assert freqs.get("pump", 0) >= 10 and freqs.get("qx-5150", 0) <= 2, freqs

    assert kb.keywords.within_budget(["pump", "qx-5150"]) == ["qx-5150", "pump"], "within budget: all"
    assert len(kb.keywords.search(["pump", "qx-5150"], 20)) == 12
    monkeypatch.setattr(kb.keywords, "max_postings", 5)
    assert kb.keywords.within_budget(["pump", "qx-5150"]) == ["qx-5150"], "the common term is left out"
    [(found, _)] = kb.keywords.search(["pump", "qx-5150"], 20)
    assert found in kb.chunk_ids("log07.txt")
    assert kb.keywords.within_budget(["pump"]) == ["pump"], "the rarest term is always searched"
