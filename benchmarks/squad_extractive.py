"""How good is the offline extractive answerer? SQuAD 2.0, article "Normans" (39 paragraphs,
96 answerable and 112 unanswerable questions written to look answerable).

    python -m benchmarks.squad_extractive            # evaluate the module's constants
    python -m benchmarks.squad_extractive --fit      # refit on SQuAD alone, print held-out numbers

Prints hit@5 of retrieval, token F1 (SQuAD normalisation) and "gold answer contained" on
answerable questions, declined-when-unanswerable / answered-when-answerable, and the AUC of
the answerer's confidence. ``--fit`` fits the decline model (logistic regression) with 5-fold
cross-validation split by paragraph, so a paragraph's questions are never in both the training
and the held-out fold: a view *within* one article. The product's constants come from
``benchmarks.decline_transfer`` (the decline model) and ``benchmarks.sentence_choice`` (the
sentence-choice weights), which fit across corpora and report on corpora not fitted on.

Retrieval: when ``ingest.pipeline.ingest`` and ``assistant.core.Assistant`` exist, the paragraphs
are ingested as .txt files into a temp data dir and passages come from the real retriever;
otherwise (or with ``--simple``) the paragraphs are embedded and the top-5 by cosine are used.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import re
import string
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import kb  # noqa: F401  (telemetry off)
from assistant import extractive as ex
from assistant.answer_types import short_answer
from assistant.models import Passage
from kb.embeddings import MiniLMEmbeddings

REPO = Path(__file__).resolve().parent.parent
SQUAD = REPO.parent / "shared" / "eval-data" / "squad_normans" / "squad2_dev_normans.json"
CACHE = Path(tempfile.gettempdir()) / "assistant-bench-cache"


# --- data -------------------------------------------------------------------------------------


@dataclass
class Question:
    id: str
    text: str
    paragraph: int
    answerable: bool
    answers: list[str]
    offtopic: bool = False  # a question from another data set: never answerable here


def load_squad(path: Path = SQUAD) -> tuple[list[str], list[Question]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    paragraphs: list[str] = []
    questions: list[Question] = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            idx = len(paragraphs)
            paragraphs.append(para["context"])
            for qa in para["qas"]:
                answerable = not qa.get("is_impossible", False)
                answers = [
                    a["text"] for a in (qa["answers"] if answerable else qa.get("plausible_answers", []))
                ]
                questions.append(Question(qa["id"], qa["question"], idx, answerable, answers))
    return paragraphs, questions


def load_offtopic(limit: int = 30) -> list[Question]:
    """Questions about other documents (Paul Graham essays, Solana): a user asking off-topic.

    SQuAD's unanswerable questions are all on-topic, so a model fitted on them alone never sees
    the commonest real case; these keep the fitted weights sensible for it.
    """
    eval_data = SQUAD.parent.parent
    out: list[Question] = []
    pg = json.loads((eval_data / "paul_graham_essays" / "qa_pairs.json").read_text(encoding="utf-8"))
    sol = json.loads(
        (eval_data / "llamaindex_blockchain_solana" / "rag_dataset.json").read_text(encoding="utf-8")
    )
    texts = [q["question"] for q in pg[:limit]] + [e["query"] for e in sol["examples"][:limit]]
    for i, text in enumerate(texts):
        out.append(Question(f"offtopic-{i}", text, -1 - i, False, [], offtopic=True))
    return out


# --- SQuAD metrics ------------------------------------------------------------------------------


def normalize_answer(s: str) -> str:
    """SQuAD's official normalisation: lower, no punctuation, no articles, single spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(pred) & collections.Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    p, r = same / len(pred), same / len(ref)
    return 2 * p * r / (p + r)


def contains(prediction: str, gold: str) -> bool:
    return f" {normalize_answer(gold)} " in f" {normalize_answer(prediction)} "


def strip_markers(text: str) -> str:
    return re.sub(r"\s*\[\d+\]", "", text)


