"""What kind of answer a question asks for (a date, a number, a name, a place) and whether a
sentence holds one: used to choose and to trust the offline answer's sentence."""

from __future__ import annotations

import re

from kb.terms import STOPWORDS, fold, stem, stem_set, words

NUMBER_WORDS = frozenset(
    """
    two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen twenty
    thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand thousands million
    millions billion dozen dozens several once twice half
    """.split()
)
MONTHS = frozenset(
    """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()
)
_NUMBER_RE = re.compile(r"\d")
_DATE_RE = re.compile(
    r"\b(?:[1-9]\d{2,3}|[1-9]\d{0,2}0'?s|\d{1,2}(?:st|nd|rd|th)\s+(?:century|centuries|millennium))\b"
    r"|\b(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b\.?\s*\d{0,4}",
    re.IGNORECASE,
)


def expected_type(question: str) -> str | None:
    """'date', 'number', 'name' or 'place' when the question's form says so, else None."""
    q = fold(question)
    if re.search(r"\bhow (many|much|long|old|far|big|large|tall)\b", q):
        return "number"
    if re.search(
        r"\b(what|which|in what|in which) (year|years|century|centuries|decade|date|month|day)\b", q
    ):
        return "date"
    if re.match(r"\s*(when|what time)\b", q) or re.search(r"\bwhen (did|was|were|is|are|do|does)\b", q):
        return "date"
    if re.search(r"\b(who|whom|whose)\b", q) or re.search(
        r"\b(which|what) (\w+ )?(organi[sz]ations?|compan(y|ies)|partners?|members?|countries|country"
        r"|institutions?|universit(y|ies)|clusters?|people|persons?|firms?|agenc(y|ies)|groups?)\b",
        q,
    ):
        return "name"
    if re.search(r"\bwhere\b", q):
        return "place"
    return None


ROLE_NOUNS = frozenset(
    """
    team teams desk helpdesk department office staff manager managers owner owners admin
    administrator administrators lead committee board group council director directors officer
    officers support service services user users employee employees member members author
    authors maintainer maintainers vendor supplier customer customers king queen duke bishop
    """.split()
)


def _capitalised_new(sentence: str, question_stems: set[str]) -> bool:
    """A name-like word the question does not already have: Capitalised, an ACRONYM or a role."""
    tokens = words(sentence)
    for i, w in enumerate(tokens):
        acronym = len(w) >= 2 and w.isupper() and w.isalpha()
        role = fold(w) in ROLE_NOUNS or stem(w) in ROLE_NOUNS
        if not (acronym or role) and (i == 0 or not w[:1].isupper() or fold(w) in STOPWORDS):
            continue
        if stem(w) not in question_stems:
            return True
    return False


def type_fit(sentence: str, kind: str | None, question_stems: set[str]) -> float:
    """0..1: how much of the asked-for kind the sentence holds that the question does not
    (a list of partners beats a sentence with one stray capitalised word)."""
    if kind is None:
        return 0.0
    if kind == "date":
        found = sum(stem(m.group(0).split()[0]) not in question_stems for m in _DATE_RE.finditer(sentence))
        return min(found, 1)
    if kind == "number":
        found = sum(
            bool(_NUMBER_RE.search(w) or fold(w) in NUMBER_WORDS) and stem(w) not in question_stems
            for w in words(sentence)
        )
        return min(found, 1)
    tokens = words(sentence)
    names = sum(
        1
        for i, w in enumerate(tokens)
        if i > 0 and w[:1].isupper() and fold(w) not in STOPWORDS and stem(w) not in question_stems
    )
    return min(names / 3, 1.0)


def has_type(sentence: str, kind: str | None, question: str) -> bool:
    """Does the sentence hold something new of the kind the question asks for?"""
    if kind is None:
        return True
    q_stems = stem_set(question)
    if kind == "date":
        return any(stem(m.group(0).split()[0]) not in q_stems for m in _DATE_RE.finditer(sentence))
    if kind == "number":
        for w in words(sentence):
            if (_NUMBER_RE.search(w) or fold(w) in NUMBER_WORDS) and stem(w) not in q_stems:
                return True
        return False
    return _capitalised_new(sentence, q_stems)
