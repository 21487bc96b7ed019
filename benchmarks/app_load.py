"""How fast does the web app start and how does it hold up under concurrent users?

    python -m benchmarks.app_load                      # 20 clients x 5 questions, shipped corpus
    python -m benchmarks.app_load --clients 50 --questions 3 --concurrency-limit 16

Starts ``python app.py`` in a subprocess on a free port with a fresh data dir, then measures:

* cold start: process start -> ``/healthz`` ok (includes ingesting ``corpus/`` into an empty
  index and loading the embedding model), then -> first answer through ``gradio_client``;
* warm restart: the same with the index already built (the corpus is unchanged, so the
  start-up ingest only hashes files);
* load: N concurrent ``gradio_client`` clients, each asking M questions in a row through the
  public ``/chat`` endpoint (streaming, as the page does); throughput (answers/s) and latency
  p50/p95 per answer, plus errors.

Prints a summary and writes it as JSON (default ``test-output/benchmarks/app_load.json``).
Answers are extractive (offline) unless the environment selects a model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from _helpers_app import chat, client, running_app  # noqa: E402

QUESTIONS = [
    "Which partners make up the INNAXE consortium?",
    "What results did the INNAXE project highlight?",
    "How many responses did the joint survey get?",
    "What is the Joint Programme?",
    "When does the INNAXE project officially end?",
    "Who co-finances INNAXE?",
    "How many participants took part in co-creation activities?",
]


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def first_answer(url: str) -> tuple[float, float]:
    """(seconds to connect a client, seconds for the first answer)."""
    t0 = time.perf_counter()
    c = client(url)
    t1 = time.perf_counter()
    messages = chat(c, QUESTIONS[0])
    t2 = time.perf_counter()
    if len(messages) < 2:
        raise RuntimeError(f"no answer: {messages!r}")
    return t1 - t0, t2 - t1


def load(url: str, clients: int, questions: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def user(i: int) -> None:
        try:
            c = client(url)
        except Exception as exc:  # count it, keep the others going
            with lock:
                errors.append(f"connect: {exc}")
            start.wait()
            return
        start.wait()
        for j in range(questions):
            q = QUESTIONS[(i + j) % len(QUESTIONS)]
            t = time.perf_counter()
            try:
                messages = chat(c, q)
                ok = len(messages) >= 2
            except Exception as exc:
                ok, messages = False, exc
            took = time.perf_counter() - t
            with lock:
                (latencies.append(took) if ok else errors.append(f"{q}: {messages}"))

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(clients)]
    for th in threads:
        th.start()
    start.wait()  # every client connected: the clock starts with the first question
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "questions_per_client": questions,
        "answers": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "wall_s": round(wall, 2),
        "throughput_answers_per_s": round(len(latencies) / wall, 2) if wall else None,
        "latency_p50_s": round(percentile(latencies, 0.5), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "latency_mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "latency_max_s": round(max(latencies), 3) if latencies else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.app_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--questions", type=int, default=5, help="questions per client")
    p.add_argument("--concurrency-limit", type=int, default=None, help="ASSISTANT_CONCURRENCY_LIMIT")
    p.add_argument(
        "--fake-model-latency",
        type=float,
        default=None,
        metavar="S",
        help="answer in openai mode from the tests' fake model server, which waits S seconds per "
        "answer (shows how the queue's concurrency limit serves users while a model is slow)",
    )
    p.add_argument("--out", type=Path, default=REPO / "test-output" / "benchmarks" / "app_load.json")
    args = p.parse_args(argv)

    extra = {"ASSISTANT_CONCURRENCY_LIMIT": str(args.concurrency_limit)} if args.concurrency_limit else {}
    result: dict = {"cpu_count": os.cpu_count(), "mode": "extractive"}
    fake = None
    if args.fake_model_latency is not None:
        from fake_openai import FakeOpenAI

        fake = FakeOpenAI(hang_s=args.fake_model_latency).start()
        extra |= {"ASSISTANT_ANSWER_MODE": "openai", "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "x"}
        result["mode"] = f"openai (fake model, {args.fake_model_latency}s per answer)"
    with tempfile.TemporaryDirectory(prefix="app-load-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        with running_app(root, extra_env=extra) as app:
            healthy = time.perf_counter() - t0
            connect, answer = first_answer(app.url)
            result["cold_start"] = {
                "start_to_healthy_s": round(healthy, 2),
                "client_connect_s": round(connect, 3),
                "first_answer_s": round(answer, 3),
                "start_to_first_answer_s": round(healthy + connect + answer, 2),
                "documents": app.health()["documents"],
                "chunks": app.health()["chunks"],
            }
            result["load"] = load(app.url, args.clients, args.questions)
            result["concurrency_limit"] = args.concurrency_limit or "default (settings)"
        # a second start on the same data dir: the corpus is unchanged, the index is there
        t0 = time.perf_counter()
        with running_app(root, extra_env=extra) as app:
            healthy = time.perf_counter() - t0
            connect, answer = first_answer(app.url)
            result["warm_restart"] = {
                "start_to_healthy_s": round(healthy, 2),
                "start_to_first_answer_s": round(healthy + connect + answer, 2),
            }

    if fake is not None:
        fake.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    cold, ld, warm = result["cold_start"], result["load"], result["warm_restart"]
    print(
        f"cold start: healthy after {cold['start_to_healthy_s']}s, first answer after "
        f"{cold['start_to_first_answer_s']}s (answer itself {cold['first_answer_s']}s)"
    )
    print(
        f"warm restart: healthy after {warm['start_to_healthy_s']}s, first answer after "
        f"{warm['start_to_first_answer_s']}s"
    )
    print(
        f"load: {ld['clients']} clients x {ld['questions_per_client']} questions: {ld['answers']} answers, "
        f"{ld['errors']} errors in {ld['wall_s']}s -> {ld['throughput_answers_per_s']} answers/s, "
        f"p50 {ld['latency_p50_s']}s, p95 {ld['latency_p95_s']}s"
    )
    print(f"written to {args.out}")
    return 0 if ld["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
