"""A stand-in for an OpenAI-compatible server, spoken to over real HTTP on 127.0.0.1.

It is the one fake in the test suite: it stands where the outside world would be (the
model's words). Everything on our side (the ``openai`` client, ``ChatOpenAI``,
``OpenAIEmbeddings``, retries, timeouts, SSE parsing) runs for real against it.

It implements ``POST /v1/chat/completions`` (streamed as OpenAI's server-sent events, or one
JSON body), ``POST /v1/embeddings`` (deterministic hashed bag-of-words vectors, float or base64)
and ``GET /v1/models``; it records every request body, and can be told to misbehave on chat
completions: answer with an HTTP status, demand an API key, hang before or during the answer.

Use it through the ``fake_openai`` fixture: in a test module write
``pytest_plugins = ["tests.fake_openai"]``; the server starts once per session and each test
gets it reset. (PYTEST_DONT_REWRITE: test modules import this module before pytest loads it
as a plugin; it has no asserts to rewrite.)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

Reply = Callable[[dict], str]

# ---------------------------------------------------------------------------------------------
# Reading a chat request the way a model would
# ---------------------------------------------------------------------------------------------

PASSAGE_RE = re.compile(r'<passage n="(\d+)"[^>]*>(.*?)</passage>', re.DOTALL)
_DECLINE_RE = re.compile(r"exactly this sentence[^:\n]*:\s*(.+)")
_WORD_RE = re.compile(r"\w+")
_STOPWORDS = frozenset(
    """a an and are as at be by can do does for from how i in is it of on or our the their them
    there they this to was we what when where which who why will with you your""".split()  # noqa: SIM905
)


def text_of(content: Any) -> str:
    """A message's content as text (a string or a list of ``{"type": "text"}`` parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def system_text(body: dict) -> str:
    return "\n".join(text_of(m["content"]) for m in body.get("messages", []) if m["role"] == "system")


def user_text(body: dict) -> str:
    """The last user message."""
    users = [m for m in body.get("messages", []) if m["role"] == "user"]
    return text_of(users[-1]["content"]) if users else ""


def passages_in(body: dict) -> dict[int, str]:
    """The numbered passages of an answer request: {n: text}."""
    return {int(n): text.strip() for n, text in PASSAGE_RE.findall(user_text(body))}


def question_in(body: dict) -> str:
    """The question of an answer request (the text after the last 'Question:')."""
    text = user_text(body)
    return text.rsplit("Question:", 1)[-1].strip() if "Question:" in text else text.strip()


def is_answer_request(body: dict) -> bool:
    return "<passage" in user_text(body)


def followup_in(body: dict) -> str:
    """The follow-up of a condensing request."""
    match = re.search(r"Follow-up question:\s*(.+)", user_text(body))
    return match.group(1).strip() if match else user_text(body).strip()


def conversation_in(body: dict) -> str:
    match = re.search(r"<conversation>\n?(.*?)\n?</conversation>", user_text(body), re.DOTALL)
    return match.group(1) if match else ""


def wants_json(body: dict) -> bool:
    """The request asks for a JSON answer of a schema (``response_format`` json_schema, or
    llama-cpp-python's json_object with a schema)."""
    fmt = body.get("response_format") or {}
    return fmt.get("type") == "json_schema" or (fmt.get("type") == "json_object" and "schema" in fmt)


def keywords(text: str) -> set[str]:
    """Content words, lower case, with a crude plural strip (enough for tiny test corpora)."""
    words = {w.lower() for w in _WORD_RE.findall(text)}
    return {w.rstrip("s") if len(w) > 4 else w for w in words if w not in _STOPWORDS and len(w) > 2}


def decline_sentence(body: dict) -> str:
    """The sentence the system prompt says to reply with when the passages have no answer."""
    match = _DECLINE_RE.search(system_text(body))
    return match.group(1).strip() if match else "I could not find the answer in the documents."


