"""What kind of answer a question asks for (a date, a number, a name, a place) and whether a
sentence holds one: used to choose and to trust the offline answer's sentence."""

from __future__ import annotations

import re

from kb.embeddings import tokenizer_vocab
from kb.terms import STOPWORDS, WH_WORDS, WORD_RE, fold, stem, stem_set, words

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
NUMBER_RE = re.compile(r"\d")
_DATE_RE = re.compile(
    r"\b(?:[1-9]\d{2,3}|[1-9]\d{0,2}0'?s|\d{1,2}(?:st|nd|rd|th)\s+(?:century|centuries|millennium))\b"
    r"|\b(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\b\.?\s*\d{0,4}",
    re.IGNORECASE,
)


_MODIFIER = r"(?:(?!(?:is|are|was|were|do|does|did)\b)\w+ )?"  # "which EU programme", not "what is Project X"


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
    if re.search(r"\bwhere\b", q) or re.search(
        rf"\b(which|what) {_MODIFIER}(countries|country|cit(y|ies)|towns?|regions?|places?|villages?|islands?"
        r"|continents?)\b",
        q,
    ):
        return "place"
    if re.search(r"\b(who|whom|whose)\b", q) or re.search(
        rf"\b(which|what) {_MODIFIER}(organi[sz]ations?|compan(y|ies)|partners?|members?"
        r"|institutions?|universit(y|ies)|clusters?|people|persons?|firms?|agenc(y|ies)|groups?"
        r"|programmes?|programs?|projects?|conferences?)\b",
        q,
    ):
        return "name"
    return None


_DEFINITION_Q = re.compile(
    r"(?i)\s*(?:what|who)\s+(?:is|are|was|were)\s+(?:the\s+|an?\s+)?([^?!.]+?)\s*[?!.]*\s*$"
)


def defined(question: str) -> str | None:
    """What "What is X?" or "Who was X?" asks to have defined (a name or a short noun phrase)."""
    m = _DEFINITION_Q.match(question)
    ws = m[1].split() if m else []
    if not ws or len(ws) > 4 or any(fold(w) in STOPWORDS | {"called", "named"} for w in ws):
        return None  # "What is in the summary?", "What is the project about?", "the name of X"
    return m[1]


def defines(sentence: str, subject: str) -> bool:
    """The sentence says what ``subject`` is: an apposition ("INNAXE, a Horizon Europe project";
    "Karen Lindegaard, international programme manager at ..."), "X is a/the ...", or a relative
    clause ("a 'Joint Programme' which ...")."""
    said = (
        r",\s+(?:(?:an?|the|its|their|one)\s+)?[a-z]"
        r"|\s+(?:is|was|are|were)\s+(?:an?|the|one|its|their|his|her)\b"
        r"|,?\s+(?:which|who)\b"
    )
    return bool(re.search(rf"(?i:{re.escape(subject)})['’”\")]*(?:{said})", sentence))


ROLE_NOUNS = frozenset(
    """
    team teams desk helpdesk department office staff manager managers owner owners admin
    administrator administrators lead committee board group council director directors officer
    officers support service services user users employee employees member members author
    authors maintainer maintainers vendor supplier customer customers king queen duke bishop
    consortium partner partners company companies organisation organisations organization
    organizations government agency university institute association army church pope emperor
    """.split()
)


_CAPITAL_RUN = re.compile(r"[A-Z]\w+(?:\s+(?:(?:of|the|and|for|&)\s+)?[A-Z]\w+)+")


def initials(text: str) -> dict[str, str]:
    """Acronym -> the run of capitalised words of ``text`` it abbreviates ("EU": "European Union")."""
    return {"".join(w[0] for w in run.split() if w[0].isupper()): run for run in _CAPITAL_RUN.findall(text)}


def spelled_out(sentence: str, question: str) -> set[str]:
    """Stems of the names of ``sentence`` that spell out an acronym of the question ("European
    Union" for "EU"): the question's own words, not a new name that could answer it."""
    runs = initials(sentence)
    return {
        s for w in words(question) if len(w) >= 2 and w.isupper() and w in runs for s in stem_set(runs[w])
    }


_PLACE_FIELDS = frozenset("country city town region location place address site headquarters venue".split())


