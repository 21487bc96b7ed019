"""How fast does the web app start, and how does it hold up (latency and memory) under load?

    python -m benchmarks.app_load                       # ~200 essays, 50x3 API + 20x2 chat, 3 rounds
    python -m benchmarks.app_load --corpus corpus --rounds 1 --api-clients 20
    python -m benchmarks.app_load --data-dir /tmp/kb-bench   # keep the index between runs

Starts ``python app.py`` in a subprocess on a free port (fresh data dir unless ``--data-dir``),
then measures:

* cold start: process start -> ``/healthz`` ok -> start-up ingest done -> first answer;
* rounds of load, each: N clients asking M questions in a row on ``POST /api/ask`` at once, then
  K clients asking L questions through the public Gradio ``chat`` event (streaming, as the page
  does); per part the success rate, refusals (429/503, which are allowed: everything else is an
  error), latency p50/p95, and the app's peak RSS during the round and its RSS after 5 s idle;
* warm restart: the same start again on the index just built.

Targets (the security issue): no request lost or failing other than a clean 429/503, peak RSS
under 1.5 GB, the last round's peak within 10% of the first. Prints a summary and writes JSON
(default ``test-output/benchmarks/app_load.json``). Answers are extractive (offline) unless
``--fake-model-latency`` selects the tests' fake model server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from _helpers_app import chat, client, running_app, wait_until_healthy  # noqa: E402

ESSAYS = REPO.parent / "shared" / "eval-data" / "paul_graham_essays"
INNAXE_QUESTIONS = [
    "Which partners make up the INNAXE consortium?",
    "What results did the INNAXE project highlight?",
    "How many responses did the joint survey get?",
    "What is the Joint Programme?",
    "When does the INNAXE project officially end?",
    "Who co-finances INNAXE?",
    "How many participants took part in co-creation activities?",
]


def questions_for(corpus: Path) -> list[str]:
    """The shipped corpus's questions, plus the essays' own when the essays are the corpus."""
    qa = ESSAYS / "qa_pairs.json"
    extra = [row["question"] for row in json.loads(qa.read_text())] if qa.is_file() else []
    return INNAXE_QUESTIONS + (extra if corpus.resolve() != (REPO / "corpus").resolve() else [])


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler:
    """The peak of a process's resident memory while the ``with`` block runs (sampled at 10 Hz)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mb, self._stop = pid, 0.0, threading.Event()

    def __enter__(self) -> RssSampler:
        def sample() -> None:
            while not self._stop.is_set():
                self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
                self._stop.wait(0.1)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb(self.pid))


