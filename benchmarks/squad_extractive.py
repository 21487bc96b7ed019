"""How good is the offline extractive answerer? SQuAD 2.0, article "Normans" (39 paragraphs,
96 answerable and 112 unanswerable questions written to look answerable).

    python -m benchmarks.squad_extractive            # evaluate the module's constants
    python -m benchmarks.squad_extractive --fit      # refit them, print held-out numbers

Prints hit@5 of retrieval, token F1 (SQuAD normalisation) and "gold answer contained" on
answerable questions, declined-when-unanswerable / answered-when-answerable, and the AUC of
the answerer's confidence. ``--fit`` grid-searches the sentence-choice weights and fits the
decline model (logistic regression) with 5-fold cross-validation split by paragraph, so a
paragraph's questions are never in both the training and the held-out fold; it prints the
held-out rates and the constants to paste into ``assistant/extractive.py``.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import kb  # noqa: F401  (telemetry off)
from assistant import extractive as ex
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
                answers = [a["text"] for a in (qa["answers"] if answerable else qa.get("plausible_answers", []))]
                questions.append(Question(qa["id"], qa["question"], idx, answerable, answers))
    return paragraphs, questions


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
                    n=rank + 1, id=f"p{pi}-{ci}", text=text, source=f"paragraph_{pi:02d}.txt",
                    score=float(sims[i]), dense_score=float(sims[i]),
                )
            )
        return out


class AssistantRetriever:
    """The real pipeline: paragraphs ingested as .txt files, passages from Assistant.ask()."""

    name = "ingest + Assistant (hybrid retrieval)"

    def __init__(self, paragraphs: list[str], emb: CachedEmbeddings, k: int = 5) -> None:
        from assistant.core import Assistant
        from ingest.pipeline import ingest
        from kb.settings import load_settings

        self.tmp = tempfile.TemporaryDirectory(prefix="squad-extractive-")
        root = Path(self.tmp.name)
        corpus = root / "corpus"
        corpus.mkdir()
        paths = []
        for pi, text in enumerate(paragraphs):
            path = corpus / f"paragraph_{pi:02d}.txt"
            path.write_text(text + "\n", encoding="utf-8")
            paths.append(path)
        settings = load_settings(_env_file=None, data_dir=root / "data", corpus_dir=corpus, top_k=k,
                                 answer_mode="extractive")
        ingest(paths, settings)
        self.assistant = Assistant.from_settings(settings)

    def passages(self, question: str) -> list[Passage]:
        return list(self.assistant.ask(question).passages)


def paragraph_of(passage: Passage) -> int | None:
    m = re.search(r"paragraph_(\d+)", passage.source)
    return int(m.group(1)) if m else None


def make_retriever(paragraphs: list[str], emb: CachedEmbeddings, simple: bool):
    if not simple:
        try:
            return AssistantRetriever(paragraphs, emb)
        except ImportError as exc:
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
        cands, sentences, terms, _ = ex.score_sentences(q.text, passages, emb)
        hit = any(paragraph_of(p) == q.paragraph for p in passages)
        items.append(Item(q, passages, cands, sentences, terms, hit))
    return items


def best_candidate(item: Item, w_cos: float, w_lex: float, w_rank: float) -> ex.Candidate | None:
    if not item.cands:
        return None
    return max(item.cands, key=lambda c: w_cos * c.cos + w_lex * c.cov + w_rank / (1 + c.passage_index))


def fit_selection(items: list[Item]) -> tuple[float, float, float, float]:
    """Weights that most often put a gold answer in the chosen sentence (answerable questions)."""
    answerable = [it for it in items if it.q.answerable and it.cands]
    best = (-1.0, 1.0, 0.0, 0.0)
    for w_lex in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0):
        for w_rank in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5):
            ok = 0
            for it in answerable:
                c = best_candidate(it, 1.0, w_lex, w_rank)
                ok += any(contains(c.text, a) for a in it.q.answers)
            rate = ok / len(answerable)
            if rate > best[0] + 1e-9:
                best = (rate, 1.0, w_lex, w_rank)
    return best


def feature_matrix(items: list[Item]) -> np.ndarray:
    rows = []
    for it in items:
        c = best_candidate(it, ex.W_COS, ex.W_LEX, ex.W_RANK)
        f = ex.evidence_features(it.q.text, it.passages, c, it.sentences, it.terms)
        rows.append([f[name] for name in ex.DECLINE_FEATURES])
    return np.array(rows, dtype=np.float64)


# --- logistic regression (Newton steps, L2, class-balanced) ---------------------------------------


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[float, np.ndarray]:
    """Raw-scale (bias, weights) of a class-balanced, L2-penalised logistic regression."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    sw = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum())))
    w = np.zeros(z.shape[1])
    pen = np.full(z.shape[1], l2)
    pen[0] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-(z @ w)))
        grad = z.T @ (sw * (p - y)) + pen * w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = w[1:] / sd
    bias = w[0] - float((w[1:] * mu / sd).sum())
    return bias, weights


def predict(bias: float, weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(bias + x @ weights)))


def balanced_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """The threshold that maximises the smaller of answered-rate and declined-rate."""
    best_t, best_v = 0.5, -1.0
    for t in np.unique(np.round(scores, 4)):
        answered = (scores[y == 1] >= t).mean()
        declined = (scores[y == 0] < t).mean()
        v = min(answered, declined) + 0.01 * (answered + declined)
        if v > best_v:
            best_t, best_v = float(t), v
    return best_t


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
        bias, weights = fit_logistic(x[train], y[train], l2)
        t = balanced_threshold(predict(bias, weights, x[train]), y[train])
        scores[test] = predict(bias, weights, x[test])
        decided[test] = scores[test] >= t
    return scores, decided, y


