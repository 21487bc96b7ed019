"""Retrieval and extractive answer latency, and process memory, from 10k to 1M chunks.

    python -m benchmarks.retrieval_latency                          # 10k and 100k, embedded
    python -m benchmarks.retrieval_latency --targets 10000,100000,1000000 --queries 100,100,30
    ASSISTANT_CHROMA_HOST=127.0.0.1 ASSISTANT_CHROMA_PORT=8000 \\
    ASSISTANT_RECORD_DB_URL=postgresql+psycopg://postgres@127.0.0.1:5433/kb \\
        python -m benchmarks.retrieval_latency --targets 100000      # server mode
    python -m benchmarks.retrieval_latency --freshness              # ingest in one process, found by another

The index (kept in ``--data-dir``, default ``benchmarks/results/latency-index``) starts as the
212 Paul Graham essays (real chunks, real embeddings, ~4.2k chunks), then is padded to each
target with copies of those chunks whose vectors are jittered, written to Chroma and the
keyword index as ingestion writes them (embedding a million fresh chunks would take days on
2 cores). Copies make the keyword side harder than a real corpus: every term is ~N/4k times
as frequent.

Each target is measured in a fresh process (so its peak memory is its own): per question of
the essays' Q&A sets, hybrid retrieval (dense + keyword + fusion) and the whole extractive
``Assistant.ask``; p50/p95/max, and the process's RSS after loading and after the questions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import kb as _kb  # noqa: F401  (telemetry off)
from assistant.core import Assistant
from ingest.pipeline import ingest
from kb.keyword import KeywordRow
from kb.settings import Settings, load_settings
from kb.store import KnowledgeBase
from kb.terms import terms

REPO = Path(__file__).resolve().parent.parent
PG = REPO.parent / "shared" / "eval-data" / "paul_graham_essays"
PAD_PREFIX = "pad/"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def rss_mb(field: str = "VmRSS", pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def settings_for(data_dir: Path) -> Settings:
    """Environment settings (server mode if ASSISTANT_CHROMA_HOST / _RECORD_DB_URL are set)."""
    return load_settings(data_dir=data_dir, corpus_dir=PG / "paul_graham_essays")


def build(settings: Settings, target: int) -> None:
    """Ingest the essays once, then pad with jittered copies up to ``target`` chunks."""
    kb = KnowledgeBase(settings)
    if not kb.list_documents():
        t0 = time.perf_counter()
        report = ingest(None, settings, kb)
        print(f"ingested {report.summary()} in {time.perf_counter() - t0:.0f}s", flush=True)
    have = kb.count_chunks()
    if have >= target:
        return
    base = {"ids": [], "documents": [], "metadatas": [], "embeddings": []}
    for page in kb.pages(include=["documents", "metadatas", "embeddings"]):
        for i, m in enumerate(page["metadatas"]):
            if not m["source"].startswith(PAD_PREFIX):
                for key in base:
                    base[key].append(page[key][i])
    base_terms = [terms(t) for t in base["documents"]]
    vectors = np.asarray(base["embeddings"], dtype=np.float32)
    rng = np.random.default_rng(have)
    t0, added = time.perf_counter(), 0
    while have < target:
        n = min(len(base["ids"]), target - have, kb.max_batch)
        copy = have  # unique per batch
        pick = np.arange(n) % len(base["ids"])
        vecs = vectors[pick] + rng.normal(0, 0.02, (n, vectors.shape[1])).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        ids = [f"pad{copy}-{base['ids'][i]}" for i in pick]
        metas = [
            {**base["metadatas"][i], "source": f"{PAD_PREFIX}{copy}/{base['metadatas'][i]['source']}"}
            for i in pick
        ]
        kb.collection.add(
            ids=ids, documents=[base["documents"][i] for i in pick], metadatas=metas, embeddings=vecs
        )
        kb.keywords.add([KeywordRow(cid, m["source"], base_terms[i]) for cid, m, i in zip(ids, metas, pick)])
        have += n
        added += n
        if added % 50_000 < n:
            print(f"  padded to {have:,} chunks ({added / (time.perf_counter() - t0):.0f}/s)", flush=True)
    kb.bump_version()


def questions(limit: int) -> list[str]:
    qs = [q["question"] for q in json.loads((PG / "qa_pairs.json").read_text())]
    qs += [q["question"] for q in json.loads((PG / "question_and_answer_list.json").read_text())]
    return (qs * (limit // len(qs) + 1))[:limit]


def measure(settings: Settings, n_questions: int) -> dict:
    """One fresh process: load, warm up, time every question; memory before and after."""
    rss_start = rss_mb()
    t0 = time.perf_counter()
    assistant = Assistant.from_settings(settings)
    assistant.ask("warm-up question about startups")
    loaded = time.perf_counter() - t0
    rss_loaded = rss_mb()
    retrieval, answers = [], []
    for q in questions(n_questions):
        t0 = time.perf_counter()
        assistant.retriever.retrieve(q)
        retrieval.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assistant.ask(q)
        answers.append(time.perf_counter() - t0)
    return {
        "chunks": assistant.kb.count_chunks(),
        "keyword_rows": assistant.kb.keywords.count(),
        "mode": "server" if settings.chroma_host else "embedded",
        "queries": n_questions,
        "load_and_first_answer_s": round(loaded, 2),
        "retrieval_ms": {"p50": pct(retrieval, 50), "p95": pct(retrieval, 95), "max": max(retrieval) * 1000},
        "answer_ms": {"p50": pct(answers, 50), "p95": pct(answers, 95), "max": max(answers) * 1000},
        "rss_mb": {"start": rss_start, "loaded": rss_loaded, "end": rss_mb(), "peak": rss_mb("VmHWM")},
    }


def app_rss(data_dir: Path, n_questions: int) -> dict:
    """The web app itself (``python app.py``) on this index: RSS after start and after
    ``n_questions`` through ``/api/ask``, read from /proc."""
    import os
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_CORPUS_DIR": str(PG / "paul_graham_essays"),
        "ASSISTANT_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"

    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            try:
                health = httpx.get(f"{url}/healthz", timeout=5).json()
                if health.get("ok") and health["ingest"]["state"] != "running":
                    break
            except (httpx.HTTPError, ValueError):
                time.sleep(0.5)
        started = rss_mb(pid=proc.pid)
        for q in questions(n_questions):
            httpx.post(f"{url}/api/ask", json={"question": q}, timeout=120).raise_for_status()
        return {
            "chunks": health["chunks"],
            "started": started,
            "end": rss_mb(pid=proc.pid),
            "peak": rss_mb("VmHWM", proc.pid),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def freshness(settings: Settings, rounds: int) -> dict:
    """Seconds from an ingest returning in this process to another process's first question
    that finds the new document (it asks every 20 ms)."""
    uploads = settings.uploads_dir
    uploads.mkdir(parents=True, exist_ok=True)
    kb = KnowledgeBase(settings)
    delays = []
    for n in range(rounds):
        token = f"ZQ{int(time.time() * 1000) % 10**9}X{n}"
        watcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.retrieval_latency",
                "--data-dir",
                str(settings.data_dir),
                "--watch",
                token,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "ready"
        path = uploads / f"{token}.txt"
        path.write_text(f"The {token} valve is checked every Tuesday by the night crew.")
        ingest([path], settings, kb)
        done = time.time()
        found_at = float(watcher.stdout.readline())
        watcher.wait(timeout=60)
        delays.append(found_at - done)
        print(f"  round {n + 1}: found {found_at - done:+.3f} s after the ingest returned", flush=True)
    return {"rounds": rounds, "delay_s": {"max": max(delays), "median": float(np.median(delays))}}


def watch(settings: Settings, token: str) -> None:
    """The other process: ask until ``token`` is found, print the wall-clock time it was."""
    assistant = Assistant.from_settings(settings)
    assistant.retriever.retrieve("warm-up")
    print("ready", flush=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        passages = assistant.retriever.retrieve(f"When is the {token} valve checked?")
        if any(token in p.text for p in passages):
            print(time.time(), flush=True)
            return
        time.sleep(0.02)
    print("nan", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="10000,100000", help="chunk counts, comma-separated, ascending")
    ap.add_argument("--queries", default="100", help="questions per target (one number, or one per target)")
    ap.add_argument("--data-dir", type=Path, default=REPO / "benchmarks" / "results" / "latency-index")
    ap.add_argument(
        "--freshness", type=int, nargs="?", const=5, help="measure cross-process freshness N times"
    )
    ap.add_argument(
        "--app", type=int, metavar="N", help="also measure the web app's RSS over N /api/ask questions"
    )
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # child: measure N questions
    ap.add_argument("--watch", help=argparse.SUPPRESS)  # child: wait for a token
    args = ap.parse_args()
    settings = settings_for(args.data_dir)

    if args.measure:
        print(json.dumps(measure(settings, args.measure)))
        return
    if args.watch:
        watch(settings, args.watch)
        return
    results: dict = {"targets": []}
    if args.freshness:
        build(settings, 0)
        results["freshness"] = freshness(settings, args.freshness)
        print(json.dumps(results["freshness"]))
    else:
        targets = [int(t) for t in args.targets.split(",")]
        counts = [int(q) for q in args.queries.split(",")]
        for i, target in enumerate(targets):
            t0 = time.perf_counter()
            build(settings, target)
            print(f"index at {target:,} chunks ready in {time.perf_counter() - t0:.0f}s", flush=True)
            child = [sys.executable, "-m", "benchmarks.retrieval_latency", "--data-dir", str(args.data_dir)]
            n = counts[min(i, len(counts) - 1)]
            out = subprocess.run(
                [*child, "--measure", str(n)], cwd=REPO, capture_output=True, text=True, check=True
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if args.app:
                result["app_rss_mb"] = app_rss(args.data_dir, args.app)
                print(f"  app RSS {result['app_rss_mb']}", flush=True)
            results["targets"].append(result)
            r, a, m = result["retrieval_ms"], result["answer_ms"], result["rss_mb"]
            print(
                f"{result['mode']:>8} {result['chunks']:>9,} chunks  retrieval p50 {r['p50']:.0f} / p95 {r['p95']:.0f} ms"
                f"  answer p50 {a['p50']:.0f} / p95 {a['p95']:.0f} ms  RSS {m['loaded']:.0f} -> {m['end']:.0f} MB"
                f" (peak {m['peak']:.0f})",
                flush=True,
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