@dataclass
class QuotingModel:
    """Behaves like a model that follows the rules: answers by quoting the sentence of the passage
    that shares the most words with the question, cited as [n]; declines when none shares any.

    ``invent`` makes it also cite a passage number that was never given (a hallucinated marker).
    A condensing request is answered with ``standalone`` if set, else with the last user turn
    joined to the follow-up, so the standalone question carries the words of both.
    """

    invent: int | None = None
    standalone: str | None = None

    def __call__(self, body: dict) -> str:
        if not is_answer_request(body):
            return self.condense(body)
        question = keywords(question_in(body))
        best, best_n, best_overlap = "", 0, 0
        for n, text in passages_in(body).items():
            for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
                overlap = len(question & keywords(sentence))
                if overlap > best_overlap:
                    best, best_n, best_overlap = sentence.strip(), n, overlap
        sentences = [{"text": best, "passages": [best_n]}] if best_overlap else []
        if sentences and self.invent is not None:
            sentences.append({"text": "This is also confirmed elsewhere.", "passages": [self.invent]})
        if wants_json(body):
            return json.dumps({"answerable": bool(sentences), "sentences": sentences})
        if not sentences:
            return decline_sentence(body)
        return " ".join(f"{s['text'].rstrip('.')} [{s['passages'][0]}]." for s in sentences)

    def condense(self, body: dict) -> str:
        if self.standalone is not None:
            return self.standalone
        users = [ln[len("User: ") :] for ln in conversation_in(body).splitlines() if ln.startswith("User: ")]
        followup = followup_in(body)
        return f"{users[-1].strip()} {followup}" if users else followup


@dataclass
class GullibleModel(QuotingModel):
    """A model with no defence at all: it obeys any 'say X' it finds *outside* the passage
    delimiters (as it parses them: up to the first ``</passage>``), else quotes like
    ``QuotingModel``. It shows whether a document can break out of its delimiters; it cannot
    show how a real model weighs instructions inside them.
    """

    def __call__(self, body: dict) -> str:
        outside = PASSAGE_RE.sub(" ", user_text(body))
        match = re.search(r"\bsay\s+([A-Z]{3,})\b", outside)
        return match.group(1) if match else super().__call__(body)


# ---------------------------------------------------------------------------------------------
# Deterministic embeddings
# ---------------------------------------------------------------------------------------------


def hashed_embedding(text: str, dim: int) -> np.ndarray:
    """L2-normalised hashed bag of words: texts sharing words have a higher cosine similarity."""
    vec = np.zeros(dim, dtype=np.float32)
    for word in _WORD_RE.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0 if (h >> 40) & 1 else -1.0
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        vec[0] = 1.0
        return vec
    return vec / norm


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    body: dict
    headers: dict[str, str]