def _not_a_place(sentence: str, at: int) -> bool:
    """A record's value is of the kind its field names: in "Partner: BioRN; Consortium: INNAXE"
    the name INNAXE is no place. (A field of prose, "Notes: they met in Sofia", is no record.)"""
    start = max(sentence.rfind(";", 0, at), sentence.rfind("\n", 0, at)) + 1
    field = re.match(r"\s*(?:\w+ ){0,2}(\w+):\s*([^;\n]*)", sentence[start:])
    if not field or start + field.start(2) > at:
        return False
    named = all(w[:1].isupper() or fold(w) in _CONNECTORS for w in words(field[2]))
    return named and fold(field[1]) not in _PLACE_FIELDS


def _capitalised_new(sentence: str, question_stems: set[str], kind: str) -> bool:
    """A name-like word the question does not already have: Capitalised or an ACRONYM, not a
    month nor a field's label ("Consortium: INNAXE"); for "who", a role ("the IT helpdesk") too;
    for "where", not the value of a field that is no place."""
    toks = list(WORD_RE.finditer(sentence))
    for i, t in enumerate(toks):
        w = t[0]
        if kind == "place" and _not_a_place(sentence, t.start()):
            continue
        acronym = len(w) >= 2 and w.isupper() and w.isalpha()
        role = kind == "name" and (fold(w) in ROLE_NOUNS or stem(w) in ROLE_NOUNS)
        if not (acronym or role) and (i == 0 or not w[:1].isupper() or fold(w) in _NOT_NAMES):
            continue
        if stem(w) not in question_stems and sentence[t.end() : t.end() + 1] != ":":
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
            bool(NUMBER_RE.search(w) or fold(w) in NUMBER_WORDS) and stem(w) not in question_stems
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


_ANYONE = frozenset("people persons men women individuals times".split())  # counted under any name


def has_type(sentence: str, kind: str | None, question: str) -> bool:
    """Does the sentence hold something new of the kind the question asks for?"""
    if kind is None:
        return True
    q_stems = stem_set(question) | spelled_out(sentence, question)
    if kind == "number":  # "how many responses": a count, and the thing counted
        counted = re.search(r"\bhow (?:many|much) (\w+)", fold(question))
        generic = counted and fold(counted[1]) in STOPWORDS | _ANYONE
        if counted and not generic and stem(counted[1]) not in stem_set(sentence):
            return False
    if kind in ("date", "number"):
        return type_fit(sentence, kind, q_stems) > 0
    return _capitalised_new(sentence, q_stems, kind)


# --- the short answer: the span of the answering sentence that answers -----------------------

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)[a-z]*\.?"
_ORD = r"\d{1,2}(?:st|nd|rd|th)"
_YEAR = r"[1-9]\d{2,3}(?:\s?(?:AD|BC|BCE|CE)\b)?(?![,.]\d|\s?%)"
_EARLY = r"(?:the\s+)?(?:(?:early|mid|late)[\s-]+)?"
_DATE_SPAN_RE = re.compile(  # "the 10th century", "14 October 1066", "June 2024", "the 1050s", "911"
    rf"\b(?:{_EARLY}{_ORD}(?:\s+(?:and|or|to)\s+{_ORD})?\s+(?:century|centuries|millennium)"
    rf"|(?:\d{{1,2}}\s+)?{_MONTH}(?:\s+\d{{1,2}}(?:st|nd|rd|th)?,?)?(?:\s+{_YEAR})?"
    rf"|{_EARLY}[1-9]\d{{2}}0'?s|{_YEAR})(?!\w)"
)
_COUNT_RE = re.compile(  # "30,000", "€8 million", "12 %", "six"
    r"(?:[€$£¥]\s?)?\b(?:\d[\d,.]*\d|\d|"
    + "|".join(NUMBER_WORDS - {"several"})
    + r")\b(?:\s?%|\s(?:million|billion|thousand|hundred)\b)?"
)
_TIME_UNITS = frozenset("second minut hour day week month year decad centuri".split())
_NOT_NAMES = STOPWORDS | MONTHS
_CONNECTORS = frozenset("of de du da di del der van von la le the".split())
_LOCATIVE_RE = re.compile(  # "fled to southern Italy": the preposition, then the region
    r"\b(in|at|near|into|on|across|throughout|within|from|to|off|towards?)\s+(?:the\s+)?"
    r"((?:(?:north|south)?(?:east|west)?(?:ern)?|central)\s+)?$",
    re.IGNORECASE,
)
_NOT_A_PERSON = frozenset("in at near into on across throughout within".split())  # "in Asia Minor"


