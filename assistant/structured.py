"""Structured model answers: the model replies in a small JSON shape instead of free text.

    {"answerable": true, "sentences": [{"text": "The six partners presented the results.", "passages": [2]}]}

Asked for through ``response_format`` with a JSON schema, which OpenAI, llama.cpp's server, vLLM
and Ollama turn into constrained decoding: even a small model then states whether the passages
answer the question and which passages each sentence rests on, instead of forgetting the [n]
markers. The reply is turned back into ordinary answer text with [n] markers as it streams, one
sentence at a time, so everything after the model (marker filter, citations, claim check) is the
same in both modes.

A server that ignores ``response_format`` and writes plain text is read as plain text: the
reader passes anything that does not start with ``{`` straight through.
"""

from __future__ import annotations

import json
import re

from assistant.prompts import DECLINE_TEXT

SCHEMA = {
    "type": "object",
    "properties": {
        "answerable": {"type": "boolean"},
        "sentences": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "passages": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["text", "passages"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["answerable", "sentences"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "cited_answer", "strict": True, "schema": SCHEMA},
}
# llama-cpp-python's server takes the schema inside a json_object format (and answers a
# json_schema one with a 500 that names response_format): asked second when the first is refused
JSON_OBJECT_FORMAT = {"type": "json_object", "schema": SCHEMA}
FORMATS = (RESPONSE_FORMAT, JSON_OBJECT_FORMAT)
PARTIAL_PREFIX = "The documents do not fully answer this. "

_ANSWERABLE = re.compile(r'"answerable"\s*:\s*(true|false)')
_SENTENCES = re.compile(r'"sentences"\s*:\s*\[')
_DECODER = json.JSONDecoder()


def render(sentence: object) -> str:
    """One sentence object as answer text: its words with the [n] markers before the final stop
    ("They met in June [2]."). Anything malformed gives ""."""
    if not isinstance(sentence, dict) or not isinstance(sentence.get("text"), str):
        return ""
    text = sentence["text"].strip()
    if not re.search(r"\w", text):
        return ""  # ".." with a passage number: a small model's filler, nothing to show
    numbers = sentence.get("passages")
    numbers = numbers if isinstance(numbers, list) else []
    markers = "".join(f"[{n}]" for n in dict.fromkeys(n for n in numbers if isinstance(n, int)))
    if not text or not markers:
        return text
    stop = text[-1] if text[-1] in ".!?" else ""
    return f"{text[: len(text) - len(stop)].rstrip()} {markers}{stop}"


_TEXT_KEY = re.compile(r'\{\s*"text"\s*:\s*"')
_HELD = re.compile(r"[\s.!?]*$")  # a sentence's end is held back until its markers are known
_OPEN_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{0,3})?$")


def _partial_string(raw: str, start: int) -> str:
    """The decoded part of a JSON string that begins at ``start`` and may not be finished."""
    end, escaped = start, False
    while end < len(raw):
        char = raw[end]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            break
        end += 1
    body = raw[start:end]
    if (cut := _OPEN_ESCAPE.search(body)) and (end == len(raw)):
        body = body[: cut.start()]  # an escape cut in two: wait for the rest
    try:
        return json.loads(f'"{body}"')
    except ValueError:
        return ""


class StructuredReader:
    """Turns the streamed JSON reply into answer text as it arrives.

    ``feed`` takes the raw deltas and returns the text ready to show: the words of the sentence
    being written (its final stop held back), then its [n] markers once its passage numbers are
    known. ``finish`` returns the rest. ``answerable`` is the model's flag once read (None
    before, or for a plain-text reply); ``valid`` says whether the whole reply parsed as the
    schema's shape."""

    def __init__(self) -> None:
        self._raw = ""
        self._plain: bool | None = None  # None: not known yet
        self._pos: int | None = None  # where the next sentence object may start
        self._done = 0  # sentence objects read whole
        self._current = ""  # what is shown of the sentence being written
        self._said = False  # anything shown yet
        self.answerable: bool | None = None
        self.valid = False

    def feed(self, delta: str) -> str:
        self._raw += delta
        if self._plain is None and self._raw.strip():
            self._plain = not self._raw.lstrip().startswith("{")
            if self._plain:
                return self._raw
        if self._plain:
            return delta
        return self._read()

    def finish(self) -> str:
        if self._plain:
            return ""
        try:
            reply = json.loads(self._raw)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):  # cut short or not JSON: keep whatever sentences completed
            self._current = ""
            rest = self._read(partial=False)
            return rest if self._said else DECLINE_TEXT
        sentences = reply.get("sentences") if isinstance(reply.get("sentences"), list) else []
        self.valid = isinstance(reply.get("sentences"), list) and isinstance(reply.get("answerable"), bool)
        self.answerable = reply.get("answerable") if isinstance(reply.get("answerable"), bool) else None
        rest = "".join(self._show(s) for s in sentences[self._done :])
        self._done = len(sentences)
        return rest if self._said else DECLINE_TEXT

    # --- helpers -----------------------------------------------------------------------
    def _read(self, partial: bool = True) -> str:
        """The text of the sentences completed since the last call, and of the one being written."""
        if self.answerable is None and (flag := _ANSWERABLE.search(self._raw)):
            self.answerable = flag.group(1) == "true"
        if self._pos is None:
            start = _SENTENCES.search(self._raw)
            if start is None:
                return ""
            self._pos = start.end()
        out = []
        while True:
            pos = self._pos
            while pos < len(self._raw) and self._raw[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(self._raw) or self._raw[pos] == "]":
                break
            try:
                sentence, end = _DECODER.raw_decode(self._raw, pos)
            except ValueError:
                if partial and (key := _TEXT_KEY.match(self._raw, pos)):
                    words = _partial_string(self._raw, key.end()).lstrip()
                    out.append(self._grow(_HELD.sub("", words)))
                break  # the object is not complete yet
            out.append(self._show(sentence))
            self._done += 1
            self._pos = end
        return "".join(out)

    def _lead(self) -> str:
        """What goes before a sentence: nothing, a space, or the partial-answer note."""
        if self._said:
            return " "
        return PARTIAL_PREFIX if self.answerable is False else ""

    def _grow(self, words: str) -> str:
        """More of the sentence being written."""
        if len(words) <= len(self._current) or not words.startswith(self._current):
            return ""
        out = ("" if self._current else self._lead()) + words[len(self._current) :]
        self._current, self._said = words, True
        return out

    def _show(self, sentence: object) -> str:
        """The rest of a completed sentence (all of it when none was shown yet)."""
        full, shown = render(sentence), self._current
        self._current = ""
        if not full:
            return ""
        if shown and full.startswith(shown):
            return full[len(shown) :]
        out = self._lead() + full
        self._said = True
        return out
