"""Citation checking: every [n] in an answer must name a retrieved passage.

Markers that point at no passage are dropped *while streaming* (``MarkerFilter``), so what the
user sees live is what the final answer says. The other ways models cite ("(1)", "passage 2",
"[Passage 2, 3]", a source's file name) become [n] markers in the final answer
(``normalize_citations``). Each cited passage gets the sentence of it that best supports the
answer, for highlighting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.models import Citation, Passage
from assistant.text import MARKER, split_sentences
from kb.terms import terms

_MARKER = re.compile(rf"\s?{MARKER}")
_PARTIAL = re.compile(r"\s?\[[\d,\s]*$")  # an unfinished marker at the end of a delta


def _rewrite(match: re.Match, valid: set[int]) -> str:
    kept = [n for n in (int(x) for x in match.group(1).split(",")) if n in valid]
    lead = match.group(0)[: len(match.group(0)) - len(match.group(0).lstrip())]
    return lead + "".join(f"[{n}]" for n in kept) if kept else ""


def clean_markers(text: str, valid: set[int]) -> str:
    """Remove [n] markers (or the invalid numbers in [n, m]) that name no passage."""
    return _MARKER.sub(lambda m: _rewrite(m, valid), text)


_NUMBERS = r"\d{1,2}(?:\s*(?:,|and|&)\s*\d{1,2})*"
# "(passage 2)", "[Passage 2, 3]", "(source 1)"
_NAMED_IN_BRACKETS = re.compile(
    rf"\s?[\(\[]\s*(?:passages?|sources?|documents?)\s+({_NUMBERS})\s*[\)\]]", re.IGNORECASE
)
# "passage 2" in running text (kept, with a marker after it)
_NAMED = re.compile(r"\bpassages?\s+(\d{1,2})\b(?!\s*\[\d)", re.IGNORECASE)
# "(1)", "(1, 2)" at the end of a claim (not "(2019)": passage numbers are small)
_PARENS = re.compile(r"(?<=\S)[ \t]?\((\d{1,2}(?:\s*,\s*\d{1,2})*)\)(?=[\s.,;:!?)]|$)")


def normalize_citations(text: str, passages: Sequence[Passage]) -> str:
    """The answer with the other common ways of citing a passage written as [n] markers (only
    numbers and file names of passages that were given count)."""
    valid = {p.n for p in passages}

    def markers(numbers: str) -> str | None:
        kept = [n for n in (int(x) for x in re.findall(r"\d+", numbers)) if n in valid]
        return "".join(f"[{n}]" for n in dict.fromkeys(kept)) or None

    text = _NAMED_IN_BRACKETS.sub(
        lambda m: (" " + markers(m.group(1))) if markers(m.group(1)) else m.group(0), text
    )
    text = _NAMED.sub(
        lambda m: f"{m.group(0)} [{m.group(1)}]" if int(m.group(1)) in valid else m.group(0), text
    )
    text = _PARENS.sub(lambda m: (" " + markers(m.group(1))) if markers(m.group(1)) else m.group(0), text)
    by_name: dict[str, int] = {}
    for p in sorted(passages, key=lambda p: p.n):
        for name in (p.source, p.source.rsplit("/", 1)[-1]):
            by_name.setdefault(name, p.n)
    for name in sorted(by_name, key=len, reverse=True):
        n, quoted = by_name[name], re.escape(name)
        text = re.sub(rf"\s?[\(\[]\s*{quoted}\s*[\)\]]", f" [{n}]", text)
        text = re.sub(rf"(?<![\w/.-]){quoted}(?![\w.-])(?!\s*\[\d)", f"{name} [{n}]", text)
    return text


def strip_markers(text: str) -> str:
    """The text without its [n] markers."""
    return _MARKER.sub("", text)


def cited_numbers(text: str) -> list[int]:
    """Passage numbers in order of first citation."""
    seen: list[int] = []
    for m in _MARKER.finditer(text):
        for n in (int(x) for x in m.group(1).split(",")):
            if n not in seen:
                seen.append(n)
    return seen


class MarkerFilter:
    """Streams text through ``clean_markers``, holding back a marker until it is complete."""

    def __init__(self, valid: set[int]) -> None:
        self.valid = valid
        self._pending = ""

    def feed(self, delta: str) -> str:
        text = self._pending + delta
        partial = _PARTIAL.search(text)
        # Hold back an unfinished marker, and trailing spaces that may precede the next one.
        cut = partial.start() if partial else len(text.rstrip())
        self._pending = text[cut:]
        return clean_markers(text[:cut], self.valid)

    def flush(self) -> str:
        rest, self._pending = clean_markers(self._pending, self.valid), ""
        return rest


def supporting_quote(passage: Passage, claims: list[str]) -> str:
    """The passage sentence sharing the most terms with the answer sentences that cite it; or the
    run of its sentences the answer quotes word for word (a list with its introduction)."""
    sents = split_sentences(passage.text)
    quoted = [i for i, s in enumerate(sents) if any(c == s or c.endswith(f" {s}") for c in claims)]
    if len(quoted) > 1 and quoted == list(range(quoted[0], quoted[-1] + 1)):
        return " ".join(sents[i] for i in quoted)
    wanted = set(terms(" ".join(claims)))
    best, best_overlap = "", 0.0
    for sent in sents:
        have = set(terms(sent))
        overlap = len(wanted & have) / (len(have) ** 0.5 or 1.0)
        if overlap > best_overlap:
            best, best_overlap = sent, overlap
    return best


def claims_by_marker(text: str) -> dict[int, list[str]]:
    """For each cited number, the answer text it stands after (back to the previous marker or
    sentence start), which is the claim the passage is meant to support."""
    claims: dict[int, list[str]] = {}
    last = 0
    for m in _MARKER.finditer(text):
        segment = text[last : m.start()].strip()
        claim = (split_sentences(segment) or [""])[-1] if segment else ""
        for n in (int(x) for x in m.group(1).split(",")):
            claims.setdefault(n, []).append(claim)
        last = m.end()
    return claims


def build_citations(text: str, passages: list[Passage]) -> list[Citation]:
    """Citations for the passages the answer cites, in order of first citation."""
    by_n = {p.n: p for p in passages}
    claims = claims_by_marker(text)
    return [
        Citation(n=n, passage=by_n[n], quote=supporting_quote(by_n[n], claims.get(n, [])))
        for n in cited_numbers(text)
        if n in by_n
    ]
