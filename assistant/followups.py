"""Follow-up questions made standalone without a model: "When did they present the results?"
after "Who are the partners of the INNAXE consortium?" becomes "When did the partners of the
INNAXE consortium present the results?", so that retrieval sees what the question is about.

The offline rewrite of both answer modes: the model's own rewrite gives way to it when it does
not keep the user's question (``assistant.llm``). Measured by ``python -m benchmarks.followups``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from assistant.answer_types import expected_type
from assistant.history import ELLIPTICAL
from assistant.text import split_sentences
from kb.terms import REQUEST_WORDS, STOPWORDS, WH_WORDS, fold

PRONOUNS = ("it", "they", "them", "there", "its", "their", "theirs", "he", "she", "him", "his", "her")

_PRONOUN_RE = re.compile(
    r"\b(this project|this company|this organisation|this organization|(?:these|those) [a-z]+s|"
    + "|".join(PRONOUNS)
    + r")\b",
    re.IGNORECASE,
)
_IMPERATIVES = REQUEST_WORDS | frozenset(
    "name can could would should is are was were do does did has have had will".split()
)
_CONNECTORS = frozenset({"of", "the", "de", "la", "le", "von", "van", "da", "del", "du", "and", "&"})
_SOURCES_BLOCK = re.compile(
    r"^\s*(sources?|references?|citations?)\s*:|^\s*\[\d+\]", re.IGNORECASE | re.MULTILINE
)


_DEMONYM = re.compile(r"(?:an|ish|ese|ch|ic)$")


def _entities(question: str) -> list[str]:
    """Capitalised spans ("William the Conqueror", "Bayeux Tapestry"), sentence start excluded."""
    tokens = re.findall(r"[\w'’\-&.]+|[^\w\s]", question)
    spans: list[list[str]] = []
    current: list[str] = []
    for i, tok in enumerate(tokens):
        word = tok.strip(".")
        is_cap = word[:1].isupper() and (word[:1].isalpha() or word[:1].isdigit())
        low = fold(word)
        first_ok = i > 0 or low not in _IMPERATIVES
        joins = current and low in _CONNECTORS and i + 1 < len(tokens) and tokens[i + 1][:1].isupper()
        numeral = low == "i" and bool(current)  # "I" alone is the speaker; "David I" a name
        if (is_cap and first_ok and low not in WH_WORDS and (low not in STOPWORDS or numeral)) or joins:
            current.append(word)
        else:
            adjective = len(current) == 1 and _DEMONYM.search(current[0]) and tok.isalpha() and tok.islower()
            if current and not (adjective and low not in STOPWORDS):  # "Norman art", "Scottish king"
                spans.append(current)
            current = []
    if current:
        spans.append(current)
    out = []
    for span in spans:
        while span and fold(span[-1]) in _CONNECTORS:
            span.pop()
        if span:
            out.append(" ".join(span))
    return out


def _noun_phrase(question: str) -> str:
    """The longest run of content words, with its determiner: 'the retention policy'."""
    tokens = re.findall(r"[\w'’\-]+", question)
    best: tuple[int, int, int] = (0, 0, 0)  # (length, -start, start)
    i = 0
    while i < len(tokens):
        low = fold(tokens[i])
        if low in STOPWORDS or low in WH_WORDS or low in _AUX_VERBS or len(low) < 2:
            i += 1
            continue
        j = i
        while j < len(tokens):
            lw = fold(tokens[j])
            if lw in STOPWORDS or lw in WH_WORDS or lw in _AUX_VERBS:
                break
            j += 1
        if (j - i) >= best[0]:  # later runs win ties: objects come last in questions
            best = (j - i, -i, i)
        i = j
    length, _, start = best
    if not length:
        return ""
    phrase = tokens[start : start + length]
    if start > 0 and fold(tokens[start - 1]) in ("the", "my", "our", "your", "a", "an"):
        det = fold(tokens[start - 1])
        phrase = [("the" if det in ("a", "an") else det), *phrase]
    return " ".join(phrase)


_AUX_VERBS = frozenset(
    "do does did is are was were be been being have has had can could should would will shall "
    "get gets got make makes made tell explain describe know mean means work works use used "
    "say says said cover covers include includes contain contains".split()
)


def _subject(question: str) -> tuple[str, str]:
    """(main subject, place) of a question: the noun phrase around its first named entity ("the
    partners of the INNAXE consortium", "the customary law of Normandy"), else its noun phrase."""
    ents = _entities(question)
    if ents:
        return _around(question, ents[0]), ents[-1]
    phrase = _noun_phrase(question)
    return phrase, phrase


def _around(question: str, entity: str) -> str:
    """``entity`` with the words of its noun phrase: a determiner, nouns before "of" ("the
    partners of the INNAXE consortium"), and the noun it qualifies ("the INNAXE project")."""
    at = question.find(entity)
    if at < 0:
        return entity
    start, end = at, at + len(entity)
    det = re.search(r"\bthe\s+$", question[:start], re.IGNORECASE)
    start = det.start() if det else start
    head = re.search(r"((?:\b[A-Za-z][\w'’-]*\s+){1,4})of\s+$", question[:start])
    if head:  # the nouns before "of", without the verbs and question words before them
        words = head.group(1).split()
        while words and (fold(words[0]) in _AUX_VERBS | WH_WORDS or fold(words[0]) in STOPWORDS - {"the"}):
            words.pop(0)
        if [w for w in words if fold(w) not in STOPWORDS]:
            start = question.rfind(" ".join(words), 0, start)
    # the noun the name qualifies: before the end or a preposition; after "the" any word ("the
    # INNAXE consortium run a survey": a determiner before a name makes the name a modifier)
    ends = r"" if det else r"(?=\s*[?.!,]?\s*$|\s+(?:of|in|at|for|to|and)\b)"
    tail = re.match(r"\s+([a-z][\w-]*)" + ends, question[end:])
    if entity.endswith(("'s", "’s")) or question[end:].startswith(("'s", "’s")):
        tail = None  # "Karen Lindegaard's role": the entity is the possessor, the subject itself
    if tail and fold(tail.group(1)) not in STOPWORDS | _AUX_VERBS and not tail.group(1).endswith("ed"):
        end += tail.end()
    return question[start:end].strip()


def _looks_like_sources(text: str) -> bool:
    return bool(_SOURCES_BLOCK.search(text or ""))


_SINGULAR = frozenset({"he", "him", "his", "she", "her", "it", "its"})


def _resolve(question: str, previous: str, named: Sequence[str] = ()) -> str:
    """Put the previous question's subject into ``question`` in place of its pronouns; ``named``
    (what the previous answer named, when it was asked for) stands for he/she/it instead: its
    first name, or for he/she its first that is no ACRONYM (an organisation is no person)."""
    first = _PRONOUN_RE.search(question)
    if not first or _entity_before(question, first.start()):
        return question
    subject, place = _subject(previous)
    if not subject and not named:
        return question

    used = {"subject": False}
    people = [n for n in named if not n.split()[-1].isupper()]

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        one = people if low in ("he", "him", "his", "she", "her") else named
        referent = one[0] if one and low in _SINGULAR else subject
        if low != "there":
            if used["subject"] or not referent:
                return word  # "did she marry him": only the first pronoun is the subject
            used["subject"] = True
        before = question[: m.start()].rstrip().lower()
        after = question[m.end() :].lstrip()
        if low == "there":
            if re.search(r"\b(is|are|was|were|be|been)$", before) or re.match(r"(is|are|was|were)\b", after):
                return word  # "is there ...", "there are ...": not a place
            if not place:
                return word
            return f"in {place}" if not before.endswith((" in", " at", " to", " from")) else place
        if low in ("its", "their", "theirs", "his"):
            return _possessive(referent)
        if low.startswith(("these ", "those ")):  # "those results": the results of the subject
            return f"the {word.split()[1]} of {referent}"
        if low == "her":
            nxt = re.match(r"[A-Za-z]+", after)
            if nxt and fold(nxt.group(0)) not in STOPWORDS:
                return _possessive(referent)
            return referent
        return referent

    resolved = _PRONOUN_RE.sub(swap, question)
    if resolved == question:
        return question  # only an existential "there": nothing refers back
    resolved = re.sub(r"\b(in|at|to|from) in\b", r"\1", resolved)
    if resolved[:1].islower() and question[:1].isupper():
        resolved = resolved[0].upper() + resolved[1:]
    return resolved


def _entity_before(question: str, end: int) -> bool:
    """The question names its own subject before the pronoun ("What did Rollo do there?")."""
    return bool(_entities(question[:end]))


def _possessive(subject: str) -> str:
    """ "Karen Lindegaard" -> "Karen Lindegaard's"; "the Normans" -> "the Normans'"; already
    possessive subjects ("Karen Lindegaard's role" asked about her) stay as they are."""
    if subject.endswith(("'s", "’s", "s'")):
        return subject
    return f"{subject}'" if subject.endswith("s") else f"{subject}'s"


# A question phrase with no verb of its own: "when", "for how long", "how many topics", "which year"
_WH_PHRASE = re.compile(
    r"(?i)\s*(?:(?:for|since|until|in|at|from|to|by)\s+)?"
    r"(?:how\s+(?:many|much)(?:\s+(?!(?:do|does|did|is|are|was|were|has|have|had)\b)[a-z][\w-]*)?"
    r"|how\s+(?:long|often|old|far|big|large|soon)|(?:which|what)\s+(?!(?:is|are|was|were|do|does|did|has|have|had)\b)"
    r"[a-z][\w-]*|what|which|who|whom|whose|when|where|why|how)\b"
)


def _asked_again(rest: str, previous: str) -> str | None:
    """'When', 'For how long' or 'How many topics' alone: the previous question asked again with
    that question phrase in place of its own ("Where did they meet?" -> "When did they meet?")."""
    if not (phrase := _WH_PHRASE.fullmatch(rest)) or len(rest.split()) > 4 or fold(rest) in ("what", "which"):
        return None  # "What?" alone asks to repeat, not a question about something
    opening = _WH_PHRASE.match(previous)
    if opening:
        tail = previous[opening.end() :].strip()
    else:
        tail = previous.strip()
        if fold(tail.split()[0]) in _IMPERATIVES:  # "Did the ..." -> "When did the ..."
            tail = tail[:1].lower() + tail[1:]  # a name keeps its case
    asked = phrase[0].strip()
    return f"{asked[:1].upper()}{asked[1:]} {tail}"


def _elliptical(question: str, previous: str) -> str | None:
    """'And when?', 'How many topics?' or 'What about BioRN?' after a question: that question with
    its question phrase or its subject swapped ("Where is BIOCAT based?" -> "Where is BioRN
    based?"); None when ``question`` is a question of its own. An ellipsis opens with "and",
    "what about" and the like (``assistant.history``) before a noun phrase of a few words, or is
    a question phrase without a verb."""
    rest = re.sub(r"(?i)^\s*(?:(?:and|but|also|so|or)\s+)?(?:(?:what|how)\s+about\s+)?", "", question)
    rest = rest.strip(" ?!.")
    words = rest.split()
    if (again := _asked_again(rest, previous)) is not None:
        return again
    if not ELLIPTICAL.match(question) or not words or len(words) > 6:
        return None
    if fold(words[0]) in _IMPERATIVES or any(fold(w) in WH_WORDS for w in words):
        return None  # "And who co-finances it?", "And is it funded?": a question of its own
    subject = _subject(previous)[0]
    if all(fold(w) in STOPWORDS for w in words) or not subject or subject not in previous:
        return None
    return previous.replace(subject, rest, 1)


def condense(question: str, history: Sequence[dict[str, Any]]) -> str:
    """A standalone version of a follow-up question, from the previous turns.

    Questions without a pronoun, or that name their own subject before it, come back unchanged.
    Earlier follow-ups are resolved first, so "and when did they leave?" after two follow-ups
    still finds the subject of the conversation. "he", "she" and "it" after a question that asked
    *for* someone or something ("Who conquered England?") mean what the answer named ("Duke
    William II of Normandy"); otherwise, and for "they" and "there", they mean what the question
    was about.
    """
    previous = [
        str(m.get("content") or "")
        for m in history
        if m.get("role") == "user"
        and str(m.get("content") or "").strip()
        and not _looks_like_sources(str(m.get("content") or ""))
    ]
    if not previous:
        return question
    standalone = last = previous[0]
    for earlier in previous[1:]:
        last = _elliptical(earlier, last) or _resolve(earlier, standalone)
        standalone = last if (_subject(last)[0] or not _subject(standalone)[0]) else standalone
    return _elliptical(question, last) or _resolve(
        question, standalone, _named_by_answer(previous[-1], _last_answer(history))
    )


def _last_answer(history: Sequence[dict[str, Any]]) -> str:
    """The assistant's reply to the last user question (its first sentence), markers removed."""
    reply = ""
    for m in history:
        content = str(m.get("content") or "")
        if m.get("role") == "user":
            reply = ""
        elif (
            m.get("role") == "assistant"
            and not reply
            and content.strip()
            and not _looks_like_sources(content)
        ):
            reply = content
    first = split_sentences(re.sub(r"\s?\[\d+\]", "", reply))
    return first[0] if first else ""


def _named_by_answer(asked: str, answer: str) -> list[str]:
    """The entities an answer named for a question that asked for one ("Who conquered England in
    1066?" -> "Duke William II of Normandy"), in order. Only who/which questions, or questions
    that name nothing themselves ("What is the most famous work of Norman art?"), ask for one."""
    words = asked.lower().split()
    if not answer or not words or expected_type(asked) in ("number", "date"):
        return []  # "How many responses did the survey get?": the answer is a count, no referent
    own = _entities(asked)
    if words[0] not in ("who", "whom", "whose", "which") and own:
        return []
    if own and re.fullmatch(rf"\w+\s+(?:is|are|was|were)\s+(?:the\s+)?{re.escape(own[0])}\W*", asked, re.I):
        return []  # "Who is Karen Lindegaard?": the answer describes her; "she" is still her
    known = {fold(e) for e in own}
    answer = re.sub(r"\b\w+:\s", " ", answer)  # a record's labels ("Partner: BIOCAT") name nothing
    new = [e for e in _entities(answer) if fold(e) not in known]
    return [f"the {e}" if re.search(r"\bthe\s+" + re.escape(e), answer, re.IGNORECASE) else e for e in new]