def auc(scores: list[float], labels: list[bool]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    p, n = np.array(pos)[:, None], np.array(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (len(pos) * len(neg)))


# --- embeddings with a disk cache (the real model; the cache only saves re-embedding) ------------


class CachedEmbeddings:
    def __init__(self, model: MiniLMEmbeddings, path: Path) -> None:
        self.model, self.path = model, path
        self.cache: dict[str, np.ndarray] = {}
        self.tokens: dict[str, tuple] = {}  # word-piece vectors, in memory only
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                self.cache = dict(zip(z["keys"].tolist(), z["vecs"]))
        self.dirty = False

    def embed_array(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            for t, v in zip(todo, self.model.embed_array(todo)):
                self.cache[t] = v
            self.dirty = True
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.cache[t] for t in texts])

    def embed_tokens(self, texts: list[str]):
        todo = [t for t in dict.fromkeys(texts) if t not in self.tokens]
        for t, state in zip(todo, self.model.embed_tokens(todo)):
            self.tokens[t] = state
            self.cache.setdefault(t, state[2])
        return [self.tokens[t] for t in texts]

    def save(self) -> None:
        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            keys = list(self.cache)
            np.savez(self.path, keys=np.array(keys), vecs=np.stack([self.cache[k] for k in keys]))


# --- retrieval ----------------------------------------------------------------------------------


def chunk_paragraph(text: str, max_tokens: int = 200) -> list[str]:
    """Sentences packed into chunks of at most ``max_tokens`` embedding tokens."""
    from kb.embeddings import count_tokens

    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for sentence in ex.split_sentences(text):
        n = count_tokens(sentence)
        if current and size + n > max_tokens:
            chunks.append(" ".join(current))
            current, size = [], 0
        current.append(sentence)
        size += n
    if current:
        chunks.append(" ".join(current))
    return chunks


class SimpleRetriever:
    """Top-k paragraph chunks by MiniLM cosine: the stand-in until the real retriever exists."""

    name = "simple dense top-5"

    def __init__(self, paragraphs: list[str], emb: CachedEmbeddings, k: int = 5) -> None:
        self.emb, self.k = emb, k
        self.chunks: list[tuple[int, int, str]] = []
        for pi, text in enumerate(paragraphs):
            for ci, chunk in enumerate(chunk_paragraph(text)):
                self.chunks.append((pi, ci, chunk))
        self.matrix = emb.embed_array([c[2] for c in self.chunks])

    def passages(self, question: str) -> list[Passage]:
        q = self.emb.embed_array([question])[0]
        sims = self.matrix @ q
        order = np.argsort(-sims)[: self.k]
        out = []
        for rank, i in enumerate(order):
            pi, ci, text = self.chunks[i]
            out.append(
                Passage(
                    n=rank + 1,
                    id=f"p{pi}-{ci}",
                    text=text,
                    source=f"paragraph_{pi:02d}.txt",
                    score=float(sims[i]),
                    dense_score=float(sims[i]),
                )
            )
        return out


class AssistantRetriever:
    """The real pipeline: paragraphs ingested as .txt files into a temp data dir, passages from
    the Assistant's hybrid retriever and answers from ``Assistant.ask``."""

    name = "ingest + Assistant (hybrid dense + keyword retrieval)"

    def __init__(self, paragraphs: list[str], emb: CachedEmbeddings, k: int = 5) -> None:
        from assistant.core import Assistant
        from ingest.pipeline import ingest
        from kb.settings import load_settings

        self.tmp = tempfile.TemporaryDirectory(prefix="squad-extractive-")
        root = Path(self.tmp.name)
        corpus = root / "corpus"
        corpus.mkdir()
        for pi, text in enumerate(paragraphs):
            (corpus / f"paragraph_{pi:02d}.txt").write_text(text + "\n", encoding="utf-8")
        settings = load_settings(
            _env_file=None, data_dir=root / "data", corpus_dir=corpus, top_k=k, answer_mode="extractive"
        )
        t0 = time.perf_counter()
        report = ingest([corpus], settings)
        print(
            f"ingested {len(report.files)} files, {report.chunks_embedded} chunks in {time.perf_counter() - t0:.1f}s"
        )
        self.assistant = Assistant.from_settings(settings)

    def passages(self, question: str) -> list[Passage]:
        return self.assistant.retriever.retrieve(question)

    def ask(self, question: str):
        return self.assistant.ask(question)


def paragraph_of(passage: Passage) -> int | None:
    m = re.search(r"paragraph_(\d+)", passage.source)
    return int(m.group(1)) if m else None


def make_retriever(paragraphs: list[str], emb: CachedEmbeddings, simple: bool):
    if not simple:
        try:
            return AssistantRetriever(paragraphs, emb)
        except ImportError as exc:  # the pipeline is not written yet
            print(f"(real pipeline not available: {exc}; using simple dense retrieval)", file=sys.stderr)
    return SimpleRetriever(paragraphs, emb)


# --- per-question evidence ------------------------------------------------------------------------


