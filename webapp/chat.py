"""Chat-side rendering: the collapsible "Sources" message, the history the assistant gets back,
and the friendly text shown instead of a stack trace.

Kept apart from the Gradio layout so it can be read (and reused by ``/api/ask`` clients) without
building a page.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote as urlquote

import gradio as gr

from assistant.history import message_text
from assistant.models import Answer, Citation, Passage

SOURCES_TITLE = "Sources"
CLOSEST_TITLE = "Closest passages, not an answer"
CLOSEST_SHOWN = 3
UNEXPECTED_ERROR = (
    "Sorry, something went wrong while answering. Please try again in a moment; "
    "if it keeps happening, tell the staff who run this assistant."
)


def file_url(passage: Passage) -> str:
    """Link that opens the source document read-only; PDFs open at the cited page."""
    url = "/files/" + urlquote(passage.source, safe="/")
    if passage.page is not None and passage.source.lower().endswith(".pdf"):
        url += f"#page={passage.page}"
    return url


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


def source_html(citation: Citation) -> str:
    p = citation.passage
    return (
        f'<div class="kb-source" data-n="{citation.n}">'
        f'<div class="kb-source-head"><strong>[{citation.n}]</strong> {_escape(p.location)} · '
        f'<a href="{html.escape(file_url(p))}" target="_blank" rel="noopener">open document</a></div>'
        f'<div class="kb-source-text">{highlight(p.text, citation.quote)}</div>'
        "</div>"
    )


def sources_message(answer: Answer) -> gr.ChatMessage | None:
    """The collapsible block under an answer (closed at first): each cited passage, or, when
    the assistant declined, the closest passages it found, so the reader can look for themselves.
    """
    if answer.error:
        return None
    if answer.citations:
        items, title = answer.citations, SOURCES_TITLE
    elif answer.declined and answer.passages:
        items = [Citation(n=p.n, passage=p) for p in answer.passages[:CLOSEST_SHOWN]]
        title = CLOSEST_TITLE
    else:
        return None
    n = len(items)
    return gr.ChatMessage(
        role="assistant",
        content="\n".join(source_html(c) for c in items),
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


def _field(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, dict) else getattr(message, name, None)


def assistant_history(messages: list[Any] | None) -> list[dict[str, str]]:
    """The conversation as {"role", "content"} text, without sources blocks or other UI messages."""
    out: list[dict[str, str]] = []
    for message in messages or []:
        metadata = _field(message, "metadata")
        if metadata and (metadata.get("title") if isinstance(metadata, dict) else True):
            continue
        role = _field(message, "role")
        if role not in ("user", "assistant"):
            continue
        text = message_text(_field(message, "content")).strip()
        if text:
            out.append({"role": role, "content": text})
    return out
