"""Evaluation metrics as pure functions: text and numbers in, a score out.

Every score is in 0..1 (higher is better) unless it is a latency in seconds; a metric that
does not apply to a question (no reference answer, a declined answer...) is ``None`` and is
left out of the averages. Definitions (also in the README):

* **Relevant passage** — a retrieved passage *overlaps* a reference context when at least half
  of the word 3-grams of the shorter of the two texts occur in the longer (containment, so a
  small chunk inside a long reference context counts, and so does a short quote inside a large
  chunk). When a question has ``reference_contexts`` they decide; otherwise a passage is
  relevant when its source is one of ``sources`` (same path, or same file name).
* **hit@k** — 1 if any of the first k retrieved passages is relevant, else 0.
* **MRR** — 1 / rank of the first relevant passage (0 if none was retrieved).
* **context recall** — share of the reference answer's content words (SQuAD-normalised, stop
  words dropped) that occur in the retrieved passages; best over alternative answers.
* **must include** — 1 if every group of ``answer_must_include`` has an alternative in the
  answer (case-insensitive, whole words), else 0.
* **F1 / exact match** — the official SQuAD v1.1/v2.0 script: lower case, drop punctuation and
  the articles a/an/the, collapse whitespace; best over alternative answers.
* **semantic similarity** — cosine of the embeddings of answer and reference answer.
* **groundedness** — share of the answer's sentences (citation markers removed, at least two
  content words) supported by the passages it cites: a sentence is supported by a passage
  when at least 60 % of its content words occur in that passage. A sentence with [n] markers
  is checked against those passages, one without against every cited passage.
* **citation precision** — share of cited passages that support at least one answer sentence.
* **declined when unanswerable / answered when answerable** — rates over the questions with
  ``answerable: false`` / ``true``.
* **latency p50 / p95** — percentiles with linear interpolation between closest ranks.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

from assistant.extractive import UNSURE_MESSAGE
from assistant.refusals import says_not_found

OVERLAP_THRESHOLD = 0.5
SUPPORT_THRESHOLD = 0.6
NGRAM = 3

# Function words that match anywhere; left out when counting "content words".
_STOP = """a an the and or but if then than so of to in on at by for with from as into onto over under
    about after before between through during without within is are was were be been being am do
    does did doing have has had having it its it's this that these those there here which who whom
    whose what when where why how i you he she we they me him her us them my your his our their
    not no nor only own same too very can will just should would could may might must shall also
    any all each both few more most other some such s t"""
STOP_WORDS = frozenset(_STOP.split())

_PUNCT = frozenset(string.punctuation)
_WORD = re.compile(r"\w+", re.UNICODE)
_CITATION = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_LEADING_CITATIONS = re.compile(r"(?:\s*\[\d+(?:\s*[,;]\s*\d+)*\])+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


# --- text normalisation ----------------------------------------------------------------------


def squad_normalize(text: str) -> str:
    """The official SQuAD ``normalize_answer``: lower, drop punctuation and articles, fix spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits of any script)."""
    return _WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    """Distinct words that carry meaning: SQuAD-normalised tokens minus stop words."""
    return {w for w in words(squad_normalize(text)) if w not in STOP_WORDS}


def _ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


# --- retrieval ---------------------------------------------------------------------------------


def containment(a: str, b: str, n: int = NGRAM) -> float:
    """Share of the shorter text's word n-grams found in the longer one (unigrams if too short)."""
    ta, tb = words(a), words(b)
    if not ta or not tb:
        return 0.0
    size = n if min(len(ta), len(tb)) >= n else 1
    ga, gb = _ngrams(ta, size), _ngrams(tb, size)
    shorter, longer = (ga, gb) if len(ga) <= len(gb) else (gb, ga)
    return len(shorter & longer) / len(shorter)


def overlaps(passage: str, reference: str, threshold: float = OVERLAP_THRESHOLD) -> bool:
    """Whether a retrieved passage and a reference context share the same text (see module doc)."""
    return containment(passage, reference) >= threshold


def source_matches(source: str, wanted: Iterable[str]) -> bool:
    """Same source id, or the same path tail / file name (``docs/a.pdf`` matches ``a.pdf``)."""
    src = source.replace("\\", "/").strip("/")
    for w in wanted:
        w = w.replace("\\", "/").strip("/")
        if src == w or src.endswith("/" + w) or w.endswith("/" + src) or src.rsplit("/", 1)[-1] == w:
            return True
    return False