@dataclass
class Item:
    q: Question
    passages: list[Passage]
    cands: list[ex.Candidate]
    sentences: list[list[str]]
    terms: list[ex.Term]
    hit: bool


def collect(questions: list[Question], retriever, emb: CachedEmbeddings) -> list[Item]:
    items = []
    for q in questions:
        passages = retriever.passages(q.text)
        cands, sentences, terms = ex.score_sentences(q.text, passages, emb)
        hit = any(paragraph_of(p) == q.paragraph for p in passages)
        items.append(Item(q, passages, cands, sentences, terms, hit))
    return items


def best_candidate(item: Item) -> ex.Candidate | None:
    """The sentence the module would choose with its current weights."""
    if not item.cands:
        return None
    return max(ex.answer_candidates(item.cands, item.sentences, item.q.text), key=ex.sentence_score)


def feature_matrix(items: list[Item]) -> np.ndarray:
    rows = []
    for it in items:
        c = best_candidate(it)
        missing = ex.missing_terms(it.terms, it.passages[c.passage_index])
        f = ex.evidence_features(it.passages, c, it.terms, missing)
        rows.append([f[name] for name in ex.DECLINE_FEATURES])
    return np.array(rows, dtype=np.float64)


# --- logistic regression (Newton steps, L2, class-balanced, signs fixed) -------------------------

# The sign each weight must have for the model to make sense outside SQuAD: more evidence never
# lowers confidence. Features whose fitted weight comes out the other way are dropped.
SIGNS = {"retrieval": 1, "cov_passage": 1}


def _newton(z: np.ndarray, y: np.ndarray, sw: np.ndarray, l2: float) -> np.ndarray:
    w = np.zeros(z.shape[1])
    pen = np.full(z.shape[1], l2)
    pen[0] = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(z @ w)))
        grad = z.T @ (sw * (p - y)) + pen * w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float = 1.0,
    sample_weight: np.ndarray | None = None,
    features: Sequence[str] = ex.DECLINE_FEATURES,
) -> tuple[float, np.ndarray]:
    """Raw-scale (bias, weights) of a class-balanced, L2-penalised logistic regression whose
    weights keep the signs in SIGNS (a feature that would get the wrong sign is left out)."""
    sw0 = np.ones(len(y)) if sample_weight is None else sample_weight
    pos, neg = (sw0 * y).sum(), (sw0 * (1 - y)).sum()
    sw = sw0 * np.where(y == 1, len(y) / (2 * pos), len(y) / (2 * neg))
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    signs = np.array([SIGNS[n] for n in features])
    active = np.ones(x.shape[1], dtype=bool)
    while True:
        z = np.hstack([np.ones((len(x), 1)), ((x - mu) / sd)[:, active]])
        w = _newton(z, y, sw, l2)
        full = np.zeros(x.shape[1])
        full[active] = w[1:]
        wrong = active & (full * signs < 0)
        if not wrong.any():
            break
        active[np.argmax(np.where(wrong, -full * signs, -np.inf))] = False
    weights = full / sd
    bias = w[0] - float((full * mu / sd).sum())
    return bias, weights


def predict(bias: float, weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(bias + x @ weights)))


# Where the decline threshold sits on SQuAD's ROC: the highest confidence that still answers this
# share of answerable questions. SQuAD 2.0's unanswerables are adversarial paraphrases; in use,
# most questions are answerable and off-topic ones never get past the retriever's relevance
# floor, so a wrong refusal costs more than answering a trick question with a cited sentence.
ANSWER_RATE = 0.8


def answer_rate_threshold(scores: np.ndarray, y: np.ndarray, target: float = ANSWER_RATE) -> float:
    """The highest threshold at which at least ``target`` of answerable questions are answered."""
    return float(np.quantile(scores[y == 1], 1 - target, method="lower"))


def fit_all(items: list[Item], x: np.ndarray, l2: float) -> tuple[float, np.ndarray, float]:
    """Weights from all items (off-topic ones at half weight); threshold from SQuAD ones only."""
    y = np.array([it.q.answerable for it in items], dtype=np.float64)
    sw = np.array([0.5 if it.q.offtopic else 1.0 for it in items])
    bias, weights = fit_logistic(x, y, l2, sw)
    squad = np.array([not it.q.offtopic for it in items])
    threshold = answer_rate_threshold(predict(bias, weights, x[squad]), y[squad])
    return bias, weights, threshold


