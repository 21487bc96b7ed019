"""Record how a real OpenAI-compatible server answers, for the test fake to replay.

    .venv/bin/python scripts/record_model_server.py --base-url http://127.0.0.1:8089/v1 \\
        --model smollm2 --out tests/recordings/smollm2-llamacpp.json

Sends the assistant's own answer requests (plain-text and JSON-schema prompts, over passages of the
shipped corpus, questions it answers and questions it does not) and a condensing request, streamed,
and writes for each: the request, when the response headers came, and every server-sent event with
the time it arrived. ``tests/fake_openai.py`` replays these byte for byte (``FakeOpenAI.replay``),
so the tests meet the real server's habits: headers at once and then a silent prompt evaluation,
answers without [n] markers, paraphrased refusals, HTML fragments. Run it again after changing
the prompts or to record another server; nothing here runs in the test command.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx
from langchain_core.messages import convert_to_openai_messages

import kb  # noqa: F401  (telemetry off)
from assistant.llm import ChatAnswerer
from assistant.models import Passage
from assistant.prompts import CONDENSE_PROMPT, format_conversation
from assistant.structured import FORMATS

REPO = Path(__file__).resolve().parent.parent
ARTICLE = REPO / "corpus" / "innaxe-cluster-collaboration-results.txt"
QUESTIONS = [
    ("answerable", "Which organisations are in the INNAXE consortium?"),
    ("answerable", "When did the partners present the results?"),
    ("number", "How many meetings were held with leading European opinion leaders?"),
    ("unanswerable", "What was the total budget of the INNAXE project?"),
    ("unanswerable", "Who is the chief executive of BIOCAT?"),
]
CONVERSATION = [
    {"role": "user", "content": "Who are the partners of the INNAXE consortium?"},
    {"role": "assistant", "content": "Six European partners, among them BIOCAT and BioRN [1]."},
]


def passages() -> list[Passage]:
    """The article in three passages, as the retriever would number them."""
    paragraphs = [p for p in ARTICLE.read_text(encoding="utf-8").split("\n") if p.strip()]
    third = max(1, len(paragraphs) // 3)
    parts = ["\n".join(paragraphs[i : i + third]) for i in range(0, len(paragraphs), third)][:3]
    return [
        Passage(n=i, id=f"innaxe-{i}", text=text, source=ARTICLE.name, title="INNAXE results")
        for i, text in enumerate(parts, 1)
    ]


def record(client: httpx.Client, body: dict) -> dict:
    """One streamed request: when the headers came and each event with its arrival time (an
    error's body as its one event)."""
    started = time.perf_counter()
    events: list[list] = []
    with client.stream("POST", "/chat/completions", json=body) as response:
        headers_s = time.perf_counter() - started
        if response.status_code != 200:
            events.append([round(headers_s, 3), response.read().decode("utf-8", "replace")])
        else:
            for line in response.iter_lines():
                if line.strip():
                    events.append([round(time.perf_counter() - started, 3), line])
    return {"status": response.status_code, "headers_s": round(headers_s, 3), "events": events}


def exchange(client: httpx.Client, kind: str, question: str, body: dict) -> dict:
    fmt = body.get("response_format")
    print(f"{kind:12s} {fmt['type'] if fmt else 'text':11s} {question}", flush=True)
    return {
        "kind": kind,
        "format": fmt["type"] if fmt else None,
        "question": question,
        "request": body,
        **record(client, body),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--api-key", default="none")
    ap.add_argument("--max-tokens", type=int, default=300)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    given = passages()
    exchanges = []
    base = {"model": args.model, "stream": True, "temperature": 0, "max_tokens": args.max_tokens}
    with httpx.Client(
        base_url=args.base_url, timeout=300, headers={"Authorization": f"Bearer {args.api_key}"}
    ) as client:
        for kind, question in QUESTIONS:
            plain = convert_to_openai_messages(ChatAnswerer.answer_messages(question, given))
            exchanges.append(exchange(client, kind, question, {**base, "messages": plain}))
            structured = convert_to_openai_messages(
                ChatAnswerer.answer_messages(question, given, structured=True)
            )
            for fmt in FORMATS:  # each way the answerer asks for JSON, until one is taken
                body = {**base, "messages": structured, "response_format": fmt}
                exchanges.append(exchange(client, kind, question, body))
                if exchanges[-1]["status"] == 200:
                    break
        messages = CONDENSE_PROMPT.format_messages(
            conversation=format_conversation(CONVERSATION), question="When did they present the results?"
        )
        body = {**base, "max_tokens": 60, "messages": convert_to_openai_messages(messages)}
        exchanges.append(exchange(client, "condense", "When did they present the results?", body))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "server": args.base_url,
                "model": args.model,
                "recorded_at": time.strftime("%Y-%m-%d"),
                "exchanges": exchanges,
            },
            indent=1,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    print(f"wrote {len(exchanges)} exchanges to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
