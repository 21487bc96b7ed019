"""The chat's data and rendering: the server-side conversation, the API's request models and
their limits, the collapsible "Sources" message, and the friendly text shown instead of a stack
trace.

Kept apart from the Gradio layout so it can be read (and reused by ``/api/ask``) without building
a page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import gradio as gr
from pydantic import BaseModel, ConfigDict, Field

from assistant.models import Answer, Citation, file_url
from webapp.conversations import SavedConversation
from webapp.feedback import FeedbackItem

SOURCES_TITLE = "Sources"
CLOSEST_TITLE = "Closest passages, not an answer"
CLOSEST_SHOWN = 3
MAX_QUESTION_CHARS = 2000  # enforced on the server for every route, not only by the text box
MAX_TURN_CHARS = 20_000  # one earlier message sent to the API (the assistant reads 1,500 of it)
MAX_TURNS = 50  # earlier messages sent to the API (the assistant reads the last 6)
MAX_MESSAGES = 200  # messages a chat session keeps on the server
UNEXPECTED_ERROR = (
    "Sorry, something went wrong while answering. Please try again in a moment; "
    "if it keeps happening, tell the staff who run this assistant."
)


def _quote_pattern(quote: str) -> re.Pattern[str] | None:
    words = quote.split()
    if not words:
        return None
    return re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)


def highlight(text: str, quote: str) -> str:
    """``text`` as HTML with the first occurrence of ``quote`` (whitespace-insensitive) in <mark>."""
    pattern = _quote_pattern(quote)
    match = pattern.search(text) if pattern else None
    if not match:
        return _escape(text)
    a, b = match.span()
    return f"{_escape(text[:a])}<mark>{_escape(text[a:b])}</mark>{_escape(text[b:])}"


def _escape(text: str) -> str:
    # One line of HTML: Markdown does not reach inside an HTML block, so passage text that looks
    # like Markdown (or $...$ maths) is shown as written.
    return html.escape(text).replace("\n", "<br>")


def source_html(citation: Citation, removed: bool = False) -> str:
    """One cited passage; ``removed``: its document has left the index since (a saved answer)."""
    p = citation.passage
    link = (
        '<em class="kb-removed">document no longer available</em>'
        if removed
        else f'<a href="{html.escape(file_url(p))}" target="_blank" rel="noopener">open document</a>'
    )
    return (
        f'<div class="kb-source" data-n="{citation.n}">'
        f'<div class="kb-source-head"><strong>[{citation.n}]</strong> {_escape(p.location)} · {link}</div>'
        f'<div class="kb-source-text">{highlight(p.text, citation.quote)}</div>'
        "</div>"
    )


def sources_message(answer: Answer, removed: Collection[str] = ()) -> gr.ChatMessage | None:
    """The collapsible block under an answer (closed at first): each cited passage, or, when
    the assistant declined, the closest passages it found, so the reader can look for themselves.
    Passages of the ``removed`` sources say so instead of linking to them.
    """
    if answer.error:
        return None
    if answer.citations:
        items, title = answer.citations, SOURCES_TITLE
    elif (answer.declined or answer.verdict == "unverified") and answer.passages:
        items = [Citation(n=p.n, passage=p) for p in answer.passages[:CLOSEST_SHOWN]]
        title = CLOSEST_TITLE
    else:
        return None
    n = len(items)
    return gr.ChatMessage(
        role="assistant",
        content="\n".join(source_html(c, c.passage.source in removed) for c in items),
        metadata={"title": f"{title} ({n} passage{'s' if n != 1 else ''})", "status": "done"},
    )


def cited_sources(answer: Answer) -> list[str]:
    """Short labels of the cited passages, for the feedback log."""
    out = []
    for c in answer.citations:
        p = c.passage
        label = p.source + (f"#page={p.page}" if p.page is not None else "")
        out.append(f"[{c.n}] {label}")
    return out


NOT_FOUND_MARK = " *(not found in the cited passages)*"
UNVERIFIED_NOTE = (
    "**Unverified:** nothing in this answer could be matched to the passages it rests on; "
    "compare it with the closest passages below."
)


UNSURE_NOTE = "**Low confidence:** the closest passage may not answer the question"


def answer_display(answer: Answer) -> str:
    """An answer as the chat shows it: as text, each claim its passages do not hold marked, and
    an answer none of whose claims they hold said to be unverified (``assistant.claims``), and an
    offline answer below the confidence to be sure marked as such, with the reason."""
    text = display_text(answer.text)
    if answer.verdict in ("partly_supported", "unverified"):
        for sentence in answer.unsupported:
            shown = display_text(sentence)
            text = text.replace(shown, shown + NOT_FOUND_MARK, 1)
    if answer.verdict == "unverified":
        text = f"{UNVERIFIED_NOTE}\n\n{text}"
    elif answer.uncertain:
        why = f" ({display_text(answer.reason)})" if answer.reason else ""
        text = f"{UNSURE_NOTE}{why}\n\n{text}"
    return text


def display_text(text: str) -> str:
    """Question or answer text as the chat shows it: never HTML (a document's ``<img src=...>``
    or ``<script>`` is shown as written) and no Markdown images (no request leaves the page)."""
    return html.escape(text, quote=False).replace("![", "!\\[")


class ChatTurn(BaseModel):
    """One earlier message of a conversation sent to the API: plain text, user or assistant."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    history: list[ChatTurn] = Field(default_factory=list, max_length=MAX_TURNS)
    stream: bool = False  # Server-Sent Events: text deltas, then the Answer
    # ask within these only (never wider than what the caller may read)
    collections: list[str] = Field(default_factory=list, max_length=50)
    sources: list[str] = Field(default_factory=list, max_length=200)