def cross_validate(items: list[Item], x: np.ndarray, folds: int = 5, seed: int = 0, l2: float = 1.0):
    """Held-out confidences: each paragraph's questions are scored by a model fitted without them."""
    y = np.array([it.q.answerable for it in items], dtype=np.float64)
    paras = sorted({it.q.paragraph for it in items})
    rng = np.random.default_rng(seed)
    rng.shuffle(paras)
    fold_of = {p: i % folds for i, p in enumerate(paras)}
    groups = np.array([fold_of[it.q.paragraph] for it in items])
    scores = np.zeros(len(items))
    decided = np.zeros(len(items), dtype=bool)
    for f in range(folds):
        train, test = groups != f, groups == f
        bias, weights, t = fit_all([it for it, tr in zip(items, train) if tr], x[train], l2)
        scores[test] = predict(bias, weights, x[test])
        decided[test] = scores[test] >= t
    return scores, decided, y


# --- evaluation of the module as it is ------------------------------------------------------------


def evaluate(items: list[Item], emb: CachedEmbeddings, retriever) -> dict[str, float | str]:
    """Run the module as it is on every item; SQuAD numbers, plus the off-topic decline rate.

    With the real pipeline the answer text and ``declined`` come from ``Assistant.ask`` (end to
    end); the confidence for the AUC from ``answer_from_passages`` on the same passages.
    """
    f1s, f1_answered, contained, answered_flags, declined_flags, confs, labels = [], [], [], [], [], [], []
    lengths, offtopic_declined = [], []
    lead_f1s, shorts_given, shorts_right = [], [], []
    ask = getattr(retriever, "ask", None)
    t0 = time.perf_counter()
    for it in items:
        r = ex.answer_from_passages(it.q.text, it.passages, emb)
        text, declined = r.text, r.declined
        if ask is not None:
            answer = ask(it.q.text)
            text, declined = answer.text, answer.declined
        if it.q.offtopic:
            offtopic_declined.append(declined)
            continue
        confs.append(r.confidence)
        labels.append(it.q.answerable)
        if it.q.answerable:
            answered_flags.append(not declined)
            text = "" if declined else strip_markers(text)
            f1 = max(f1_score(text, a) for a in it.q.answers) if text else 0.0
            f1s.append(f1)
            contained.append(bool(text) and any(contains(text, a) for a in it.q.answers))
            lead = text
            if text:
                f1_answered.append(f1)
                lengths.append(len(text.split()))
                first = r.sentences[0][0] if r.sentences else ex.split_sentences(text)[0]
                short = short_answer(it.q.text, strip_markers(first))
                shorts_given.append(short is not None)
                if short is not None:
                    lead = short
                    shorts_right.append(any(contains(short, a) for a in it.q.answers))
            lead_f1s.append(max(f1_score(lead, a) for a in it.q.answers) if lead else 0.0)
        else:
            declined_flags.append(r.declined)
    per_q = (time.perf_counter() - t0) / max(1, len(items))
    answerable = [it for it in items if it.q.answerable]
    answered_contained = [c for c, a in zip(contained, answered_flags) if a]
    return {
        "retriever": retriever.name,
        "SQuAD questions": len(labels),
        "hit@5 (answerable)": float(np.mean([it.hit for it in answerable])),
        "answered when answerable": float(np.mean(answered_flags)),
        "declined when unanswerable": float(np.mean(declined_flags)),
        "declined when off-topic": float(np.mean(offtopic_declined)) if offtopic_declined else float("nan"),
        "token F1 (answerable, declined=0)": float(np.mean(f1s)),
        "token F1 (answered ones)": float(np.mean(f1_answered)) if f1_answered else 0.0,
        "short answers given (answered answerable)": float(np.mean(shorts_given)) if shorts_given else 0.0,
        "short answer correct (contains gold, when given)": float(np.mean(shorts_right))
        if shorts_right
        else float("nan"),
        "token F1 of the lead (answerable, declined=0)": float(np.mean(lead_f1s)),
        "gold contained (answerable, declined=miss)": float(np.mean(contained)),
        "gold contained (answered ones)": float(np.mean(answered_contained)) if answered_contained else 0.0,
        "answer words (mean)": float(np.mean(lengths)) if lengths else 0.0,
        "AUC of confidence (SQuAD)": auc(confs, labels),
        "answer time per question (s, cached embeddings)": per_q,
    }


def baseline_auc(items: list[Item]) -> float:
    squad = [it for it in items if not it.q.offtopic]
    return auc(
        [max((p.dense_score or 0.0 for p in it.passages), default=0.0) for it in squad],
        [it.q.answerable for it in squad],
    )