def _plural_asked(question: str) -> bool:
    """'Who were ...', 'which partners ...', 'the two abbots': the question wants several names."""
    ws = [fold(w) for w in words(question)]
    after = [ws[i + 1 : i + 3] if w in ("which", "what") else ws[i + 1 : i + 2] for i, w in enumerate(ws)]
    return bool(re.search(r"\bwho (are|were)\b", fold(question))) or any(
        n.endswith("s") and not n.endswith("ss") and n not in STOPWORDS
        for w, nxt in zip(ws, after)
        if w in ("which", "what") or w in NUMBER_WORDS
        for n in nxt
    )


def _name_spans(sentence: str, q_stems: set[str], plural: bool) -> list[tuple[int, int]]:
    """Runs of Capitalised words, with 'of', 'de', '&' inside ("Robert of Jumièges") and a demonym's
    noun ("Turkish forces"), that the question does not already have; the sentence's first word
    alone only when it is no common word. A plural question gets a whole list ("A, B and C")."""
    toks = list(WORD_RE.finditer(sentence))
    label = [sentence[t.end() : t.end() + 1] == ":" for t in toks]  # "Partner: BIOCAT": a field's name
    starts = [i == 0 or sentence[: t.start()].rstrip()[-1:] in ":;" for i, t in enumerate(toks)]
    capital = [t[0][:1].isupper() and fold(t[0]) not in _NOT_NAMES and not lab for t, lab in zip(toks, label)]
    capital.append(False)
    joins = [
        i > 0 and sentence[toks[i - 1].end() : t.start()].strip() in ("", "&") for i, t in enumerate(toks)
    ]
    runs: list[list[int]] = []
    for i, w in enumerate(t[0] for t in toks):
        linked = runs and runs[-1][1] == i - 1 and joins[i]
        demonym = linked and runs[-1][0] == i - 1 and re.search(r"(an|ish|ese|ic|ine)$", toks[i - 1][0])
        if capital[i]:
            runs[-1:] = [[runs[-1][0], i]] if linked else [*runs[-1:], [i, i]]
        elif linked and fold(w) in _CONNECTORS and capital[i + 1]:
            runs[-1][1] = i
        elif demonym and w.islower() and w not in STOPWORDS:  # "Turkish forces", "the Byzantine
            # general Alexius Komnenos"; an adjective alone ("European recognition") is no name
            keep = w.endswith("s") or capital[i + 1] and not w.endswith("ed")
            runs[-1:] = [[i - 1, i]] if keep else []
    spans = [
        (toks[a].start(), toks[b].end())
        for a, b in runs
        if (
            not starts[a]
            or b > a
            or fold(toks[a][0]) not in tokenizer_vocab()
            or plural
            and re.match(r"\s*(?:,|and)\s+[A-Z]", sentence[toks[b].end() :])
        )
        and any(stem(t[0]) not in q_stems for t in toks[a : b + 1])
    ]
    lists: list[tuple[int, int]] = []
    for s, e in spans:
        if plural and lists and re.fullmatch(r"\s*(?:,|,?\s*(?:and|or))\s*", sentence[lists[-1][1] : s]):
            lists[-1] = (lists[-1][0], e)
        else:
            lists.append((s, e))
    return [sp for sp in lists if sp not in spans] or spans  # the lists, when there are any