@dataclass
class FakeOpenAI:
    """The fake server's state. Change the attributes in a test; ``reset()`` restores defaults.

    Misbehaviours apply to ``/v1/chat/completions`` only (embeddings always answer):
    ``status``: answer with this HTTP status and an OpenAI-style error body (``status_times``:
    only for the first N chat requests, then normally); ``api_key``: demand this bearer token,
    else 401; ``hang_s``: wait this long before answering (``hang_after_chunks``: send the headers
    and that many chunks first, as llama.cpp does while it reads the prompt; ``hang_times``: only
    the first N requests hang; ``keepalive_s``: meanwhile send an empty chunk that often);
    ``json_mode`` False: refuse ``response_format`` with a 400; ``refuse_formats``: answer
    these ``response_format`` types with this status, naming the field; ``replay``: exchanges recorded
    from a real server, sent again event by event at ``replay_speed`` times their recorded pace
    when a streamed request asks the same question with the same ``response_format`` type. A wait ends early when the
    client hangs up or the server stops.
    """

    reply: Reply = field(default_factory=QuotingModel)
    status: int | None = None
    status_times: int | None = None
    api_key: str | None = None
    hang_s: float = 0.0
    hang_after_chunks: int | None = None
    hang_times: int | None = None  # only the first N chat requests hang
    keepalive_s: float | None = None  # while a stream hangs, an empty chunk this often
    json_mode: bool = True  # False: refuse response_format with a 400, as some servers do
    refuse_formats: dict[str, int] = field(default_factory=dict)  # response_format type -> status
    replay: list[dict] | None = None  # exchanges recorded from a real server (scripts/record_model_server.py)
    replay_speed: float = 0.05  # recorded delays are multiplied by this
    embedding_dim: int = 256
    retry_after_ms: int = 5  # sent with 429/5xx so the client's backoff does not slow tests
    requests: list[Recorded] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._failures = 0
        self._hung = 0
        self.abandoned: list[dict] = []  # bodies of the streams the client hung up on before their end
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    # --- test API ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        defaults = FakeOpenAI.__dataclass_fields__
        with self._lock:
            self.reply = QuotingModel()
            for name in (
                "status",
                "status_times",
                "api_key",
                "hang_s",
                "hang_after_chunks",
                "hang_times",
                "keepalive_s",
                "json_mode",
                "replay",
                "replay_speed",
            ):
                setattr(self, name, defaults[name].default)
            self.refuse_formats = {}
            self.abandoned = []
            self._hung = 0
            self.embedding_dim = defaults["embedding_dim"].default
            self.requests = []
            self._failures = 0

    def chat_requests(self) -> list[dict]:
        """Bodies of every chat completion request, oldest first."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def embedding_requests(self) -> list[dict]:
        return [r.body for r in self.requests if r.path.endswith("/embeddings")]

    def start(self) -> FakeOpenAI:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        self._socket = sock
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()

    # --- behaviour -----------------------------------------------------------------------
    async def _wait(self, seconds: float, request: Request | None = None) -> None:
        """Sleep, but stop when the client has gone or the server stops.

        Inside a streamed body Starlette itself cancels the generator when the client goes.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping.is_set():
            if request is not None and await request.is_disconnected():
                return
            await asyncio.sleep(0.05)

    def _refusal(self, request: Request) -> Response | None:
        """The error response a misbehaviour calls for, or None to answer normally."""
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if self.status is not None:
            with self._lock:
                if self.status_times is not None and self._failures >= self.status_times:
                    return None
                self._failures += 1
            headers = {"retry-after-ms": str(self.retry_after_ms)} if self.status >= 429 else {}
            return _error(self.status, f"Simulated error {self.status}.", "server_error", None, headers)
        return None

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        async def recorded(request: Request) -> dict:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            with self._lock:
                self.requests.append(Recorded(request.method, request.url.path, body, dict(request.headers)))
            return body

        @app.get("/v1/models")
        async def models(request: Request) -> dict:
            await recorded(request)
            return {
                "object": "list",
                "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "tests"}],
            }

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await recorded(request)
            with self._lock:
                hang = bool(self.hang_s) and (self.hang_times is None or self._hung < self.hang_times)
                self._hung += hang
            if hang and self.hang_after_chunks is None:
                await self._wait(self.hang_s, request)
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
            if "response_format" in body and not self.json_mode:
                return _error(400, "response_format is not supported", "invalid_request_error", None)
            refused = self.refuse_formats.get((body.get("response_format") or {}).get("type"))
            if refused:  # as llama-cpp-python answers a json_schema format: a 500 that names it
                message = "('body', 'response_format', 'type'): Input should be 'text' or 'json_object'"
                return _error(refused, message, "internal_server_error", None)
            recorded_exchange = self._recorded(body)
            if recorded_exchange is not None:
                await self._wait(recorded_exchange["headers_s"] * self.replay_speed, request)
                if recorded_exchange["status"] != 200:  # the error as the server sent it
                    (_, error_body), *_ = recorded_exchange["events"]
                    return Response(error_body, recorded_exchange["status"], media_type="application/json")
                if not body.get("stream"):  # the recorded stream's words, as one reply
                    text = recorded_text(recorded_exchange)
                    return JSONResponse(_completion("chatcmpl-replayed", body.get("model", ""), text))
                return StreamingResponse(
                    self._replayed(recorded_exchange, body), media_type="text/event-stream"
                )
            text = self.reply(body)
            model = body.get("model", "fake-model")
            cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
            if not body.get("stream"):
                return JSONResponse(_completion(cid, model, text))
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._sse(cid, model, text, usage, hang, body), media_type="text/event-stream"
            )

        @app.post("/v1/embeddings")
        async def embeddings(request: Request) -> Response:
            body = await recorded(request)
            inputs = body.get("input", [])
            if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
                inputs = [inputs]
            dim = int(body.get("dimensions") or self.embedding_dim)
            data = []
            for i, item in enumerate(inputs):
                text = item if isinstance(item, str) else " ".join(f"tok{t}" for t in item)
                vec = hashed_embedding(text, dim)
                emb: Any = (
                    base64.b64encode(vec.astype("<f4").tobytes()).decode()
                    if body.get("encoding_format") == "base64"
                    else vec.tolist()
                )
                data.append({"object": "embedding", "index": i, "embedding": emb})
            tokens = sum(len(_WORD_RE.findall(str(x))) for x in inputs)
            return JSONResponse(
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model", "fake-embedding"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            )

        return app

    def _recorded(self, body: dict) -> dict | None:
        """The recorded exchange for this request: same question, same format."""
        if not self.replay:
            return None
        asked = question_in(body) if is_answer_request(body) else followup_in(body)
        kind = (asked, (body.get("response_format") or {}).get("type"), is_answer_request(body))
        for exchange in self.replay:
            if (exchange["question"], exchange["format"], is_answer_request(exchange["request"])) == kind:
                return exchange
        return None

    async def _replayed(self, exchange: dict, body: dict):
        """The recorded events at their recorded pace (scaled), after the headers."""
        sent_at = exchange["headers_s"]
        try:
            for at, line in exchange["events"]:
                await self._wait(max(0.0, at - sent_at) * self.replay_speed)
                sent_at = at
                yield line + "\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            with self._lock:
                self.abandoned.append(body)
            raise

    async def _sse(self, cid: str, model: str, text: str, usage: bool, hang: bool, body: dict):
        """OpenAI's stream: a role chunk, content chunks, a finish chunk, usage, ``[DONE]``;
        ``abandoned`` counts the streams whose client hung up before their end."""
        try:
            async for event in self._events(cid, model, text, usage, hang):
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            with self._lock:
                self.abandoned.append(body)
            raise

    async def _events(self, cid: str, model: str, text: str, usage: bool, hang: bool):

        def event(delta: dict, finish: str | None = None, **extra: Any) -> str:
            chunk = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(chunk)}\n\n"

        yield event({"role": "assistant", "content": ""})
        # pieces like a BPE tokenizer's: a word with its leading space ("Employees", " get", " [1].")
        for i, piece in enumerate(re.findall(r"\s*\S+|\s+$", text)):
            if hang and self.hang_after_chunks is not None and i == self.hang_after_chunks:
                if self.keepalive_s:  # a server that keeps the stream alive but writes nothing
                    deadline = time.monotonic() + self.hang_s
                    while time.monotonic() < deadline and not self._stopping.is_set():
                        await self._wait(self.keepalive_s)
                        yield event({"content": ""})
                else:
                    await self._wait(self.hang_s)
            yield event({"content": piece})
        yield event({}, "stop")
        if usage:
            n = len(text.split())
            chunk = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": {"prompt_tokens": 0, "completion_tokens": n, "total_tokens": n},
            }
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"


def recorded_text(exchange: dict) -> str:
    """The words of a recorded stream."""
    words = []
    for _, line in exchange["events"]:
        if line.startswith("data: {"):
            for choice in json.loads(line[len("data: ") :]).get("choices", []):
                words.append((choice.get("delta") or {}).get("content") or "")
    return "".join(words)


def _completion(cid: str, model: str, text: str) -> dict:
    n = len(text.split())
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": n, "total_tokens": n},
    }


def _error(
    status: int, message: str, type_: str, code: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def unused_base_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (a port just bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """One server per test session (starting uvicorn per test would cost more than the tests)."""
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    """The running fake server, reset: default model, no misbehaviour, no recorded requests."""
    fake_openai_server.reset()
    return fake_openai_server


def model_env(server: FakeOpenAI) -> dict[str, str]:
    """The app's settings to answer with this server's model (openai mode, "fake-model")."""
    return {
        "ASSISTANT_ANSWER_MODE": "openai",
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "test-key",
        "ASSISTANT_CHAT_MODEL": "fake-model",
    }