# --- evaluation of the module as it is ------------------------------------------------------------


def evaluate(items: list[Item], emb: CachedEmbeddings, retriever_name: str) -> dict[str, float]:
    f1s, f1_answered, contained, answered_flags, declined_flags, confs, labels = [], [], [], [], [], [], []
    lengths = []
    t0 = time.perf_counter()
    for it in items:
        r = ex.answer_from_passages(it.q.text, it.passages, emb)
        confs.append(r.confidence)
        labels.append(it.q.answerable)
        if it.q.answerable:
            answered_flags.append(not r.declined)
            text = "" if r.declined else strip_markers(r.text)
            f1 = max(f1_score(text, a) for a in it.q.answers) if text else 0.0
            f1s.append(f1)
            contained.append(bool(text) and any(contains(text, a) for a in it.q.answers))
            if text:
                f1_answered.append(f1)
                lengths.append(len(text.split()))
        else:
            declined_flags.append(r.declined)
    per_q = (time.perf_counter() - t0) / max(1, len(items))
    answerable = [it for it in items if it.q.answerable]
    out = {
        "retriever": retriever_name,
        "questions": len(items),
        "hit@5 (answerable)": float(np.mean([it.hit for it in answerable])),
        "answered when answerable": float(np.mean(answered_flags)),
        "declined when unanswerable": float(np.mean(declined_flags)),
        "token F1 (answerable, declined=0)": float(np.mean(f1s)),
        "token F1 (answered ones)": float(np.mean(f1_answered)) if f1_answered else 0.0,
        "gold contained (answerable, declined=miss)": float(np.mean(contained)),
        "gold contained (answered ones)": float(np.mean([c for c, a in zip(contained, answered_flags) if a]))
        if any(answered_flags) else 0.0,
        "answer words (mean)": float(np.mean(lengths)) if lengths else 0.0,
        "AUC of confidence": auc(confs, labels),
        "answer time per question (s, warm cache)": per_q,
    }
    return out


def baseline_auc(items: list[Item]) -> float:
    return auc([max((p.dense_score or 0.0) for p in it.passages) for it in items], [it.q.answerable for it in items])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="refit the constants with cross-validation")
    ap.add_argument("--simple", action="store_true", help="use simple dense top-5 retrieval")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)

    paragraphs, questions = load_squad()
    key = hashlib.sha1(SQUAD.read_bytes()).hexdigest()[:10]
    emb = CachedEmbeddings(MiniLMEmbeddings(), CACHE / f"minilm-{key}.npz")
    t0 = time.perf_counter()
    retriever = make_retriever(paragraphs, emb, args.simple)
    items = collect(questions, retriever, emb)
    emb.save()
    print(f"retrieval: {retriever.name}; {len(items)} questions in {time.perf_counter() - t0:.1f}s")
    print(f"baseline AUC of top retrieval cosine (answerable vs not): {baseline_auc(items):.3f}")

    if args.fit:
        rate, w_cos, w_lex, w_rank = fit_selection(items)
        ex.W_COS, ex.W_LEX, ex.W_RANK = w_cos, w_lex, w_rank
        print(f"sentence choice: W_COS={w_cos} W_LEX={w_lex} W_RANK={w_rank} -> gold in chosen sentence {rate:.3f}")
        x = feature_matrix(items)
        y = np.array([it.q.answerable for it in items], dtype=np.float64)
        for name, col in zip(ex.DECLINE_FEATURES, x.T):
            print(f"  feature {name:13s} AUC alone {auc(col.tolist(), y.astype(bool).tolist()):.3f}")
        cv = []
        for seed in range(5):
            scores, decided, _ = cross_validate(items, x, seed=seed, l2=args.l2)
            cv.append((auc(scores.tolist(), y.astype(bool).tolist()), decided[y == 1].mean(), (~decided[y == 0]).mean()))
        cv_arr = np.array(cv)
        print("held-out (5-fold by paragraph, 5 shuffles): AUC {:.3f}  answered-when-answerable {:.3f}  "
              "declined-when-unanswerable {:.3f}".format(*cv_arr.mean(axis=0)))
        bias, weights = fit_logistic(x, y, args.l2)
        threshold = balanced_threshold(predict(bias, weights, x), y)
        print("\n# paste into assistant/extractive.py")
        print(f"W_COS = {w_cos}\nW_LEX = {w_lex}\nW_RANK = {w_rank}")
        print(f"BIAS = {bias:.4f}")
        print("WEIGHTS: dict[str, float] = {")
        for name, w in zip(ex.DECLINE_FEATURES, weights):
            print(f'    "{name}": {w:.4f},')
        print("}")
        print(f"THRESHOLD = {threshold:.4f}\n")
        ex.BIAS, ex.WEIGHTS, ex.THRESHOLD = bias, dict(zip(ex.DECLINE_FEATURES, weights.tolist())), threshold
        print("in-sample with these constants (optimistic; the held-out line above is the honest one):")

    numbers = evaluate(items, emb, retriever.name)
    emb.save()
    for k, v in numbers.items():
        print(f"  {k:45s} {v:.3f}" if isinstance(v, float) else f"  {k:45s} {v}")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
