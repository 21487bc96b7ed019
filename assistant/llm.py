"""The model answer mode: an OpenAI-compatible chat model writes the answer from the passages.

Works with OpenAI and with any server that speaks its API (vLLM, llama.cpp, Ollama, LiteLLM) via
``OPENAI_BASE_URL``. Failures become an ``AnswerError`` whose message tells the user what is
wrong in words (server down, key rejected, timeout) instead of a stack trace.

Every call is bounded: ``max_tokens`` (answer, rewrite) and the configured stop sequences.

Answers are asked for as JSON through ``response_format`` (``assistant.structured``) unless
``ASSISTANT_STRUCTURED_ANSWERS=off``; with ``auto`` (the default) a server that refuses it (400)
is asked in plain text from then on, and one that ignores it is read as plain text.

Retries (``max_retries``, with backoff or the server's ``Retry-After``): connection errors,
timeouts, 429 and 5xx, and a stream that opened but brought no words in time (see
``ChatAnswerer.stream``; the follow-up rewrite leaves this to the openai client). A retry never
duplicates text: once tokens have been yielded nothing is retried, and an interrupted answer is
reported as such.
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

import openai
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI

from assistant.errors import AnswerError
from assistant.history import acceptable_rewrite, clean_history, depends_on_conversation
from assistant.models import Passage
from assistant.prompts import (
    ANSWER_PROMPT,
    CONDENSE_PROMPT,
    STRUCTURED_PROMPT,
    format_asked,
    format_conversation,
    format_passages,
)
from assistant.structured import FORMATS, StructuredReader
from kb.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_QUESTION_PREFIX = re.compile(r"^\s*(standalone question|question|user)\s*:\s*", re.IGNORECASE)


def _http_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeout, transport) exception types of the HTTP libraries the openai client may use.

    A failure while the answer is streaming comes from the HTTP library itself, not wrapped by
    openai; recent openai releases use ``httpx2`` instead of ``httpx``.
    """
    timeouts: list[type[Exception]] = []
    transports: list[type[Exception]] = []
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transports.append(module.TransportError)
    return tuple(timeouts), tuple(transports)


_HTTP_TIMEOUTS, _HTTP_TRANSPORT = _http_errors()


class FirstTokenTimeout(TimeoutError):
    """The stream is open but no words came in time."""


def _retryable(exc: Exception) -> bool:
    """Worth asking again: no connection, a timeout (before or inside the stream), 409, 429, 5xx;
    not a refused key, an unknown model or a bad request."""
    if isinstance(exc, (FirstTokenTimeout, openai.APIConnectionError, *_HTTP_TIMEOUTS, *_HTTP_TRANSPORT)):
        return True
    status = getattr(exc, "status_code", None)
    return status is not None and (status in (408, 409, 429) or status >= 500)


def _backoff(exc: Exception, attempt: int) -> float:
    """Seconds before the next try: what the server asked for (``Retry-After``), else 0.5, 1, 2, ..."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if "retry-after-ms" in headers:
            return min(float(headers["retry-after-ms"]) / 1000, 30.0)
        if "retry-after" in headers:
            return min(float(headers["retry-after"]), 30.0)
    except ValueError:
        pass
    return min(0.5 * 2**attempt, 8.0)


def _shown_url(url: str | None) -> str:
    """The base URL without any user:password part, safe to show and log."""
    parts = urlsplit(url or DEFAULT_BASE_URL)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")


def _content_text(content: object) -> str:
    """A message chunk's text; some servers send a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return ""


