"""Retrieval and extractive answer latency at ~10k chunks.

    python benchmarks/retrieval_latency.py [--target 10000] [--queries 100]

Builds (once, kept in benchmarks/results/latency-index) an index of the Paul Graham essays
(real chunks, real embeddings), then pads it to ``--target`` chunks with copies of those chunks
whose vectors are jittered (latency depends on collection size, not on what the copies say;
embedding 10k fresh chunks would take ~20 minutes on 2 cores). Then times, per question from
the essays' Q&A set: hybrid retrieval (dense + BM25 + fusion), and the full extractive
``Assistant.ask``. Prints p50/p95/max and the one-off BM25 build time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import kb as _kb  # noqa: E402,F401  (telemetry off)
from assistant.core import Assistant  # noqa: E402
from ingest.pipeline import ingest  # noqa: E402
from kb.settings import load_settings  # noqa: E402
from kb.store import KnowledgeBase  # noqa: E402

PG = REPO.parent / "shared" / "eval-data" / "paul_graham_essays"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def pad_to(kb: KnowledgeBase, target: int) -> None:
    base = kb.collection.get(
        where={"source": {"$ne": "__pad__"}}, include=["documents", "metadatas", "embeddings"]
    )
    rng = np.random.default_rng(0)
    copy = 0
    while kb.count_chunks() < target:
        copy += 1
        n = min(len(base["ids"]), target - kb.count_chunks())
        vecs = np.asarray(base["embeddings"][:n]) + rng.normal(0, 0.02, (n, 384))
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        for start in range(0, n, 1000):
            sl = slice(start, min(start + 1000, n))
            kb.collection.add(
                ids=[f"pad{copy}-{i}" for i in base["ids"][sl]],
                documents=base["documents"][sl],
                metadatas=[{**m, "source": f"pad{copy}/{m['source']}"} for m in base["metadatas"][sl]],
                embeddings=vecs[sl].tolist(),
            )
    kb.bump_version()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--data-dir", type=Path, default=REPO / "benchmarks" / "results" / "latency-index")
    args = ap.parse_args()

    corpus = PG / "paul_graham_essays"
    settings = load_settings(_env_file=None, data_dir=args.data_dir, corpus_dir=corpus)
    kb = KnowledgeBase(settings)
    if not kb.list_documents():
        t0 = time.perf_counter()
        report = ingest(None, settings, kb)
        print(f"ingested {report.summary()} in {time.perf_counter() - t0:.0f}s")
    if kb.count_chunks() < args.target:
        pad_to(kb, args.target)
    print(f"chunks in index            {kb.count_chunks()}")

    questions = [q["question"] for q in json.loads((PG / "qa_pairs.json").read_text())]
    questions += [q["question"] for q in json.loads((PG / "question_and_answer_list.json").read_text())]
    questions = (questions * (args.queries // len(questions) + 1))[: args.queries]

    assistant = Assistant.from_settings(settings)
    t0 = time.perf_counter()
    assistant.retriever.keyword_index()
    print(f"BM25 build (first query)   {time.perf_counter() - t0:.2f} s")
    assistant.ask("warm-up question about startups")

    retrieval, answers = [], []
    for q in questions:
        t0 = time.perf_counter()
        assistant.retriever.retrieve(q)
        retrieval.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assistant.ask(q)
        answers.append(time.perf_counter() - t0)
    print(f"queries                    {len(questions)}")
    print(
        f"retrieval                  p50 {pct(retrieval, 50):.0f} ms  p95 {pct(retrieval, 95):.0f} ms"
        f"  max {max(retrieval) * 1000:.0f} ms"
    )
    print(
        f"extractive time-to-answer  p50 {pct(answers, 50):.0f} ms  p95 {pct(answers, 95):.0f} ms"
        f"  mean {statistics.mean(answers) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
