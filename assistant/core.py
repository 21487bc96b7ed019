"""The assistant: conversation -> standalone question -> passages -> streamed, cited answer.

One ``Assistant`` serves many users at once: it holds no per-question state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from assistant.citations import MarkerFilter, build_citations, normalize_citations
from assistant.claims import check_claims, verdict_of
from assistant.errors import AnswerError
from assistant.extractive import evidence_doubt
from assistant.history import clean_history
from assistant.models import Answer, Confidence, Passage, Timings
from assistant.prompts import DECLINE_TEXT
from assistant.refusals import is_refusal
from assistant.retrieval import HybridRetriever
from kb.access import Scope
from kb.embeddings import bundled
from kb.settings import Settings, load_settings
from kb.store import KnowledgeBase

log = logging.getLogger(__name__)

NOTHING_RELEVANT = (
    DECLINE_TEXT + " Nothing in the knowledge base is close enough to the question; try other words, "
    "or ask staff to add the document that holds the answer."
)
UNVERIFIED_REPLACED = "The model's answer could not be matched to the documents, so here is what they say: "
EMPTY_INDEX = "The knowledge base is empty: nothing has been ingested yet. Ask staff to add documents."


class Answerer(Protocol):
    mode: str
    model: str

    def condense(self, question: str, history: list[dict]) -> str: ...

    def stream(
        self, question: str, passages: list[Passage], asked: str | None = None
    ) -> Iterator[str | Confidence]:
        """The answer's text in pieces with [n] markers; it may also yield its ``Confidence``.
        ``asked``: the user's own words when ``question`` is a rewrite of a follow-up."""
        ...


def make_answerer(settings: Settings, kb: KnowledgeBase) -> Answerer:
    if settings.effective_answer_mode == "openai":
        from assistant.llm import ChatAnswerer

        return ChatAnswerer(settings)
    from assistant.extractive import ExtractiveAnswerer

    return ExtractiveAnswerer(kb.embeddings, settings)


