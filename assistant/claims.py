"""Every claim of an answer checked against the passages it cites.

A model can cite a passage and still write what the passage does not say ("for 12 years" where
it says two, an invented "INNAXE Foundation"). So each sentence of an answer is a claim, and a
claim is supported when the passages it cites (or, for a sentence without a marker, the
passages the answer cites) hold:

* every number in it ("25", "2019", "1.2" million; separators ignored),
* every name in it (a capitalised word past the sentence's first, or an acronym),
* and at least ``MIN_COVERAGE`` (a fifth) of its content terms (``kb.terms``: stems, stop words out);

words of the question count as held (restating what was asked invents nothing).

Sentences that only say what is missing ("The documents do not say when") are not claims. The
answer's verdict: ``supported`` (every claim), ``partly_supported``, or ``unverified`` (none).
The extractive answer quotes its passages, so its claims are supported by construction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.citations import cited_numbers, strip_markers
from assistant.models import Passage, SentenceSupport, Verdict
from assistant.refusals import says_not_found
from assistant.text import split_sentences
from kb.terms import terms

# Share of a claim's content terms its passages (or the question) must hold. Chosen on the PG
# qa_pairs set by ``python -m benchmarks.claim_check``; held out on PG list and Solana it flags
# 7-9 % of true sentences and catches 92-100 % of changed facts (fits on those two choose 0.3).
MIN_COVERAGE = 0.2

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w&'’-]*")
_NOT_NAMES = frozenset(
    "I A An The This That These Those It Its They Their There Then Also And But Or So If In On At "
    "For From To Of By With As After Before When While Yes No".split()
)


def _digits(number: str) -> str:
    """A number without its separators: "1,200" and "1.200" and "1200" are one number."""
    return re.sub(r"[.,]", "", number)


def _names(sentence: str) -> list[str]:
    words = _WORD.findall(sentence)
    out = []
    for i, word in enumerate(words):
        acronym = sum(c.isupper() for c in word) >= 2
        if acronym or (i > 0 and word[0].isupper() and word not in _NOT_NAMES):
            out.append(word.strip("'’-"))
    return out


def check_claims(text: str, passages: Sequence[Passage], question: str = "") -> list[SentenceSupport]:
    """Each sentence of ``text`` with what supports it (see the module's note). Words of the
    ``question`` count as held: restating what was asked invents nothing."""
    by_n = {p.n: p for p in passages}
    answer_cites = tuple(n for n in cited_numbers(text) if n in by_n)
    held: dict[tuple[int, ...], tuple[str, set[str], set[str]]] = {}  # cites -> evidence read once

    def evidence_of(cites: tuple[int, ...]) -> tuple[str, set[str], set[str]]:
        """The cited passages and the question: lower-cased text, numbers, content terms."""
        if cites not in held:
            text = " ".join(by_n[n].text for n in cites) + "\n" + question
            held[cites] = (text.lower(), {_digits(n) for n in _NUMBER.findall(text)}, set(terms(text)))
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
        lower, have_numbers, have_terms = evidence_of(tuple(cites) or answer_cites)
        missing = [n for n in _NUMBER.findall(claim) if _digits(n) not in have_numbers]
        missing += [name for name in _names(claim) if not re.search(rf"\b{re.escape(name.lower())}\b", lower)]
        own = set(terms(claim))
        coverage = len(own & have_terms) / len(own) if own else 1.0
        out.append(
            SentenceSupport(
                text=sentence,
                cites=cites,
                supported=not missing and coverage >= MIN_COVERAGE,
                missing=list(dict.fromkeys(missing)),
                coverage=round(coverage, 3),
            )
        )
    return out


def verdict_of(support: Sequence[SentenceSupport]) -> Verdict | None:
    """``supported``, ``partly_supported`` or ``unverified``; None when nothing is claimed."""
    claims = [s for s in support if s.claim]
    if not claims:
        return None
    held = sum(s.supported for s in claims)
    if held == len(claims):
        return "supported"
    return "partly_supported" if held else "unverified"