def _count_spans(question: str, sentence: str) -> list[tuple[int, int]]:
    """Numbers with their noun: the question's ("six European partners"), else the next word."""
    asked = re.search(r"\bhow (?:many|much) (\w+)", fold(question))
    spans = []
    for m in _COUNT_RE.finditer(sentence):
        if sentence[m.end() : m.end() + 1] == ")":
            continue  # "3) Long-term effect": an item's number, no count
        nouns = list(
            re.finditer(r"[^\W\d][\w-]*", re.match(r"(?:\s+[^\W\d][\w-]*){0,3}", sentence[m.end() :])[0])
        )
        counted = [n.end() for n in nouns if asked and stem(n[0]) == stem(asked[1])]
        unit = [nouns[0].end()] if nouns and nouns[0][0].islower() and nouns[0][0] not in STOPWORDS else [0]
        spans.append((m.start(), m.end() + (counted or unit)[0]))
    counts = [(s, e) for s, e in spans if not _DATE_SPAN_RE.fullmatch(sentence[s:e])]  # a year is no count
    if re.search(r"\bhow (long|old)\b", fold(question)):  # a duration, when there is one
        return [(s, e) for s, e in counts if stem(sentence[s:e].split()[-1]) in _TIME_UNITS] or counts
    return counts


def _gap(anchor: int, i: int) -> float:
    """Words from a question word to a candidate; one after the word is nearer ("ended in 1945")."""
    return i - anchor if anchor < i else anchor - i + 0.5


def short_answer(question: str, sentence: str) -> str | None:
    """The shortest span of ``sentence`` that answers ``question``: a date ("June 2024"), a count
    with its noun ("six European partners"), a name or a list of names, a place. None when the
    question asks for none of these, when the sentence holds none that the question does not
    already have, or when several are equally near the question's words in the sentence."""
    kind = expected_type(question)
    if kind is None:
        return None
    q_stems = stem_set(question) | spelled_out(sentence, question)
    if kind == "date":
        spans = [m.span() for m in _DATE_SPAN_RE.finditer(sentence)]
    elif kind == "number":
        spans = _count_spans(question, sentence)
    else:
        spans = _name_spans(sentence, q_stems, _plural_asked(question))
        if kind == "place":  # "Turkish forces" answers who, not where
            spans = [
                (s, e)
                for s, e in spans
                if not sentence[s:e].split()[-1].islower() and not _not_a_place(sentence, s)
            ]
    ends = {e for _, e in spans}  # "Horizon Europe (EIE)": the acronym abbreviates the name before it
    spans = [(s, e) for s, e in spans if len(re.sub(r"\s*\(\s*$", "", sentence[:s])) not in ends - {s}]
    where = [(s, e, _LOCATIVE_RE.search(sentence[:s])) for s, e in spans]
    if kind == "place":  # a name after in/at/from/to, with its region ("southern Italy")
        spans = [(s - len(m[2] or ""), e) for s, e, m in where if m] or spans
    elif re.search(r"\bwho(m|se)?\b", fold(question)):
        spans = [(s, e) for s, e, m in where if not m or fold(m[1]) not in _NOT_A_PERSON]
    toks = list(WORD_RE.finditer(sentence))
    topic = {stem(w) for w in words(question) if fold(w) not in STOPWORDS | WH_WORDS}
    anchors = [i for i, t in enumerate(toks) if stem(t[0]) in topic]
    distance: dict[str, float] = {}  # span -> words to the nearest of the question's words
    asked = re.search(r"\b(?:which|what)\s+(\w+)", question, re.IGNORECASE)  # the noun asked for
    for s, e in spans:
        inside = [i for i, t in enumerate(toks) if s <= t.start() < e]
        if any(stem(toks[i][0]) not in q_stems | ROLE_NOUNS | STOPWORDS for i in inside):  # not just a title
            far = min((0 if a in inside else min(_gap(a, i) for i in inside) for a in anchors), default=99)
            field = re.search(r"(\w+):\s*$", sentence[:s])  # "Partner: BIOCAT" for "which partner"
            far = -1 if field and asked and stem(field[1]) == stem(asked[1]) else far
            agent = re.search(r"([\w-]+)\s+by\s+(?:the\s+)?$", sentence[:s])  # "co-financed by the EU"
            passive = agent and {t for t in stem_set(agent[1]) if len(t) > 2} & q_stems
            far = -1 if passive else far
            span = re.sub(r"['’]s$", "", sentence[s:e])
            distance[span] = min(far, distance.get(span, 99))
    ranked = sorted(distance, key=distance.get)
    return ranked[0] if len(ranked) == 1 or ranked and distance[ranked[0]] < distance[ranked[1]] else None
