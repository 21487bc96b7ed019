"""Does reranking the fused candidates pay? Retrieval quality and added latency, offline.

    .venv/bin/python -m benchmarks.rerank                       # the three dev sets, N = 5, 10, 20, 30
    .venv/bin/python -m benchmarks.rerank --sets squad --n 20   # one set, one candidate depth
    .venv/bin/python -m benchmarks.rerank --json reports/rerank.json

Each dev set is imported with the evaluation importers (``evaluation.importers``)
and ingested once, with default settings, into a temporary data dir, as
``evaluation.runner`` does; chunk embeddings are cached across runs in
``$TMPDIR/assistant-bench-cache/rerank-embeddings``, so only the first run embeds the corpora.

* ``squad``  — SQuAD 2.0 "Normans", answerable questions; relevant = the gold paragraph.
* ``solana`` — LlamaIndex Blockchain Solana; relevant = overlaps a reference context.
* ``pg``     — Tonic Paul Graham ``qa_pairs.json``; relevant = overlaps the reference quote.
* ``pg_list`` (not run by default) — Tonic Paul Graham ``question_and_answer_list.json``.

For every question the real ``HybridRetriever`` returns its fused top-N candidates (dense +
keyword search, weighted RRF, relevance floor, near-duplicates collapsed); its first five are today's
answer (``fused``). The variants reorder those N candidates and keep the first five (N = 5
reorders today's five passages only: hit@5 cannot change, hit@1 and MRR can):

* ``dense``         — chunk-level cosine of the question and the chunk (a control: free, the
  retriever already has it);
* ``sent``          — max cosine of the question and any sentence of the chunk (MiniLM);
* ``rrf_w``         — RRF of the fused order and the ``sent`` order, the sentence order
  weighted ``w`` (``1/(60 + r_fused) + w/(60 + r_sent)``);
* ``mix_a``         — ``(1 - a) * fused + a * sent`` after min-max scaling each over the
  candidates.

Relevance, hit@1, hit@5 and MRR (over the five kept passages, as the evaluation report computes
it) come from ``evaluation.metrics``. ``recall@N`` is hit@N of the candidates: the
ceiling any reranker of N candidates can reach (on the ``fused`` row, N is the largest depth).

Added latency is the wall time, per question, of sentence splitting + embedding every sentence
of the N candidates + ordering. The question vector is computed outside the timing (retrieval
already has it); the ``fused`` row shows retrieval's own time. Nothing is cached between
questions for the reranker. Timings depend on what else the machine runs: the load average is
printed before and after, and ``--repeat R`` times each rerank R times and keeps the fastest.

The combination weights (w, a) were fixed before the first run, not fitted; every variant is
printed, and choosing the best row afterwards is tuning on these same sets.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import kb  # noqa: F401  (telemetry off)
from assistant.models import Passage
from assistant.retrieval import rrf_scores
from assistant.text import split_sentences
from benchmarks.corpora import DATA, ingested
from evaluation import metrics as m
from evaluation.importers import load_question_set

SETS = {
    "squad": DATA / "squad_normans" / "squad2_dev_normans.json",
    "solana": DATA / "llamaindex_blockchain_solana" / "rag_dataset.json",
    "pg": DATA / "paul_graham_essays" / "qa_pairs.json",
    "pg_list": DATA / "paul_graham_essays" / "question_and_answer_list.json",
}
TOP_K = 5
RRF_WEIGHTS = (0.5, 1.0, 2.0)
MIX_WEIGHTS = (0.3, 0.5, 0.7)


# --- scoring candidates -------------------------------------------------------------------------


def sentence_scores(embeddings, query_vec: np.ndarray, passages: Sequence[Passage]) -> np.ndarray:
    """Max cosine of the question and any sentence of each passage (one batch for all)."""
    sentences: list[str] = []
    owner: list[int] = []
    for i, p in enumerate(passages):
        parts = split_sentences(p.text) or [p.text]
        sentences.extend(parts)
        owner.extend([i] * len(parts))
    vectors = embeddings.embed_array(sentences)
    cos = vectors @ query_vec
    best = np.full(len(passages), -1.0, dtype=np.float32)
    np.maximum.at(best, np.asarray(owner), cos)
    return best


def order_by(scores: Sequence[float]) -> list[int]:
    """Indices, best score first; ties keep the fused order (stable sort)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def rrf(orders: Sequence[tuple[float, list[int]]], n: int) -> list[int]:
    """Weighted reciprocal rank fusion (the retriever's own) of several orders of the same n items."""
    fused = rrf_scores(orders)
    return order_by([fused.get(i, 0.0) for i in range(n)])