@dataclass
class Conversation:
    """One browser session's chat, kept on the server in a ``gr.State``: the client never sends
    it back, so nothing in it (a file object, a forged answer) can come from the client.

    ``messages`` is what the chatbot shows (escaped text, sources blocks); ``turns`` the plain
    text the assistant reads as history; ``records`` what a like/dislike on message i refers to.
    """

    messages: list[Any] = field(default_factory=list)
    turns: list[dict[str, str]] = field(default_factory=list)
    records: dict[int, dict] = field(default_factory=dict)
    id: str | None = None  # its saved conversation (``webapp.conversations``), once it has one
    title: str = ""

    def add_exchange(self, question: str, answer: Answer, user: str, removed: Collection[str] = ()) -> None:
        """Show a finished exchange: the question, the answer, its sources block; remember the
        turns for follow-ups and what a vote on the answer refers to."""
        self.messages.append({"role": "user", "content": display_text(question)})
        self.messages.append({"role": "assistant", "content": answer_display(answer)})
        self.finish(question, answer, user, removed)

    def finish(self, question: str, answer: Answer, user: str, removed: Collection[str] = ()) -> None:
        """After the answer's message (the last one) is shown: its sources, turns and record."""
        at = len(self.messages) - 1
        if answer.narrowed_to and isinstance(self.messages[at], dict):
            names = ", ".join(answer.narrowed_to)
            self.messages[at]["content"] += f"\n\n*Searched only in: {display_text(names)}*"
        self.turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        record = FeedbackItem(
            question=question, answer=answer.text, vote="", user=user, sources=cited_sources(answer)
        ).__dict__
        self.records[at] = record
        block = sources_message(answer, removed)
        if block is not None:
            self.messages.append(block)
            self.records[len(self.messages) - 1] = record
        self.trim()

    @classmethod
    def restore(cls, saved: SavedConversation, user: str, removed: Collection[str] = ()) -> Conversation:
        """A saved conversation as the chat shows it, ready to continue."""
        convo = cls(id=saved.id, title=saved.title)
        for exchange in saved.exchanges:
            convo.add_exchange(exchange.question, exchange.answer, user, removed)
        return convo

    def trim(self) -> None:
        """Keep the last ``MAX_MESSAGES`` messages: a session's memory stays bounded."""
        drop = len(self.messages) - MAX_MESSAGES
        if drop > 0:
            self.messages = self.messages[drop:]
            self.records = {i - drop: r for i, r in self.records.items() if i >= drop}
        self.turns = self.turns[-MAX_TURNS:]