def fit(items: list[Item], l2: float) -> None:
    """Fit the decline model on SQuAD alone; print held-out numbers and constants (a view within one
    article: the product's come from ``benchmarks.decline_transfer``).

    Questions with no passage at all (below the retriever's relevance floor) are declined by the
    core before the answerer runs: they are left out of the fit and counted as declined.
    """
    empty = [it for it in items if not it.cands]
    items = [it for it in items if it.cands]
    print(
        f"{len(empty)} questions got no passage ({sum(it.q.answerable for it in empty)} of them answerable)"
    )
    answerable = [it for it in items if it.q.answerable]
    rate = sum(any(contains(best_candidate(it).text, a) for a in it.q.answers) for it in answerable) / len(
        answerable
    )
    print(
        f"sentence choice (the module's weights, from benchmarks.sentence_choice): gold in chosen sentence {rate:.3f}"
    )
    x = feature_matrix(items)
    y = np.array([it.q.answerable for it in items], dtype=np.float64)
    squad = np.array([not it.q.offtopic for it in items])
    for name, col in zip(ex.DECLINE_FEATURES, x.T):
        print(
            f"  feature {name:15s} AUC alone (SQuAD) {auc(col[squad].tolist(), (y[squad] == 1).tolist()):.3f}"
        )
    cv = []
    for seed in range(5):
        scores, decided, _ = cross_validate(items, x, seed=seed, l2=l2)
        ys, ds, off = y[squad], decided[squad], decided[~squad]
        cv.append(
            (
                auc(scores[squad].tolist(), (ys == 1).tolist()),
                ds[ys == 1].mean(),
                (~ds[ys == 0]).mean(),
                (~off).mean() if len(off) else float("nan"),
            )
        )
        if seed == 0:
            held_scores, held_y = scores[squad], y[squad]
    cv_arr = np.array(cv)
    print("held-out operating points (seed 0): answered-when-answerable -> declined-when-unanswerable")
    for target in (0.6, 0.7, 0.8, 0.9):
        t = np.quantile(held_scores[held_y == 1], 1 - target)
        print(f"  {target:.1f} -> {(held_scores[held_y == 0] < t).mean():.3f}")
    print(
        "HELD-OUT (5-fold by paragraph, mean of 5 shuffles): AUC {:.3f}  answered-when-answerable {:.3f}  "
        "declined-when-unanswerable {:.3f}  declined-off-topic {:.3f}".format(*cv_arr.mean(axis=0))
    )
    bias, weights, threshold = fit_all(items, x, l2)
    print("\n# fitted on SQuAD alone (the product's constants: benchmarks.decline_transfer --fit)")
    print(f"BIAS = {bias:.4f}")
    print("WEIGHTS: dict[str, float] = {")
    for name, w in zip(ex.DECLINE_FEATURES, weights):
        print(f'    "{name}": {w:.4f},')
    print("}")
    print(f"THRESHOLD = {threshold:.4f}  # SQuAD alone: see benchmarks.decline_transfer for the product's\n")
    ex.BIAS, ex.WEIGHTS = bias, dict(zip(ex.DECLINE_FEATURES, weights.tolist()))
    ex.THRESHOLD = threshold
    print("in-sample with these constants (optimistic; the HELD-OUT line above is the honest one):")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--fit", action="store_true", help="fit the decline model on SQuAD alone, with cross-validation"
    )
    ap.add_argument("--simple", action="store_true", help="use simple dense top-5 retrieval")
    ap.add_argument("--no-offtopic", action="store_true", help="leave out the off-topic questions")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)

    paragraphs, questions = load_squad()
    if not args.no_offtopic:
        questions += load_offtopic()
    key = hashlib.sha1(SQUAD.read_bytes()).hexdigest()[:10]
    emb = CachedEmbeddings(MiniLMEmbeddings(), CACHE / f"minilm-{key}.npz")
    t0 = time.perf_counter()
    retriever = make_retriever(paragraphs, emb, args.simple)
    items = collect(questions, retriever, emb)
    emb.save()
    print(f"retrieval: {retriever.name}; {len(items)} questions in {time.perf_counter() - t0:.1f}s")
    print(f"baseline AUC of top retrieval cosine (SQuAD answerable vs not): {baseline_auc(items):.3f}")
    if args.fit:
        fit(items, args.l2)
    numbers = evaluate(items, emb, retriever)
    emb.save()
    for k, v in numbers.items():
        print(f"  {k:48s} {v:.3f}" if isinstance(v, float) else f"  {k:48s} {v}")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