class Assistant:
    def __init__(self, settings: Settings, kb: KnowledgeBase, answerer: Answerer | None = None) -> None:
        self.settings = settings
        self.kb = kb
        self.retriever = HybridRetriever(kb, settings)
        self.answerer = answerer or make_answerer(settings, kb)
        self._extractive: Any = None  # the fallback for unverified model answers, made on first use

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Assistant:
        settings = settings or load_settings()
        return cls(settings, KnowledgeBase(settings))

    @property
    def mode_label(self) -> str:
        """What the UI shows: 'extractive (no language model)' or the model's name."""
        if self.answerer.mode == "extractive":
            return "extractive (no language model)"
        return f"{self.answerer.model} via {self.settings.openai_base_url or 'OpenAI'}"

    def ask(
        self, question: str, history: list[dict[str, Any]] | None = None, scope: Scope | None = None
    ) -> Answer:
        answer = None
        for item in self.stream(question, history, scope):
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def stream(
        self, question: str, history: list[dict[str, Any]] | None = None, scope: Scope | None = None
    ) -> Iterator[str | Answer]:
        """Yield text deltas, then the final ``Answer`` (always, even on errors). ``scope``: what
        the asker may read and chose to ask within (``kb.access``); nothing outside it is read."""
        started = time.perf_counter()
        timings = Timings()
        base: dict[str, Any] = {
            "question": question,
            "mode": self.answerer.mode,
            "model": self.answerer.model,
        }
        if scope is not None and scope.narrowed_by_choice:
            base["narrowed_to"] = sorted(scope.collections or ()) + sorted(scope.sources or ())

        def finish(text: str, **fields: Any) -> Answer:
            timings.total_s = time.perf_counter() - started
            return Answer(text=text, timings=timings, **base, **fields)

        try:
            standalone = self.answerer.condense(question, clean_history(history))
        except AnswerError as exc:
            log.warning("condensing failed: %s", exc.kind)
            yield exc.user_message
            yield finish(exc.user_message, declined=True, decline_reason="error", error=exc.kind)
            return
        base["standalone_question"] = standalone

        passages = self.retriever.retrieve(standalone, scope=scope)
        timings.retrieval_s = time.perf_counter() - started
        if not passages:
            empty = not self.kb.count_chunks()
            text = EMPTY_INDEX if empty else NOTHING_RELEVANT
            yield text
            yield finish(text, declined=True, decline_reason="empty_index" if empty else "nothing_relevant")
            return

        filt = MarkerFilter({p.n for p in passages})
        parts: list[str] = []
        try:
            for delta in self.answerer.stream(standalone, passages, asked=question):
                if isinstance(delta, Confidence):
                    base["confidence"] = float(delta)
                    base["uncertain"], base["reason"] = delta.uncertain, delta.reason or None
                    continue
                out = filt.feed(delta)
                if out:
                    if timings.first_token_s is None:
                        timings.first_token_s = time.perf_counter() - started
                    parts.append(out)
                    yield out
        except AnswerError as exc:
            log.warning("answering failed: %s", exc.kind)
            message = ("\n\n" if parts else "") + exc.user_message
            yield message
            yield finish(
                "".join(parts) + message,
                declined=True,
                decline_reason="error",
                error=exc.kind,
                passages=passages,
            )
            return
        tail = filt.flush()
        if tail:
            parts.append(tail)
            yield tail
        text = normalize_citations("".join(parts).strip(), passages)
        citations = build_citations(text, passages)
        if is_refusal(text, cites=bool(citations)):
            yield finish(text, declined=True, decline_reason="not_in_documents", passages=passages)
            return
        # a model's claims are also weighed by meaning (the bundled MiniLM); quotes hold by construction
        quoted = self.answerer.mode == "extractive"
        meaning = None if quoted else bundled(self.kb.embeddings, self.settings.embedding_batch_size)
        # a quoted line ("BIOCAT [4]" under "Six partners:") is held as written, not as a bare answer
        support = check_claims(text, passages, "" if quoted else standalone, meaning)
        verdict = verdict_of(support)
        if verdict is None:  # claims nothing at all (a small model's ".. [1]."): no answer
            yield finish(text, declined=True, decline_reason="not_in_documents", passages=passages)
            return
        if verdict == "unverified" and self.settings.unverified_answers == "extractive":
            yield self._quoted_instead(standalone, passages, finish, asked=question)
            return
        if not quoted:  # the offline answerer weighs its own evidence
            doubt = evidence_doubt(standalone, passages, [c.passage for c in citations])
            base["uncertain"], base["reason"] = bool(doubt), doubt or None
        yield finish(text, citations=citations, passages=passages, support=support, verdict=verdict)

    def _quoted_instead(
        self, question: str, passages: list[Passage], finish: Callable[..., Answer], asked: str
    ) -> Answer:
        """The offline answer in place of a model answer none of whose claims the passages hold
        (``ASSISTANT_UNVERIFIED_ANSWERS=extractive``); it declines when they do not answer.
        ``asked``: the user's own words (``question`` may rewrite a follow-up)."""
        from assistant.extractive import ExtractiveAnswerer

        if self._extractive is None:
            self._extractive = ExtractiveAnswerer(self.kb.embeddings, self.settings)
        result = self._extractive.answer(question, passages, asked)
        doubt = {  # how sure the offline answer is, and why not more
            "confidence": result.confidence,
            "uncertain": result.uncertain,
            "reason": result.reason or None,
        }
        if result.declined:
            return finish(
                result.text, declined=True, decline_reason="not_in_documents", passages=passages, **doubt
            )
        text = UNVERIFIED_REPLACED + result.text
        support = check_claims(text, passages, question)
        return finish(
            text,
            citations=build_citations(text, passages),
            passages=passages,
            support=support,
            verdict=verdict_of(support),
            **doubt,
        )