class ChatAnswerer:
    """Answers with an OpenAI-compatible chat model; implements the ``Answerer`` protocol."""

    mode = "openai"

    def __init__(self, settings: Settings) -> None:
        self.model = settings.chat_model
        self.base_url = _shown_url(settings.openai_base_url)
        self.timeout_s = settings.request_timeout_s
        self.retries = settings.max_retries
        # the ways of asking for JSON this server has not refused yet, best first
        self._formats = list(FORMATS) if settings.structured_answers != "off" else []
        self._structured_required = settings.structured_answers == "on"
        common = {"model": settings.chat_model, "temperature": settings.temperature}
        client = settings.openai_client_kwargs()
        # the answer's stream retries in ``stream`` (before the first words, whatever failed)
        answer_limits = settings.model_limits(settings.answer_max_tokens)
        self._llm = ChatOpenAI(streaming=True, **common, **{**client, "max_retries": 0}, **answer_limits)
        self._extra_body = answer_limits.get("extra_body", {})
        self._condenser = ChatOpenAI(
            **common, **client, **settings.model_limits(settings.condense_max_tokens)
        )

    # --- Answerer protocol ------------------------------------------------------------
    def condense(self, question: str, history: list[dict]) -> str:
        """Rewrite a follow-up into a standalone question. No model call when there is no
        history or the question stands alone; a rewrite that is not a question, or drops what
        the user asked, gives way to the offline rewrite (``assistant.followups.condense``)."""
        turns = clean_history(history)
        if not turns or not depends_on_conversation(question):
            return question
        messages = CONDENSE_PROMPT.format_messages(conversation=format_conversation(turns), question=question)
        started = time.perf_counter()
        try:
            reply = self._condenser.invoke(messages)
        except Exception as exc:
            error = self._map_error(exc, "condense", started, streamed=False)
            if error is exc:
                raise
            raise error from exc
        standalone = self._clean_question(_content_text(reply.content))
        log.info(
            "condensed question with %s in %.2fs (%d turns)",
            self.model,
            time.perf_counter() - started,
            len(turns),
        )
        if acceptable_rewrite(question, standalone):
            return standalone
        from assistant.followups import condense as offline_condense

        log.info("the model's rewrite was not kept (not a question, or it dropped the user's words)")
        return offline_condense(question, turns)

    def stream(self, question: str, passages: Sequence[Passage], asked: str | None = None) -> Iterator[str]:
        """Yield the answer's text deltas as the model writes them, with [n] markers (a JSON
        answer is shown a sentence at a time, as each one completes).

        The first words must come within ``request_timeout_s`` of the request, even from a
        server that sends its headers at once and then reads the prompt in silence (llama.cpp)
        or keeps the stream alive with empty chunks: otherwise the request is closed (so the
        server stops working on it) and sent again, ``max_retries`` times. Once words are out,
        each read may take ``request_timeout_s``, and nothing is retried once shown."""
        attempt = 0
        while True:
            structured = bool(self._formats)
            messages = self.answer_messages(question, passages, asked, structured=structured)
            started = time.perf_counter()
            chars = shown_chars = 0  # received; shown to the user (less while JSON is read)
            reader = StructuredReader() if structured else None
            # in the body as it is (not langchain's ``response_format``, which parses the reply itself)
            extra = (
                {"extra_body": {**self._extra_body, "response_format": self._formats[0]}}
                if structured
                else {}
            )
            chunks = self._llm.stream(messages, **extra)
            try:
                for chunk in chunks:
                    text = _content_text(chunk.content)
                    if text:
                        chars += len(text)
                        shown = reader.feed(text) if reader else text
                        if shown:
                            shown_chars += len(shown)
                            yield shown
                    elif not chars and time.perf_counter() - started > self.timeout_s:
                        raise FirstTokenTimeout(f"no words within {self.timeout_s:g} s")
            except Exception as exc:
                chunks.close()  # the connection goes, and with it the server's work on this request
                if structured and not chars and self._refused_format(exc):
                    continue  # asked again another way, not counted as a retry
                if not shown_chars and attempt < self.retries and _retryable(exc):
                    wait = _backoff(exc, attempt)
                    attempt += 1
                    log.info(
                        "no answer from %s after %.1fs (%s): asking again in %.1fs (%d of %d)",
                        self.model,
                        time.perf_counter() - started,
                        type(exc).__name__,
                        wait,
                        attempt,
                        self.retries,
                    )
                    time.sleep(wait)
                    continue
                error = self._map_error(exc, "answer", started, streamed=shown_chars > 0)
                if error is exc:
                    raise
                raise error from exc
            if reader is not None:
                rest = reader.finish()
                if rest:
                    yield rest
                if not reader.valid:
                    log.warning("the structured reply of %s did not parse whole; kept what did", self.model)
            log.info(
                "answered with %s in %.2fs (%d passages, %d chars%s)",
                self.model,
                time.perf_counter() - started,
                len(passages),
                chars,
                ", JSON" if structured else "",
            )
            return

    @property
    def structured(self) -> bool:
        """Answers are asked for as JSON (until the server has refused every way of asking)."""
        return bool(self._formats)

    def _refused_format(self, exc: Exception) -> bool:
        """The server rejected this way of asking for JSON: a 400, or an error that names
        ``response_format`` (llama-cpp-python answers an unknown format with a 500). With
        ``auto`` the next way is tried, then plain text; this answerer is shared, so that is
        decided once for every later question. With ``on`` the last refusal is an error."""
        status = getattr(exc, "status_code", None)
        names_it = "response_format" in str(exc).lower()
        if not (status == 400 or (status in (422, 500) and names_it)):
            return False
        if self._structured_required and len(self._formats) == 1:
            return False  # "on": refusing every way is an error the user reads
        refused = self._formats.pop(0)
        log.warning(
            "%s at %s refused response_format %s (%s); %s",
            self.model,
            self.base_url,
            refused["type"],
            status,
            "trying another way" if self._formats else "asking for plain text from now on",
        )
        return True

    # --- helpers -----------------------------------------------------------------------
    @staticmethod
    def answer_messages(
        question: str, passages: Sequence[Passage], asked: str | None = None, *, structured: bool = False
    ) -> list[BaseMessage]:
        """The exact messages sent for an answer (tests read them). ``asked``: the user's own
        words, sent beside a rewritten follow-up (a rewrite can miss a nuance); ``structured``:
        the JSON-answer variant of the rules."""
        prompt = STRUCTURED_PROMPT if structured else ANSWER_PROMPT
        return prompt.format_messages(
            passages=format_passages(passages), question=question, asked=format_asked(question, asked)
        )

    @staticmethod
    def _clean_question(text: str) -> str:
        """First non-empty line, without a 'Standalone question:' preamble or quotes."""
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        line = _QUESTION_PREFIX.sub("", line).strip()
        if len(line) >= 2 and line[0] == line[-1] and line[0] in "\"'“”":
            line = line[1:-1].strip()
        return line.strip("“”").strip()

    def _map_error(self, exc: Exception, call: str, started: float, *, streamed: bool) -> Exception:
        """Turn a client error into an ``AnswerError`` with a message for the user.

        Anything that is not a model-server problem (a bug) is returned unchanged to be raised.
        """
        url, status = self.base_url, getattr(exc, "status_code", None)
        if isinstance(exc, (openai.APITimeoutError, FirstTokenTimeout, *_HTTP_TIMEOUTS)):
            kind = "timeout"
            message = (
                f"The language model server at {url} did not answer within {self.timeout_s:g} s. "
                "Please try again; if this keeps happening the server may be overloaded."
            )
        elif isinstance(exc, (openai.APIConnectionError, *_HTTP_TRANSPORT)):
            kind = "unreachable"
            message = (
                f"The language model server at {url} cannot be reached. Check that it is running "
                "and that OPENAI_BASE_URL is right."
            )
        elif isinstance(exc, openai.AuthenticationError):
            kind = "auth"
            message = "The model server rejected the API key (401). Check OPENAI_API_KEY."
        elif isinstance(exc, openai.PermissionDeniedError):
            kind = "auth"
            message = (
                f"The model server refused access (403). Check that OPENAI_API_KEY may use "
                f"the model '{self.model}'."
            )
        elif isinstance(exc, openai.RateLimitError):
            kind = "rate_limit"
            message = "The model server is busy (rate limit, 429). Please wait a moment and try again."
        elif isinstance(exc, openai.NotFoundError):
            kind = "error"
            message = (
                f"The model server at {url} does not know the model '{self.model}' (404). "
                "Check ASSISTANT_CHAT_MODEL."
            )
        elif isinstance(exc, openai.InternalServerError) or (status is not None and status >= 500):
            kind = "server"
            message = (
                f"The language model server at {url} had an internal error ({status or 500}). "
                "Please try again in a moment."
            )
        elif isinstance(exc, openai.APIError):
            kind = "error"
            shown = f" ({status})" if status else ""
            message = f"The model server could not answer this request{shown}. Please try again."
        else:
            return exc
        if streamed:
            message = "The answer was interrupted. " + message
        log.warning(
            "chat model %s failed: kind=%s model=%s server=%s status=%s error=%s after %.2fs",
            call,
            kind,
            self.model,
            url,
            status,
            type(exc).__name__,
            time.perf_counter() - started,
        )
        return AnswerError(message, kind=kind)
