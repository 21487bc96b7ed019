"""The OpenAI-compatible API: ``GET /v1/models`` and ``POST /v1/chat/completions`` (streaming or
not), so any OpenAI client, SDK or chat front-end can ask the documents.

* The last message is the question (it must be the user's); earlier user and assistant messages
  are the conversation, read as the chat reads its history; system messages are ignored (the
  assistant's own rules decide how it answers). Sampling options are accepted and ignored.
* The answer's citations travel in extra fields the OpenAI clients keep: ``citations`` (each
  ``n``, ``source``, ``title``, ``location``, ``page``, ``section``, ``quote``, ``text``, ``url``)
  ``declined``, ``verdict`` (``supported``, ``partly_supported``, ``unverified``: do the cited
  passages hold its claims? ``assistant.claims``), ``unsupported`` (the sentences they do not
  hold), ``uncertain`` and ``reason`` (shown as unsure, and why) and the offline answerer's
  ``confidence``, on the completion or on the stream's last chunk, which also carries
  ``answer``: the final text (it can differ from the joined deltas when the citation check
  changed it).
* Auth: ``Authorization: Bearer <API key>`` (``webapp.apikeys``); the request acts as that user.
  A key that is not valid is refused (401) even where the chat is open to everyone.
* Every answer takes one of the app's answering slots (``webapp.gate``): 429 with
  ``Retry-After`` when none is free.

``sse_answer`` is shared with ``POST /api/ask``'s ``stream: true``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.models import Answer
from kb.access import Scope
from webapp.apikeys import bearer_token
from webapp.chat import MAX_QUESTION_CHARS, MAX_TURN_CHARS, MAX_TURNS, file_url
from webapp.gate import Busy
from webapp.services import Services

MODEL_ID = "assistant"
OWNER = "documents-assistant"


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # temperature, max_tokens, ... do not apply
    model: str
    messages: list[Message] = Field(min_length=1, max_length=MAX_TURNS + 10)
    stream: bool = False


def openai_error(
    status: int, message: str, code: str, kind: str = "invalid_request_error", **kw
) -> JSONResponse:
    """An error body as OpenAI's API sends it, which its clients turn into typed exceptions."""
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": code, "param": None}}, status, **kw
    )


def citations_json(answer: Answer, base_url: str) -> list[dict[str, Any]]:
    out = []
    for c in answer.citations:
        p = c.passage
        out.append(
            {
                "n": c.n,
                "source": p.source,
                "title": p.title,
                "location": p.location,
                "page": p.page,
                "section": p.section,
                "quote": c.quote,
                "text": p.text,
                "url": base_url.rstrip("/") + file_url(p),
            }
        )
    return out


def question_and_history(messages: list[Message]) -> tuple[str, list[dict[str, str]]] | str:
    """The question (the last message, the user's) and the conversation before it, or why not."""
    last = messages[-1]
    if last.role != "user" or not last.text.strip():
        return "the last message must be the user's question"
    question = last.text.strip()
    if len(question) > MAX_QUESTION_CHARS:
        return f"the question is longer than {MAX_QUESTION_CHARS} characters"
    history = [
        {"role": m.role, "content": m.text[:MAX_TURN_CHARS]}
        for m in messages[:-1]
        if m.role in ("user", "assistant") and m.text.strip()
    ]
    return question, history[-MAX_TURNS:]


async def hold_slot(services: Services, threads: anyio.CapacityLimiter) -> AbstractContextManager:
    """Take an answering slot before a response starts (so "busy" can still be a 429). Callers
    wait in ``threads``, the answering routes' own workers, never in the server's shared pool."""
    services.gate.check_room()
    slot = services.gate.slot()
    await anyio.to_thread.run_sync(slot.__enter__, limiter=threads)
    return slot


def stream_in_slot(
    services: Services, slot: AbstractContextManager, question: str, history: list[dict], scope: Scope
) -> Iterator[str | Answer]:
    """The assistant's deltas and final ``Answer``; the slot is released when the stream ends,
    fails or is abandoned by the client."""
    try:
        yield from services.assistant.stream(question, history, scope)
    finally:
        slot.__exit__(None, None, None)


