"""Chat history as the answerers see it: only real user/assistant turns, plain text, the last few;
and whether a follow-up needs the conversation at all, and whether a model's rewrite of it can be
trusted.

The web UI's history holds more than the conversation: an assistant message with a ``metadata``
title (a collapsible "Sources" block), file and component messages, citation markers that point
at passages of an earlier turn. Sending those to a model would waste context and confuse the
question rewriter, so both answerers go through ``clean_history`` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from kb.terms import terms

MAX_HISTORY_MESSAGES = 6  # three exchanges: enough to resolve "it" / "that policy"
MAX_MESSAGE_CHARS = 1500  # a long earlier answer is cut; its start says what it was about

_MARKER = re.compile(r"\s*\[\d+\]")
_LEADING_MARKUP = re.compile(r"^[\s#*_>`]+")


def _field(message: Any, name: str) -> Any:
    """Read a field of a dict message or of a ``gradio.ChatMessage``-like object."""
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


def message_text(content: Any) -> str:
    """The text of a message's content: a string, a ``{"type": "text"}`` part or a list of parts.

    Files and components have no text for a language model and give "".
    """
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        text = content.get("text")
        return text if isinstance(text, str) and content.get("type", "text") == "text" else ""
    if isinstance(content, (list, tuple)):
        return "\n".join(t for t in (message_text(part) for part in content) if t)
    text = getattr(content, "text", None)  # a gradio TextMessage model
    return text if isinstance(text, str) else ""


def is_sources_block(message: Any) -> bool:
    """An assistant message the UI added to show sources, not something the assistant said."""
    metadata = _field(message, "metadata")
    if isinstance(metadata, Mapping) and metadata.get("title"):
        return True
    text = _LEADING_MARKUP.sub("", message_text(_field(message, "content")))
    return text.startswith("Sources")


def clean_history(
    history: Iterable[Any] | None, max_messages: int = MAX_HISTORY_MESSAGES
) -> list[dict[str, str]]:
    """The last ``max_messages`` user/assistant turns as ``{"role", "content"}`` plain-text dicts.

    Dropped: sources blocks, system messages (a client must not smuggle in rules), messages
    without text. Removed: ``[n]`` markers, which name passages of an earlier turn.
    """
    cleaned: list[dict[str, str]] = []
    for message in history or []:
        role = _field(message, "role")
        if role not in ("user", "assistant"):
            continue
        if role == "assistant" and is_sources_block(message):
            continue
        text = message_text(_field(message, "content"))
        if role == "assistant":
            text = _MARKER.sub("", text)
        text = text.strip()
        if not text:
            continue
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS].rstrip() + " …"
        cleaned.append({"role": role, "content": text})
    return cleaned[-max_messages:] if max_messages > 0 else []


# Words that point back into the conversation ("when did *they* present *it*?").
_ANAPHORS = frozenset(
    "it its it's they them their theirs this that these those he him his she her hers there then "
    "such same former latter one ones".split()
)
ELLIPTICAL = re.compile(r"^\s*(and|but|also|so|or|what about|how about|and what|why not)\b", re.IGNORECASE)
_QUESTION_START = re.compile(
    r"^\s*(what|who|whom|whose|when|where|why|how|which|is|are|was|were|do|does|did|can|could|"
    r"should|would|will|has|have|had|may|might|must|shall|list|name|give|tell|describe|explain)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w']+")


def depends_on_conversation(question: str) -> bool:
    """Whether a follow-up needs the conversation to be understood: it points back ("they",
    "that policy"), starts mid-thought ("And the office?"), or is too short to stand alone."""
    words = [w.lower() for w in _WORD.findall(question)]
    return len(words) <= 2 or bool(ELLIPTICAL.match(question)) or any(w in _ANAPHORS for w in words)


def acceptable_rewrite(question: str, rewrite: str) -> bool:
    """A model's standalone version of ``question`` is kept only if it is a question and keeps
    every content word the user wrote (models also answer, invent, or drop what was asked)."""
    rewrite = rewrite.strip()
    if not rewrite or len(rewrite) > 3 * len(question) + 300:
        return False
    if not (rewrite.endswith("?") or _QUESTION_START.match(rewrite)):
        return False
    own = {t for t in terms(question) if t not in _ANAPHORS}
    return own <= set(terms(rewrite))