def run_clients(clients: int, questions: int, ask) -> dict:
    """``clients`` threads, each calling ``ask(i, j)`` ``questions`` times; ask returns 'ok',
    'refused' (a clean 429/503) or raises/returns anything else for an error."""
    outcomes: dict[str, int] = {"ok": 0, "refused": 0, "error": 0}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def user(i: int) -> None:
        start.wait()
        for j in range(questions):
            t = time.perf_counter()
            try:
                result = ask(i, j)
            except Exception as exc:  # count it, keep the others going
                result = f"{type(exc).__name__}: {exc}"[:200]
            took = time.perf_counter() - t
            with lock:
                if result == "ok":
                    outcomes["ok"] += 1
                    latencies.append(took)
                elif result == "refused":
                    outcomes["refused"] += 1
                else:
                    outcomes["error"] += 1
                    errors.append(str(result))

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(clients)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    total = clients * questions
    return {
        "requests": total,
        **outcomes,
        "success_rate": round(outcomes["ok"] / total, 3),
        "error_samples": errors[:3],
        "wall_s": round(wall, 2),
        "answers_per_s": round(outcomes["ok"] / wall, 2) if wall else None,
        "p50_s": round(percentile(latencies, 0.5), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
    }


def api_load(url: str, clients: int, questions: int, pool: list[str]) -> dict:
    http = httpx.Client(base_url=url, timeout=300, limits=httpx.Limits(max_connections=clients + 5))

    def ask(i: int, j: int) -> str:
        r = http.post("/api/ask", json={"question": pool[(i * questions + j) % len(pool)]})
        if r.status_code == 200 and "text" in r.json():
            return "ok"
        if r.status_code in (429, 503) and r.headers.get("retry-after"):
            return "refused"
        return f"HTTP {r.status_code}: {r.text[:120]}"

    return run_clients(clients, questions, ask)


def chat_load(url: str, clients: int, questions: int, pool: list[str]) -> dict:
    connected = [client(url) for _ in range(clients)]

    def ask(i: int, j: int) -> str:
        messages = chat(connected[i], pool[(i * questions + j + 3) % len(pool)])
        last = messages[-1]["content"] if messages else ""
        text = last if isinstance(last, str) else json.dumps(last)
        return "refused" if "please ask again" in text else ("ok" if len(messages) >= 2 else "no answer")

    return run_clients(clients, questions, ask)


def first_answer(url: str, question: str) -> float:
    t = time.perf_counter()
    r = httpx.post(f"{url}/api/ask", json={"question": question}, timeout=300)
    r.raise_for_status()
    return time.perf_counter() - t


def wait_for_ingest(url: str, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/healthz", timeout=10).json()["ingest"]["state"] == "running":
        if time.monotonic() > deadline:
            raise TimeoutError("the start-up ingest did not finish")
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.app_load", description=__doc__.split("\n\n")[0])
    default_corpus = ESSAYS / "paul_graham_essays"
    p.add_argument(
        "--corpus", type=Path, default=default_corpus if default_corpus.is_dir() else REPO / "corpus"
    )
    p.add_argument("--data-dir", type=Path, default=None, help="keep the app's files here (reuse the index)")
    p.add_argument("--api-clients", type=int, default=50)
    p.add_argument("--api-questions", type=int, default=3, help="questions per API client")
    p.add_argument("--chat-clients", type=int, default=20)
    p.add_argument("--chat-questions", type=int, default=2, help="questions per chat client")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency-limit", type=int, default=None, help="ASSISTANT_CONCURRENCY_LIMIT")
    p.add_argument(
        "--fake-model-latency",
        type=float,
        default=None,
        metavar="S",
        help="answer in openai mode from the tests' fake model server, which waits S seconds per answer",
    )
    p.add_argument("--out", type=Path, default=REPO / "test-output" / "benchmarks" / "app_load.json")
    args = p.parse_args(argv)

    extra = {"ASSISTANT_CONCURRENCY_LIMIT": str(args.concurrency_limit)} if args.concurrency_limit else {}
    result: dict = {"cpu_count": os.cpu_count(), "mode": "extractive", "corpus": str(args.corpus)}
    fake = None
    if args.fake_model_latency is not None:
        from fake_openai import FakeOpenAI

        fake = FakeOpenAI(hang_s=args.fake_model_latency).start()
        extra |= {"ASSISTANT_ANSWER_MODE": "openai", "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "x"}
        result["mode"] = f"openai (fake model, {args.fake_model_latency}s per answer)"
    pool = questions_for(args.corpus)
    tmp = tempfile.mkdtemp(prefix="app-load-")
    root = args.data_dir or Path(tmp)
    try:
        t0 = time.perf_counter()
        with running_app(root, corpus=args.corpus, extra_env=extra, wait_for_ingest=False) as app:
            healthy = time.perf_counter() - t0
            wait_for_ingest(app.url)
            ingested = time.perf_counter() - t0
            health = app.health()
            result["cold_start"] = {
                "start_to_healthy_s": round(healthy, 2),
                "start_to_ingested_s": round(ingested, 2),
                "first_answer_s": round(first_answer(app.url, pool[0]), 3),
                "documents": health["documents"],
                "chunks": health["chunks"],
                "rss_idle_mb": round(rss_mb(app.process.pid), 1),
            }
            result["rounds"] = []
            for n in range(1, args.rounds + 1):
                with RssSampler(app.process.pid) as api_rss:
                    api = api_load(app.url, args.api_clients, args.api_questions, pool)
                with RssSampler(app.process.pid) as chat_rss:
                    chats = chat_load(app.url, args.chat_clients, args.chat_questions, pool)
                time.sleep(5)
                one = {
                    "round": n,
                    "api": api,
                    "chat": chats,
                    "peak_rss_mb": round(max(api_rss.peak_mb, chat_rss.peak_mb), 1),
                    "rss_after_mb": round(rss_mb(app.process.pid), 1),
                }
                result["rounds"].append(one)
                print(summary_line(one), flush=True)
        t0 = time.perf_counter()
        with running_app(root, corpus=None, extra_env=extra, wait_for_ingest=False) as app:
            healthy = time.perf_counter() - t0
            answer = first_answer(app.url, pool[0])
            wait_until_healthy(app, wait_for_ingest=True)
            result["warm_restart"] = {
                "start_to_healthy_s": round(healthy, 2),
                "start_to_first_answer_s": round(healthy + answer, 2),
                "start_to_ingest_checked_s": round(time.perf_counter() - t0, 2),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if fake is not None:
            fake.stop()

    rounds = result["rounds"]
    result["third_round_peak_vs_first"] = round(rounds[-1]["peak_rss_mb"] / rounds[0]["peak_rss_mb"], 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    cold, warm = result["cold_start"], result["warm_restart"]
    print(
        f"cold start: healthy after {cold['start_to_healthy_s']}s, {cold['documents']} documents "
        f"({cold['chunks']} chunks) ingested after {cold['start_to_ingested_s']}s, idle RSS "
        f"{cold['rss_idle_mb']} MB"
    )
    print(
        f"warm restart: healthy after {warm['start_to_healthy_s']}s, first answer after "
        f"{warm['start_to_first_answer_s']}s"
    )
    print(f"last round's peak / first round's: {result['third_round_peak_vs_first']}")
    print(f"written to {args.out}")
    errors = sum(r["api"]["error"] + r["chat"]["error"] for r in rounds)
    return 0 if errors == 0 else 1


def summary_line(r: dict) -> str:
    def part(name: str, d: dict) -> str:
        return (
            f"{name} {d['ok']}/{d['requests']} ok, {d['refused']} refused, {d['error']} errors, "
            f"p50 {d['p50_s']}s p95 {d['p95_s']}s"
        )

    return (
        f"round {r['round']}: {part('api', r['api'])}; {part('chat', r['chat'])}; "
        f"peak RSS {r['peak_rss_mb']} MB, after {r['rss_after_mb']} MB"
    )


if __name__ == "__main__":
    sys.exit(main())
