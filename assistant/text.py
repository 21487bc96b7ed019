"""Small text utilities shared by retrieval, the extractive answerer and evaluation."""

from __future__ import annotations

import re

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves also did does many much whose""".split()
)

_WORD = re.compile(r"[\w][\w'’-]*", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (keeps numbers and hyphenated words)."""
    return [w.strip("'’-") for w in _WORD.findall(text.lower())]


def stem(word: str) -> str:
    """A deliberately light stemmer: plural and common verb endings, enough for term matching."""
    for suffix, min_len in (("ies", 5), ("ing", 6), ("ed", 5), ("es", 5), ("s", 4)):
        if word.endswith(suffix) and len(word) >= min_len and not word.endswith("ss"):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def terms(text: str) -> list[str]:
    """Content terms for keyword search: words minus stopwords, stemmed."""
    return [stem(w) for w in words(text) if w and w not in STOPWORDS]


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])|\n{2,}|\n(?=[-•*\d]+[.)]?\s)")
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|vs|Dr|Mr|Mrs|Ms|St|No|Fig|approx|cf)\.$", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """Split into sentences (and list items), keeping common abbreviations intact."""
    parts: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        piece = text[start : m.start()].strip()
        if piece and _ABBREVIATIONS.search(piece) and "\n" not in m.group(0):
            continue  # "e.g. The" is not a sentence end; keep accumulating
        if piece:
            parts.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return [" ".join(p.split()) for p in parts]
