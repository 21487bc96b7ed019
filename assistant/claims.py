"""Every claim of an answer checked against the passages it cites.

A model can cite a passage and still write what the passage does not say ("for 12 years" where
it says two, an invented "INNAXE Foundation"). So each sentence of an answer is a claim, and a
claim is supported when the passages it cites (or, for a sentence without a marker, the
passages the answer cites) hold:

* every number in it ("25", "2019", "1.2" million; separators ignored; a list's "2)" is no fact),
* every name in it (a capitalised word past the sentence's first, or an acronym), and a name of
  several words as a whole ("European Life Science Council" is not held by "European", "Life
  Science" and "Council" apart),
* and at least ``MIN_COVERAGE`` (a fifth) of its content terms (``kb.terms``: stems, stop words out);
* and, when the check is given the bundled MiniLM (model answers), something close in meaning:
  a cosine of at least ``MIN_SIMILARITY`` to one sentence it cites;

words of the question count as held (restating what was asked invents nothing). A bare answer
("King Malcolm III of Scotland [1]") claims what the question asks, so one sentence of its
passages must hold it together with most of the question's terms, and it must not open with a
name the question already has (that is who was asked about).

Sentences that only say what is missing ("The documents do not say when"), and sentences with
no content at all (a small model's ".. [1]"), are not claims and support nothing. The
answer's verdict: ``supported`` (every claim), ``partly_supported``, or ``unverified`` (none).
The extractive answer quotes its passages, so its claims are supported by construction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from assistant.citations import cited_numbers, strip_markers
from assistant.models import Passage, SentenceSupport, Verdict
from assistant.refusals import says_not_found
from assistant.text import split_sentences
from kb.terms import terms

# Share of a claim's content terms its passages (or the question) must hold. Chosen on the PG
# qa_pairs set by ``python -m benchmarks.claim_check``; held out on PG list and Solana it flags
# 7-9 % of true sentences and catches 92-100 % of changed facts (fits on those two choose 0.3).
MIN_COVERAGE = 0.2
# With the bundled MiniLM (model answers), a held claim must also be this close (cosine) to a
# sentence it cites. Chosen by benchmarks.claim_check: 0.2 flags no more true sentences than the
# term check alone on PG qa_pairs, PG list and Solana (0.25 and up flag more), and it catches the
# filler a small model writes ("There are different theories on this topic [2]": 0.005).
MIN_SIMILARITY = 0.2


class Embedder(Protocol):
    def embed_array(self, texts: list[str]) -> np.ndarray: ...


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w&'’-]*")
_NOT_NAMES = frozenset(
    "I A An The This That These Those It Its They Their There Then Also And But Or So If In On At "
    "For From To Of By With As After Before When While Yes No".split()
)


def _digits(number: str) -> str:
    """A number without its separators: "1,200" and "1.200" and "1200" are one number."""
    return re.sub(r"[.,]", "", number)


def _says(lower: str, name: str) -> bool:
    """``lower`` (lower-cased evidence) holds ``name`` as whole words."""
    return bool(re.search(rf"\b{re.escape(name.lower())}\b", lower))


def _names(sentence: str) -> list[str]:
    """Capitalised words past the first, and acronyms, each on its own."""
    words = _WORD.findall(sentence)
    out = []
    for i, word in enumerate(words):
        acronym = sum(c.isupper() for c in word) >= 2
        if acronym or (i > 0 and word[0].isupper() and word not in _NOT_NAMES):
            out.append(re.sub(r"['’]s$", "", word.strip("'’-")))  # "Bulgaria's": Bulgaria
    return out


_SPAN_JOINS = frozenset({"of", "de", "la", "von", "van", "&"})


def _name_spans(sentence: str) -> list[str]:
    """Names of several words as one ("European Life Science Council"): each must appear whole,
    so a name put together from words the passage has elsewhere is not held. Anything but a
    space between two words ends a name ("BIOCAT, Medicen", "Proof of Work (PoW)")."""
    names = set(_names(sentence))
    spans: list[list[str]] = [[]]
    last_end = 0
    for match in _WORD.finditer(sentence):
        raw = match.group(0).strip("'’-")
        word = re.sub(r"['’]s$", "", raw)
        joined = spans[-1] and not sentence[last_end : match.start()].strip()
        if (word in names or (word in _SPAN_JOINS and spans[-1])) and (joined or not spans[-1]):
            spans[-1].append(word)
        else:
            spans.append([word] if word in names else [])
        if word != raw:  # a possessive ends the name it closes
            spans.append([])
        last_end = match.end()
    out = []
    for span in spans:
        while span and span[-1] in _SPAN_JOINS:
            span.pop()
        if len(span) > 1:
            out.append(" ".join(span))
    return out


_LIST_MARKER = re.compile(r"(?m)^\s*\d{1,2}[.)]\s")  # "2) Reflections ...": a list's numbering, not a fact


def check_claims(
    text: str, passages: Sequence[Passage], question: str = "", embeddings: Embedder | None = None
) -> list[SentenceSupport]:
    """Each sentence of ``text`` with what supports it (see the module's note). Words of the
    ``question`` count as held: restating what was asked invents nothing. With ``embeddings``
    (the bundled MiniLM) a held claim must also be close in meaning to a sentence it cites."""
    by_n = {p.n: p for p in passages}
    answer_cites = tuple(n for n in cited_numbers(text) if n in by_n)
    held: dict[tuple[int, ...], tuple[str, set[str], set[str]]] = {}  # cites -> evidence read once

    def evidence_of(cites: tuple[int, ...]) -> tuple[str, set[str], set[str]]:
        """The cited passages and the question: lower-cased text, numbers, content terms."""
        if cites not in held:
            text = " ".join(by_n[n].text for n in cites) + "\n" + question
            numbers = {_digits(n) for n in _NUMBER.findall(_LIST_MARKER.sub(" ", text))}
            held[cites] = (" ".join(text.lower().split()), numbers, set(terms(text)))
        return held[cites]

    out = []
    for sentence in split_sentences(text):
        cites = [n for n in cited_numbers(sentence) if n in by_n]
        claim = strip_markers(sentence).strip()
        if not cites and says_not_found(claim):
            out.append(SentenceSupport(text=sentence, claim=False, supported=True))
            continue
        if not (cites or answer_cites):
            out.append(SentenceSupport(text=sentence, cites=cites))
            continue
        own = set(terms(claim))
        if not own and not _NUMBER.search(claim) and not _names(claim):
            out.append(SentenceSupport(text=sentence, cites=cites, claim=False))  # ".. [1]" says nothing
            continue
        lower, have_numbers, have_terms = evidence_of(tuple(cites) or answer_cites)
        missing = [n for n in _NUMBER.findall(_LIST_MARKER.sub(" ", claim)) if _digits(n) not in have_numbers]
        names = [n for n in _names(claim) if not _says(lower, n)]
        spans = [n for n in _name_spans(claim) if not _says(lower, n)]
        missing += names + [span for span in spans if not set(span.split()) & set(names)]
        coverage = len(own & have_terms) / len(own) if own else 1.0
        supported = not missing and coverage >= MIN_COVERAGE
        answer = _ANSWER_LEAD.sub("", claim)  # "The answer is: King Charles III": the bare answer
        if supported and question and _bare(answer):
            supported = not _restates(answer, question) and _answers_in_one_sentence(
                answer, question, [by_n[n] for n in cites or answer_cites]
            )
        out.append(
            SentenceSupport(
                text=sentence,
                cites=cites,
                supported=supported,
                missing=list(dict.fromkeys(missing)),
                coverage=round(coverage, 3),
            )
        )
    if embeddings is not None:
        _check_meaning([(s, s.cites or list(answer_cites)) for s in out], by_n, embeddings)
    return out


def _check_meaning(
    support: list[tuple[SentenceSupport, list[int]]], by_n: dict[int, Passage], embeddings: Embedder
) -> None:
    """A held claim must also mean something close to one sentence of its passages (MiniLM
    cosine >= MIN_SIMILARITY): "There are many different ways to explain it [2]" has the words
    of nothing in particular. One batch: the claims, then every sentence of the cited passages."""
    todo = [(s, ns) for s, ns in support if s.claim and s.supported]
    cited = sorted({n for _, ns in todo for n in ns})
    sentences = {n: split_sentences(by_n[n].text) for n in cited}
    flat = [(n, t) for n in cited for t in sentences[n]]
    if not todo or not flat:
        return
    vecs = embeddings.embed_array([strip_markers(s.text) for s, _ in todo] + [t for _, t in flat])
    claims, evidence = vecs[: len(todo)], vecs[len(todo) :]
    owner = np.array([n for n, _ in flat])
    for (s, ns), vec in zip(todo, claims):
        mine = np.isin(owner, ns)
        s.similarity = round(float((evidence[mine] @ vec).max()), 3) if mine.any() else 0.0
        s.supported = s.similarity >= MIN_SIMILARITY


def _bare(claim: str) -> bool:
    """A bare answer: a name, number or phrase with no statement of its own ("King Malcolm III
    of Scotland", "1,200 soldiers"). Its claim is the question's: "X is who/what was asked"."""
    words = _WORD.findall(claim)
    names = set(_names(claim))
    return len(words) <= 6 and sum(w not in names and w.lower() not in _BARE_OK for w in words) <= 2


_ANSWER_LEAD = re.compile(r"^(?:the\s+)?(?:short\s+)?answer\s+is\s*:?\s*", re.IGNORECASE)
_BARE_OK = frozenset("the a an of and in on at to by from for with".split())


def _restates(claim: str, question: str) -> bool:
    """A bare answer that opens with a name the question already has ("King Charles III of West
    Francia" for "Who made a treaty with King Charles the third?") names who was asked about, not
    who was asked for."""
    asked = {w for w in _WORD.findall(question)[1:] if w[0].isupper() and w not in _NOT_NAMES}
    opening = [w for w in _WORD.findall(claim) if w[0].isupper() and w not in _NOT_NAMES][:2]
    return bool(opening) and set(opening) <= asked


def _answers_in_one_sentence(claim: str, question: str, passages: Sequence[Passage]) -> bool:
    """A bare answer is held only where one sentence of its passages says it together with most
    of what was asked: "King Malcolm III of Scotland married Edgar's sister" does not answer
    "Who did King Charles III swear fealty to?", though it holds the name."""
    asked = set(terms(question))
    if not asked:
        return True
    own = [n.lower() for n in _names(claim)] + [_digits(n) for n in _NUMBER.findall(claim)]
    for passage in passages:
        for sentence in split_sentences(passage.text):
            lower = sentence.lower()
            numbers = {_digits(n) for n in _NUMBER.findall(sentence)}
            if all(o in numbers or _says(lower, o) for o in own) and (
                len(asked & set(terms(sentence))) / len(asked) > 0.5
            ):
                return True
    return False


def verdict_of(support: Sequence[SentenceSupport]) -> Verdict | None:
    """``supported``, ``partly_supported`` or ``unverified``; None when nothing is claimed."""
    claims = [s for s in support if s.claim]
    if not claims:
        return None
    held = sum(s.supported for s in claims)
    if held == len(claims):
        return "supported"
    return "partly_supported" if held else "unverified"