def minmax(values: Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    span = v.max() - v.min() if len(v) else 0.0
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


def variants(passages: Sequence[Passage], sent: np.ndarray) -> dict[str, list[int]]:
    """Every reranked order of the candidates (indices into ``passages``)."""
    n = len(passages)
    fused_order = list(range(n))
    sent_order = order_by(sent.tolist())
    out = {
        "dense": order_by([p.dense_score or 0.0 for p in passages]),
        "sent": sent_order,
    }
    for w in RRF_WEIGHTS:
        out[f"rrf_{w:g}"] = rrf([(1.0, fused_order), (w, sent_order)], n)
    fused_scaled, sent_scaled = minmax([p.score for p in passages]), minmax(sent.tolist())
    for a in MIX_WEIGHTS:
        out[f"mix_{a:g}"] = order_by(((1 - a) * fused_scaled + a * sent_scaled).tolist())
    return out


# --- one set ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Per-question flags and timings of one variant."""

    hit1: list[float] = field(default_factory=list)
    hit5: list[float] = field(default_factory=list)
    rr: list[float] = field(default_factory=list)
    recall_n: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    def add(self, flags: list[bool], ms: float, recall_n: float | None = None) -> None:
        top = flags[:TOP_K]
        self.hit1.append(m.hit_at_k(top, 1))
        self.hit5.append(m.hit_at_k(top, TOP_K))
        self.rr.append(m.reciprocal_rank(top))
        self.ms.append(ms)
        if recall_n is not None:
            self.recall_n.append(recall_n)

    def row(self) -> dict[str, float | None]:
        return {
            "hit_at_1": m.mean(self.hit1),
            "hit_at_5": m.mean(self.hit5),
            "mrr": m.mean(self.rr),
            "recall_at_n": m.mean(self.recall_n) if self.recall_n else None,
            "ms_p50": m.percentile(self.ms, 50),
            "ms_p95": m.percentile(self.ms, 95),
        }


def answerable_questions(path: Path):
    """The set's answerable questions that have references, and the loaded set."""
    loaded = load_question_set(path)
    questions = [
        q for q in loaded.questions.questions if q.answerable and (q.reference_contexts or q.sources)
    ]
    return questions, loaded


def run_set(
    name: str, path: Path, depths: Sequence[int], limit: int | None, repeat: int, log: Callable
) -> dict:
    tallies: dict[str, Tally] = {}
    questions, loaded = answerable_questions(path)
    with ingested(loaded) as (retriever, embeddings):
        questions = questions[:limit] if limit else questions
        retriever.retrieve("warm up")  # the first ONNX run is not a question's cost
        for i, q in enumerate(questions, 1):
            started = time.perf_counter()
            cands = retriever.retrieve(q.question, k=max(depths))
            retrieval_ms = (time.perf_counter() - started) * 1000
            query_vec = np.asarray(embeddings.embed_query(q.question), dtype=np.float32)
            flags = m.relevance([(p.source, p.text) for p in cands], q.reference_contexts, q.sources) or []
            tallies.setdefault("fused", Tally()).add(flags, retrieval_ms, m.hit_at_k(flags, max(depths)))
            for n in depths:
                head, head_flags = cands[:n], flags[:n]
                sent_ms = float("inf")
                for _ in range(repeat):  # the fastest of `repeat` runs: less noise from other work
                    started = time.perf_counter()
                    sent = sentence_scores(embeddings, query_vec, head) if head else np.zeros(0)
                    orders = variants(head, sent)
                    sent_ms = min(sent_ms, (time.perf_counter() - started) * 1000)
                for label, order in orders.items():
                    # the dense control needs no model pass: its added time is ~0
                    ms = 0.0 if label == "dense" else sent_ms
                    tallies.setdefault(f"{label}@{n}", Tally()).add(
                        [head_flags[j] for j in order], ms, m.hit_at_k(head_flags, n)
                    )
            if i % 20 == 0:
                log(f"  {name}: {i}/{len(questions)}")
    return {"questions": len(questions), "variants": {k: t.row() for k, t in tallies.items()}}


def fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def print_table(name: str, result: dict) -> None:
    print(f"\n### {name} ({result['questions']} questions)\n")
    print("| variant | hit@1 | hit@5 | MRR | recall@N | added ms p50 / p95 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, r in result["variants"].items():
        timing = f"{fmt(r['ms_p50'], 0)} / {fmt(r['ms_p95'], 0)}"
        if label == "fused":
            timing = f"(retrieval {timing})"
        print(
            f"| {label} | {fmt(r['hit_at_1'])} | {fmt(r['hit_at_5'])} | {fmt(r['mrr'])} "
            f"| {fmt(r['recall_at_n'])} | {timing} |"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="squad,solana,pg", help=f"comma-separated, of {', '.join(SETS)}")
    ap.add_argument("--n", default="5,10,20,30", help="candidate depths to rerank (comma-separated)")
    ap.add_argument("--limit", type=int, help="first N questions of each set (a quick look)")
    ap.add_argument(
        "--repeat", type=int, default=1, help="time each rerank this many times, keep the fastest"
    )
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    depths = sorted({int(x) for x in args.n.split(",")})
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    results: dict[str, dict] = {}
    for name in args.sets.split(","):
        print(f"{name}: {SETS[name].name}", flush=True)
        results[name] = run_set(
            name, SETS[name], depths, args.limit, args.repeat, lambda s: print(s, flush=True)
        )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    for name, result in results.items():
        print_table(name, result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
