"""What does the MCP protocol cost? ``search`` and ``ask`` through MCP (stdio and streamable
HTTP) against the Python API, on the same questions and the same index.

    python -m benchmarks.mcp_latency                  # 30 Paul Graham questions, their essays
    python -m benchmarks.mcp_latency --questions 55 --repeats 3

Builds an index of the essays the questions come from (in a temp dir), then times each question
``--repeats`` times, interleaving the ways so that drift hits them alike:

* Python: ``Assistant.retriever.retrieve`` / ``Assistant.ask`` in this process;
* stdio: the SDK's client with ``python -m assistant.mcp`` spawned as a desktop client would;
* HTTP: the SDK's client against ``/mcp`` of ``python app.py`` with an API key.

Reports p50/p95 per way, and the protocol's overhead: per question, its median time through MCP
minus its median time in Python (so that one slow run does not count as overhead), then p50/p95
over the questions; and the round trip of a call that does almost nothing (``list_documents``
with ``limit=1``). Target (issue 17): ``search`` over HTTP adds under 10 ms. Writes JSON (default
``test-output/benchmarks/mcp_latency.json``). Answers are extractive (offline).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
import numpy as np
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from _helpers_app import STAFF, app_env, running_app  # noqa: E402

ESSAYS = REPO.parent / "shared" / "eval-data" / "paul_graham_essays"
WAYS = ("python", "stdio", "http")


def percentiles(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
    }


async def timed_calls(client: Client, tool: str, questions: list[str], key: str) -> list[float]:
    out = []
    for q in questions:
        started = time.perf_counter()
        result = await client.call_tool(tool, {key: q})
        out.append(time.perf_counter() - started)
        assert not result.is_error, result.content
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "test-output" / "benchmarks" / "mcp_latency.json")
    args = ap.parse_args(argv)

    rows = json.loads((ESSAYS / "qa_pairs.json").read_text())[: args.questions]
    questions = [r["question"] for r in rows]
    root = Path(tempfile.mkdtemp(prefix="mcp-bench-"))
    corpus = root / "corpus"
    corpus.mkdir()
    for essay in {r["essay"] for r in rows}:
        shutil.copy(ESSAYS / "paul_graham_essays" / essay, corpus / essay)
    env = app_env(ASSISTANT_DATA_DIR=str(root / "data"), ASSISTANT_CORPUS_DIR=str(corpus))
    os.environ.update({k: v for k, v in env.items() if k.startswith("ASSISTANT_")})

    from assistant.core import Assistant
    from ingest.pipeline import ingest
    from kb.settings import load_settings

    settings = load_settings()
    started = time.perf_counter()
    report = ingest(None, settings)
    print(f"index: {report.summary()} in {time.perf_counter() - started:.0f}s")
    assistant = Assistant.from_settings(settings)

    tools = ("search", "ask", "round_trip")
    times: dict[str, dict[str, list[float]]] = {tool: {w: [] for w in WAYS} for tool in tools}

    def python_round() -> None:
        for _ in questions:
            t = time.perf_counter()
            assistant.kb.documents_page(limit=2)
            times["round_trip"]["python"].append(time.perf_counter() - t)
        for q in questions:
            t = time.perf_counter()
            assistant.retriever.retrieve(q, k=5)
            times["search"]["python"].append(time.perf_counter() - t)
        for q in questions:
            t = time.perf_counter()
            assistant.ask(q)
            times["ask"]["python"].append(time.perf_counter() - t)

    async def mcp_round(way: str, client: Client) -> None:
        for _ in questions:
            t = time.perf_counter()
            await client.call_tool("list_documents", {"limit": 1})
            times["round_trip"][way].append(time.perf_counter() - t)
        times["search"][way] += await timed_calls(client, "search", questions, "query")
        times["ask"][way] += await timed_calls(client, "ask", questions, "question")

    stdio = StdioServerParameters(
        command=sys.executable, args=["-m", "assistant.mcp"], cwd=str(REPO), env=env
    )
    with running_app(root, corpus=None) as app:
        made = subprocess.run(
            [sys.executable, "-m", "webapp.apikeys", "create", STAFF[0]],
            cwd=REPO,
            env=app_env(
                ASSISTANT_DATA_DIR=str(app.data_dir),
                ASSISTANT_CORPUS_DIR=str(corpus),
                ASSISTANT_USERS_FILE=str(root / "users.json"),
            ),
            capture_output=True,
            text=True,
            check=True,
        )
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {made.stdout.strip()}"}, timeout=120)

        async def run_all() -> None:
            async with (
                Client(stdio) as by_stdio,
                Client(streamable_http_client(f"{app.url}/mcp", http_client=http)) as by_http,
            ):
                for client in (by_stdio, by_http):  # warm-up: first calls load models, open files
                    await timed_calls(client, "search", questions[:3], "query")
                    await timed_calls(client, "ask", questions[:3], "question")
                for _ in range(args.repeats):
                    python_round()
                    await mcp_round("stdio", by_stdio)
                    await mcp_round("http", by_http)

        anyio.run(run_all)

    result: dict = {
        "questions": len(questions),
        "repeats": args.repeats,
        "chunks": assistant.kb.count_chunks(),
    }
    for tool, by_way in times.items():
        result[tool] = {way: percentiles(v) for way, v in by_way.items()}
        python = np.median(np.asarray(by_way["python"]).reshape(args.repeats, -1), axis=0)
        for way in ("stdio", "http"):
            mcp = np.median(np.asarray(by_way[way]).reshape(args.repeats, -1), axis=0)
            result[tool][f"{way}_overhead"] = percentiles(list(mcp - python))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
