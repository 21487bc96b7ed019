"""Sentences: splitting a passage into the sentences the extractive answerer and citation
checks work on (terms and stems live in ``kb.terms``)."""

from __future__ import annotations

import re

_ABBREV = re.compile(
    r"(?:\b(?:[A-Z]|Mr|Mrs|Ms|Dr|Prof|St|Mt|Jr|Sr|vs|etc|e\.g|i\.e|cf|No|Fig|approx|c|ca|Inc|Ltd|Co)\.)$"
)
# A sentence ends after its closing quote or bracket and its citation markers ("... Union. [2]",
# a footnote's "banned.[4]The second ..."), before the next sentence's capital.
MARKER = r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]"  # "[2]", "[1, 3]": also ``assistant.citations``
_SPLIT = re.compile(
    rf"(?<=[.!?])(?:[\"')\]]*(?:\s?{MARKER})+\s*|[\"')\]]*\s+)(?!{MARKER})(?=[\"'(\[“‘]?[A-Z0-9À-Ö])"
    r"|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)"
)


_OPENING = re.compile(r"(?:^|\s)['‘“\"(]")


def _open_quote(text: str) -> bool:
    """An opening quote or bracket without its closing one: a title wrapped onto the next line."""
    opens = [m.end() for m in _OPENING.finditer(text)]
    return bool(opens) and not re.search(r"['’”\")]", text[opens[-1] :])


def _split_headings(piece: str) -> list[str]:
    """A short line without closing punctuation (or ending with a colon) followed by a
    capitalised line is a heading, a list item or what introduces a list, not the first half of a
    sentence ("Results\nThe consortium met ...", "Six partners:\nBIOCAT"), unless it leaves a
    quote open ("compiled in the 'Guidelines for Ecosystem\nMonitoring ...'")."""
    out = [""]
    for line in piece.split("\n"):
        prev = out[-1].rstrip()
        heading = prev and 0 < len(prev) <= 110 and prev[-1] not in ".!?;,"  # "Partners:" introduces
        if heading and line.lstrip()[:1].isupper() and not _open_quote(prev):
            out.append(line)
        else:
            out[-1] = f"{out[-1]}\n{line}" if out[-1] else line
    return out


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage; keeps abbreviations and initials ("St.", "J.") inside a sentence."""
    pieces: list[str] = []
    start = 0
    for m in _SPLIT.finditer(text):
        head = text[start : m.start()].rstrip()
        if _ABBREV.search(head):
            continue
        pieces.append(text[start : m.end()])
        start = m.end()
    pieces.append(text[start:])
    pieces = [line for piece in pieces for line in _split_headings(piece)]
    out = []
    for p in pieces:
        p = " ".join(p.split())
        if len(p) >= 3 and re.search(r"\w", p):
            out.append(p)
    return out