def sse_answer(
    items: Iterator[str | Answer], delta: Callable[[str], str], final: Callable[[Answer], str]
) -> Iterator[str]:
    """Server-Sent Events: one per text delta, then the final event built from the ``Answer``."""
    for item in items:
        if isinstance(item, Answer):
            yield final(item)
            return
        if item:
            yield delta(item)


def router(
    services: Services, user_of: Callable[[Request], Any], threads: anyio.CapacityLimiter
) -> APIRouter:
    api = APIRouter(prefix="/v1")

    def refused(request: Request) -> JSONResponse | None:
        """401 for a key that opens nothing, or for no caller where sign-in is required."""
        token = bearer_token(request.headers.get("authorization", ""))
        if token is not None and user_of(request) is None:
            return openai_error(401, "Incorrect or revoked API key.", "invalid_api_key")
        if services.settings.require_login and user_of(request) is None:
            return openai_error(
                401, "An API key is required: Authorization: Bearer <key>.", "missing_api_key"
            )
        return None

    def model_ids(request: Request) -> list[str]:
        """``assistant`` (everything the caller may read), and ``assistant/<collection>`` for
        each collection they may read."""
        collections, _ = services.readable(user_of(request))
        return [MODEL_ID, *(f"{MODEL_ID}/{c}" for c in collections)]

    @api.get("/models")
    def models(request: Request) -> JSONResponse:
        if (refusal := refused(request)) is not None:
            return refusal
        data = [{"id": m, "object": "model", "created": 0, "owned_by": OWNER} for m in model_ids(request)]
        return JSONResponse({"object": "list", "data": data})

    @api.post("/chat/completions")
    async def chat_completions(request: Request) -> Any:
        if (refusal := refused(request)) is not None:
            return refusal
        try:
            body = ChatCompletionRequest.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return openai_error(400, f"Invalid request: {str(exc)[:500]}", "invalid_request")
        # (only a collection's model name needs the list of what the caller may read)
        if body.model != MODEL_ID and body.model not in await anyio.to_thread.run_sync(model_ids, request):
            return openai_error(
                404, f"The model {body.model!r} does not exist; see GET /v1/models.", "model_not_found"
            )
        parsed = question_and_history(body.messages)
        if isinstance(parsed, str):
            return openai_error(400, parsed, "invalid_messages")
        question, history = parsed
        try:
            slot = await hold_slot(services, threads)
        except Busy as exc:
            return openai_error(
                exc.status,
                str(exc),
                "busy",
                "rate_limit_error",
                headers={"Retry-After": str(exc.retry_after_s)},
            )
        cid, created, base = f"chatcmpl-{secrets.token_hex(12)}", int(time.time()), str(request.base_url)
        scope = services.scope_of(user_of(request))
        if body.model != MODEL_ID:
            scope = scope.narrowed(collections=[body.model.removeprefix(MODEL_ID + "/")])
        items = stream_in_slot(services, slot, question, history, scope)

        def extra(answer: Answer) -> dict[str, Any]:
            return {
                "citations": citations_json(answer, base),
                "declined": answer.declined,
                "verdict": answer.verdict,
                "unsupported": answer.unsupported,
                "confidence": answer.confidence,
                "uncertain": answer.uncertain,
                "reason": answer.reason,
            }

        if not body.stream:
            answer = await anyio.to_thread.run_sync(partial(last_answer, items), limiter=threads)
            message = {"role": "assistant", "content": answer.text}
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": body.model,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    **extra(answer),
                }
            )

        model = body.model

        def chunk(delta: dict, finish: str | None = None, **more: Any) -> str:
            event = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **more,
            }
            return f"data: {json.dumps(event)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            yield from sse_answer(
                items,
                lambda text: chunk({"content": text}),
                lambda answer: chunk({}, "stop", answer=answer.text, **extra(answer)),
            )
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    return api


SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def last_answer(items: Iterator[str | Answer]) -> Answer:
    answer = None
    for item in items:
        if isinstance(item, Answer):
            answer = item
    assert answer is not None  # Assistant.stream always ends with its Answer
    return answer
