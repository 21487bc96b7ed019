"""Words, stems and terms: the one analyser shared by the keyword index, the extractive
answerer, citation checking and evaluation, so that they agree on what a "term" is.

It lives in ``kb`` because ingestion writes these terms into the keyword index and retrieval
queries it with them: both sides must analyse text the same way."""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can could did do does doing done down during each
    else ever few for from further get got had has have having he her here hers herself him
    himself his how i if in into is it its itself just let me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some
    such than that the their theirs them themselves then there these they this those through
    to too under until up upon us very was we were what when where which while who whom whose
    why will with would you your yours yourself yourselves may might must shall one ones
    many much there's what's who's it's don't doesn't didn't isn't wasn't weren't s
    """.split()
)

# Question words: they say what kind of answer is wanted, never what it is about.
WH_WORDS = frozenset("who whom whose what which when where why how".split())

# Words that ask rather than say what is asked about: a request opening a question ("List the
# partners", "Tell me about ...") and verbs about what a document holds ("What do the guidelines
# cover?"). The answering passage rarely repeats them.
REQUEST_WORDS = frozenset(
    "tell explain describe show give list summarise summarize please compare define find".split()
)
DOCUMENT_VERBS = frozenset("cover covers covered contain contains mention mentions discuss discusses".split())

WORD_RE = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w'’\-]*|\d[\d,.]*(?:'?s|st|nd|rd|th)?")


def fold(text: str) -> str:
    """Lower-case and strip accents, so 'Hervé' matches 'Herve'."""
    norm = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in norm if not unicodedata.combining(c)).lower()


IRREGULAR = {
    past: base
    for base, forms in {
        "be": "was were been",
        "become": "became",
        "begin": "began begun",
        "bring": "brought",
        "build": "built",
        "buy": "bought",
        "choose": "chose chosen",
        "come": "came",
        "do": "did done",
        "drive": "drove driven",
        "fall": "fell fallen",
        "fight": "fought",
        "find": "found",
        "flee": "fled",
        "fly": "flew flown",
        "forbid": "forbade forbidden",
        "forget": "forgot forgotten",
        "give": "gave given",
        "go": "went gone",
        "grow": "grew grown",
        "have": "had has",
        "hold": "held",
        "keep": "kept",
        "know": "knew known",
        "lay": "laid",
        "lead": "led",
        "leave": "left",
        "lose": "lost",
        "make": "made",
        "meet": "met",
        "pay": "paid",
        "rise": "rose risen",
        "run": "ran",
        "say": "said",
        "see": "saw seen",
        "seek": "sought",
        "sell": "sold",
        "send": "sent",
        "shake": "shook shaken",
        "sing": "sang sung",
        "sit": "sat",
        "speak": "spoke spoken",
        "spend": "spent",
        "stand": "stood",
        "steal": "stole stolen",
        "strike": "struck",
        "swear": "swore sworn",
        "take": "took taken",
        "teach": "taught",
        "tell": "told",
        "think": "thought",
        "throw": "threw thrown",
        "understand": "understood",
        "wear": "wore worn",
        "win": "won",
        "write": "wrote written",
        "bear": "bore born borne",
        "beat": "beaten",
        "bind": "bound",
        "break": "broke broken",
        "catch": "caught",
        "draw": "drew drawn",
        "eat": "ate eaten",
        "feel": "felt",
        "get": "got gotten",
        "hide": "hid hidden",
        "ride": "rode ridden",
        "shoot": "shot",
        "slay": "slew slain",
        "split": "split",
        "spread": "spread",
        "withdraw": "withdrew withdrawn",
        "overthrow": "overthrew overthrown",
        "undertake": "undertook undertaken",
    }.items()
    for past in forms.split()
}


_local_stemmer = threading.local()


def _snowball():
    """One Snowball stemmer per thread: a stemmer object keeps state while it works."""
    stemmer = getattr(_local_stemmer, "stemmer", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _local_stemmer.stemmer = snowballstemmer.stemmer("english")
    return stemmer


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball stem, after folding accents, possessives and common irregular verbs."""
    w = fold(word).strip("'-.,")
    if w.endswith("'s"):
        w = w[:-2]
    w = w.rstrip("'")
    if w[:1].isdigit():
        return w.replace(",", "").replace("'", "").rstrip(".")
    w = IRREGULAR.get(w, w)
    return _snowball().stemWord(w)


def words(text: str) -> list[str]:
    return WORD_RE.findall(text)


def stem_set(text: str) -> set[str]:
    """Stems of every word and of each part of hyphenated words."""
    out: set[str] = set()
    for word in words(text):
        out.add(stem(word))
        if "-" in word:
            out.update(stem(p) for p in word.split("-") if p)
    out.discard("")
    return out


def terms(text: str) -> list[str]:
    """Content terms for keyword search: stems of the words that are not stop words."""
    return [stem(w) for w in words(text) if fold(w) not in STOPWORDS]