def relevance(
    passages: Sequence[tuple[str, str]],
    reference_contexts: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> list[bool] | None:
    """Relevance of each retrieved ``(source, text)``; None when the question names neither."""
    if reference_contexts:
        return [any(overlaps(text, ref) for ref in reference_contexts) for _, text in passages]
    if sources:
        return [source_matches(src, sources) for src, _ in passages]
    return None


def hit_at_k(relevant: Sequence[bool], k: int) -> float:
    """1.0 if any of the first ``k`` passages is relevant."""
    return 1.0 if any(relevant[:k]) else 0.0


def reciprocal_rank(relevant: Sequence[bool]) -> float:
    """1 / rank of the first relevant passage; 0.0 when none is. Averaged, this is MRR."""
    for rank, rel in enumerate(relevant, 1):
        if rel:
            return 1.0 / rank
    return 0.0


def context_recall(reference_answers: Sequence[str], passages: Sequence[str]) -> float | None:
    """Share of the reference answer's content words present in the retrieved passages."""
    have: set[str] = set()
    for text in passages:
        have |= set(words(squad_normalize(text)))
    best: float | None = None
    for ref in reference_answers:
        want = content_words(ref)
        if want:
            score = len(want & have) / len(want)
            best = score if best is None else max(best, score)
    return best


# --- answers -------------------------------------------------------------------------------------


def missing_groups(answer: str, groups: Sequence[Sequence[str]]) -> list[list[str]]:
    """The ``answer_must_include`` groups with no alternative in the answer (whole words, any case)."""
    text = " ".join(answer.casefold().split())
    missing = []
    for group in groups:
        found = False
        for alt in group:
            needle = re.escape(" ".join(alt.casefold().split()))
            if re.search(rf"(?<!\w){needle}(?!\w)", text):
                found = True
                break
        if not found:
            missing.append(list(group))
    return missing


def must_include(answer: str, groups: Sequence[Sequence[str]]) -> float | None:
    """1.0 when every group has an alternative in the answer, 0.0 otherwise; None without groups."""
    if not groups:
        return None
    return 0.0 if missing_groups(answer, groups) else 1.0


def squad_f1(prediction: str, references: Sequence[str]) -> float | None:
    """Token F1 of the official SQuAD script, best over the references."""
    if not references:
        return None
    pred = squad_normalize(prediction).split()
    best = 0.0
    for ref in references:
        gold = squad_normalize(ref).split()
        if not gold or not pred:
            best = max(best, float(gold == pred))
            continue
        common = Counter(pred) & Counter(gold)
        same = sum(common.values())
        if same == 0:
            continue
        precision, recall = same / len(pred), same / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def squad_exact_match(prediction: str, references: Sequence[str]) -> float | None:
    """1.0 when the normalised prediction equals a normalised reference."""
    if not references:
        return None
    pred = squad_normalize(prediction)
    return 1.0 if any(pred == squad_normalize(r) for r in references) else 0.0


def cosine(u: Sequence[float], v: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 if either is zero)."""
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    nu, nv = math.sqrt(sum(a * a for a in u)), math.sqrt(sum(b * b for b in v))
    return dot / (nu * nv) if nu and nv else 0.0


# --- grounding -----------------------------------------------------------------------------------


def answer_sentences(answer: str) -> list[tuple[str, set[int]]]:
    """Sentences of an answer that make a claim, each with the [n] passages it cites (an unsure
    offline answer's framing, "... The closest passage says:", is none)."""
    answer = answer.removeprefix(UNSURE_MESSAGE)
    pieces: list[list[str]] = []  # [text, markers...]; markers after the full stop belong before it
    for raw in _SENTENCE_END.split(answer):
        lead = _LEADING_CITATIONS.match(raw)
        if lead and lead.group(0).strip() and pieces:
            pieces[-1].append(lead.group(0))
            raw = raw[lead.end() :]
        pieces.append([raw])
    out = []
    for text, *extra in pieces:
        cited = {
            int(n) for m in _CITATION.finditer(text + " ".join(extra)) for n in re.split(r"[,;]", m.group(1))
        }
        sentence = _CITATION.sub("", text).strip()
        if len(content_words(sentence)) >= 2 and not (says_not_found(sentence) and not cited):
            out.append((sentence, cited))  # "I could not find a sure answer ...": claims nothing
    return out


def support(sentence: str, passage: str) -> float:
    """Share of the sentence's content words that occur in the passage."""
    want = content_words(sentence)
    if not want:
        return 0.0
    return len(want & set(words(squad_normalize(passage)))) / len(want)


def supported(sentence: str, passage: str, threshold: float = SUPPORT_THRESHOLD) -> bool:
    return support(sentence, passage) >= threshold


def groundedness(answer: str, cited: dict[int, str]) -> float | None:
    """Share of answer sentences supported by the passages they cite (``cited``: n -> text)."""
    sentences = answer_sentences(answer)
    if not sentences:
        return None
    ok = 0
    for sentence, refs in sentences:
        pool = [cited[n] for n in refs if n in cited] if refs else list(cited.values())
        if any(supported(sentence, text) for text in pool):
            ok += 1
    return ok / len(sentences)


def citation_precision(answer: str, cited: dict[int, str]) -> float | None:
    """Share of cited passages that support at least one sentence of the answer."""
    if not cited:
        return None
    sentences = [s for s, _ in answer_sentences(answer)]
    good = sum(1 for text in cited.values() if any(supported(s, text) for s in sentences))
    return good / len(cited)


# --- aggregates ----------------------------------------------------------------------------------


def rate(flags: Iterable[bool]) -> float | None:
    """Share of True; None for no items."""
    items = list(flags)
    return sum(items) / len(items) if items else None


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None if there are none."""
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if got else None


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0..100), linear interpolation between closest ranks (numpy's default)."""
    got = sorted(v for v in values if v is not None)
    if not got:
        return None
    pos = (len(got) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return got[lo] + (got[hi] - got[lo]) * (pos - lo)
