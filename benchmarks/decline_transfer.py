"""Does the offline answerer's decline model hold on documents it was not fitted on?

    python -m benchmarks.decline_transfer                 # leave-one-corpus-out, the module's features
    python -m benchmarks.decline_transfer --ablate        # ... and each feature left out in turn
    python -m benchmarks.decline_transfer --fit           # constants fitted on every corpus, to paste
    python -m benchmarks.decline_transfer --json reports/decline-transfer.json

Corpora: SQuAD 2.0 "Normans" (answerable and adversarial unanswerable questions), the LlamaIndex
Solana paper and the Tonic Paul Graham Q&A pairs (answerable only), and the shipped INNAXE article
with ``evals/innaxe.yaml`` and ``evals/innaxe-plain.yaml`` (both kinds; follow-ups asked as their
hand-written standalone form). Every corpus also gets questions of the other corpora, asked
against its index: off-topic, never answerable. Each corpus is ingested into a temporary data dir
and questions go through the real hybrid retriever, as in use.

For every held-out corpus the decline model (``assistant.extractive.DECLINE_FEATURES``, logistic,
signs constrained: more evidence never lowers confidence) is fitted on the *other* corpora only,
each corpus weighing the same, and reported on the held-out one beside the plain baseline, the
top passage's cosine:

* AUC of the confidence (answerable vs not), and of the baseline;
* declined-when-unanswerable where the held-out corpus's answered-when-answerable is 0.80;
* at the threshold the training corpora pick (the highest that answers >= 0.90 of the answerable
  questions of each of them): answered-when-answerable, declined on-topic unanswerable, declined
  off-topic. Questions the retriever finds nothing for are declined before the answerer (confidence 0);
  those whose passage holds every name and number of the question and most of its key terms,
  when no check fails, are never declined (``extractive.names_held``: shown as unsure).

``--ablate`` refits without each feature in turn: a feature stays only if held-out AUC, averaged
over the corpora, drops without it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import kb  # noqa: F401  (telemetry off)
from assistant import extractive as ex
from benchmarks.corpora import DATA, REPO, ingested
from benchmarks.squad_extractive import CachedEmbeddings, auc, fit_logistic, predict
from evaluation.importers import load_question_set
from kb.embeddings import MiniLMEmbeddings

SETS: dict[str, list[Path]] = {
    "squad": [DATA / "squad_normans" / "squad2_dev_normans.json"],
    "solana": [DATA / "llamaindex_blockchain_solana" / "rag_dataset.json"],
    "pg": [DATA / "paul_graham_essays" / "qa_pairs.json"],
    "innaxe": [REPO / "evals" / "innaxe.yaml", REPO / "evals" / "innaxe-plain.yaml"],
}
OFFTOPIC_PER_SET = 20  # questions each other corpus lends as off-topic
OPERATING_POINT = 0.80  # answered-when-answerable at which declines are compared
ANSWER_FLOOR = 0.90  # the default threshold answers at least this share on every training corpus
SURE_FLOOR = 0.80  # above the "sure" threshold: at least this share (below it, answers are marked unsure)
CACHE = Path(tempfile.gettempdir()) / "assistant-bench-cache" / "decline-transfer.npz"
ITEMS = CACHE.with_suffix(".items.json")


@dataclass
class Item:
    corpus: str
    question: str
    answerable: bool
    offtopic: bool
    features: dict[str, float] | None  # None: nothing retrieved, declined before the answerer
    top_cosine: float
    doubt: bool = False  # a check that caps the answer at unsure failed (extractive.failed_check)
    named: bool = False  # extractive.names_held: the passage holds the question's names, most terms


def questions_of(name: str) -> tuple[list[tuple[str, bool]], Path | None, object]:
    """(question, answerable) pairs of a corpus, its corpus folder (native sets) and the loaded set."""
    pairs: list[tuple[str, bool]] = []
    loaded_sets = [load_question_set(p) for p in SETS[name] if p.exists()]
    for loaded in loaded_sets:
        for q in loaded.questions.questions:
            text = q.standalone or (q.question if not q.history else None)
            if text:
                pairs.append((text, q.answerable))
    first = loaded_sets[0]
    return pairs, first.questions.corpus_dir, first


def collect(name: str, offtopic: list[str], emb: CachedEmbeddings) -> list[Item]:
    pairs, corpus_dir, loaded = questions_of(name)
    items: list[Item] = []
    with ingested(loaded, corpus_dir) as (retriever, _):
        asked = [(q, a, False) for q, a in pairs] + [(q, False, True) for q in offtopic]
        for question, answerable, off in asked:
            passages = retriever.retrieve(question)
            features, doubt, named = None, False, False
            if passages:
                cands, sentences, terms = ex.score_sentences(question, passages, emb)
                if cands:
                    best = max(ex.answer_candidates(cands, sentences, question), key=lambda c: c.score)
                    missing = ex.missing_terms(terms, passages[best.passage_index])
                    features = ex.evidence_features(passages, best, terms, missing)
                    doubt = bool(ex.failed_check(question, best.text, missing))
                    named = ex.names_held(terms, missing)
            top = max((p.dense_score or 0.0 for p in passages), default=0.0)
            items.append(Item(name, question, answerable, off, features, top, doubt, named))
    print(f"  {name}: {len(pairs)} questions + {len(offtopic)} off-topic", flush=True)
    return items


def matrix(items: list[Item], features: list[str]) -> np.ndarray:
    return np.array([[(it.features or {}).get(f, 0.0) for f in features] for it in items], dtype=float)


def fit(items: list[Item], features: list[str]) -> tuple[float, np.ndarray]:
    """Logistic fit on the items that reached the answerer, each corpus weighing the same."""
    usable = [it for it in items if it.features is not None]
    per_corpus = {c: sum(it.corpus == c for it in usable) for c in {it.corpus for it in usable}}
    sw = np.array([1.0 / per_corpus[it.corpus] for it in usable])
    y = np.array([it.answerable for it in usable], dtype=float)
    return fit_logistic(matrix(usable, features), y, 1.0, sw * len(usable) / sw.sum(), features)


def confidences(items: list[Item], model: tuple[float, np.ndarray], features: list[str]) -> np.ndarray:
    bias, weights = model
    scores = predict(bias, weights, matrix(items, features))
    return np.where([it.features is None for it in items], 0.0, scores)


def floor_threshold(items: list[Item], scores: np.ndarray, floor: float = ANSWER_FLOOR) -> float:
    """The highest threshold that still answers ``floor`` of each corpus's answerable questions."""
    out = 1.0
    for corpus in {it.corpus for it in items}:
        mine = np.array([it.corpus == corpus and it.answerable for it in items])
        if mine.any():
            out = min(out, float(np.quantile(scores[mine], 1 - floor, method="lower")))
    return out


def declined_at(scores: np.ndarray, answerable: np.ndarray, rate: float) -> float:
    """Declined-when-unanswerable where ``rate`` of the answerable questions are answered."""
    t = np.quantile(scores[answerable], 1 - rate, method="lower")
    return float((scores[~answerable] < t).mean()) if (~answerable).any() else float("nan")


def held_out(items: list[Item], features: list[str]) -> dict[str, dict[str, float]]:
    """Leave-one-corpus-out numbers for every corpus."""
    out: dict[str, dict[str, float]] = {}
    for corpus in sorted({it.corpus for it in items}):
        train = [it for it in items if it.corpus != corpus]
        test = [it for it in items if it.corpus == corpus]
        model = fit(train, features)
        trained = confidences(train, model, features)
        threshold, sure_at = floor_threshold(train, trained), floor_threshold(train, trained, SURE_FLOOR)
        scores = confidences(test, model, features)
        doubt = np.array([it.doubt for it in test])
        sure = (scores >= sure_at) & ~doubt
        cosine = np.array([it.top_cosine for it in test])
        y = np.array([it.answerable for it in test])
        on = np.array([not it.answerable and not it.offtopic for it in test])
        off = np.array([it.offtopic for it in test])
        named = np.array([it.named for it in test])
        answered = (scores >= threshold) | named & ~doubt  # names held, no check failed: unsure
        out[corpus] = {
            "answerable": int(y.sum()),
            "unanswerable_on_topic": int(on.sum()),
            "off_topic": int(off.sum()),
            "auc": auc(scores.tolist(), y.tolist()),
            "auc_cosine": auc(cosine.tolist(), y.tolist()),
            "auc_on_topic": auc(scores[y | on].tolist(), y[y | on].tolist()),
            "auc_cosine_on_topic": auc(cosine[y | on].tolist(), y[y | on].tolist()),
            "declined_at_0.80": declined_at(scores, y, OPERATING_POINT),
            "declined_at_0.80_cosine": declined_at(cosine, y, OPERATING_POINT),
            "threshold": threshold,
            "answered_when_answerable": float(answered[y].mean()),
            "declined_on_topic": float((~answered[on]).mean()) if on.any() else float("nan"),
            "declined_off_topic": float((~answered[off]).mean()) if off.any() else float("nan"),
            "sure_when_answerable": float(sure[y].mean()),
            "not_sure_on_topic": float((~sure[on]).mean()) if on.any() else float("nan"),
            "checks_fired_answerable": float(doubt[y].mean()),
            "checks_fired_on_topic": float(doubt[on].mean()) if on.any() else float("nan"),
        }
    return out


def mean_auc(result: dict[str, dict[str, float]], key: str = "auc") -> float:
    return float(np.nanmean([r[key] for r in result.values()]))


def print_table(result: dict[str, dict[str, float]]) -> None:
    print(
        "| held-out corpus | answerable / on-topic unans. / off-topic | AUC (cosine) | AUC on-topic (cosine) "
        "| declined @0.80 answered (cosine) | threshold | answered | declined on-topic | declined off-topic "
        "| sure when answerable | declined or unsure on-topic | checks fired answerable / on-topic |"
    )
    print("| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for corpus, r in result.items():
        print(
            f"| {corpus} | {r['answerable']} / {r['unanswerable_on_topic']} / {r['off_topic']} "
            f"| {r['auc']:.3f} ({r['auc_cosine']:.3f}) | {r['auc_on_topic']:.3f} ({r['auc_cosine_on_topic']:.3f}) "
            f"| {r['declined_at_0.80']:.3f} ({r['declined_at_0.80_cosine']:.3f}) | {r['threshold']:.3f} "
            f"| {r['answered_when_answerable']:.3f} | {r['declined_on_topic']:.3f} | {r['declined_off_topic']:.3f} "
            f"| {r['sure_when_answerable']:.3f} | {r['not_sure_on_topic']:.3f} "
            f"| {r['checks_fired_answerable']:.2f} / {r['checks_fired_on_topic']:.2f} |"
        )


def score(result: dict[str, dict[str, float]]) -> tuple[float, float]:
    """What feature selection maximises: first the worst corpus's held-out AUC gain over the top
    cosine (a feature must not make any corpus worse than the baseline), then the mean held-out
    AUC with and without the off-topic questions."""
    gain = min(r["auc"] - r["auc_cosine"] for r in result.values())
    return round(gain, 3), (mean_auc(result) + mean_auc(result, "auc_on_topic")) / 2


def select(items: list[Item], features: list[str]) -> list[str]:
    """Backward elimination: drop the feature whose removal raises ``score`` most, while one does."""
    current = list(features)
    best = score(held_out(items, current))
    while len(current) > 1:
        trials = {f: score(held_out(items, [g for g in current if g != f])) for f in current}
        drop, value = max(trials.items(), key=lambda kv: kv[1])
        if value < best:
            break
        print(f"  drop {drop}: {best} -> {value}")
        current.remove(drop)
        best = value
    print(f"selected: {', '.join(current)}")
    return current


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    ap.add_argument("--ablate", action="store_true", help="refit without each feature in turn")
    ap.add_argument("--fit", action="store_true", help="print constants fitted on every corpus")
    ap.add_argument("--features", help="comma-separated subset of DECLINE_FEATURES to use")
    ap.add_argument("--select", action="store_true", help="drop features while held-out AUC rises")
    ap.add_argument(
        "--reuse", action="store_true", help="reuse the last run's features (after changing only the fit)"
    )
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    names = args.sets.split(",")
    features = args.features.split(",") if args.features else list(ex.DECLINE_FEATURES)
    if args.reuse and ITEMS.exists():
        items = [Item(**d) for d in json.loads(ITEMS.read_text(encoding="utf-8"))]
        items = [it for it in items if it.corpus in names]
    else:
        emb = CachedEmbeddings(MiniLMEmbeddings(), CACHE)
        pool = {n: [q for q, _ in questions_of(n)[0]] for n in names}
        started = time.perf_counter()
        items = []
        for name in names:
            lent = [q for other in names if other != name for q in pool[other][:OFFTOPIC_PER_SET]]
            items += collect(name, lent, emb)
            emb.save()
        ITEMS.write_text(json.dumps([asdict(it) for it in items]), encoding="utf-8")
        print(f"{len(items)} questions through retrieval in {time.perf_counter() - started:.0f} s\n")
    if args.select:
        features = select(items, features)

    result = held_out(items, features)
    print(f"features: {', '.join(features)}")
    print_table(result)
    print(f"mean held-out AUC {mean_auc(result):.3f} (cosine {mean_auc(result, 'auc_cosine'):.3f})")
    numbers: dict = {"features": features, "held_out": result}
    if args.ablate:
        print("\n| left out | mean held-out AUC | on-topic | change |")
        print("| --- | ---: | ---: | ---: |")
        base = mean_auc(result)
        numbers["ablation"] = {}
        for f in features:
            r = held_out(items, [g for g in features if g != f])
            numbers["ablation"][f] = r
            print(
                f"| {f} | {mean_auc(r):.3f} | {mean_auc(r, 'auc_on_topic'):.3f} | {mean_auc(r) - base:+.3f} |"
            )
    if args.fit:
        model = fit(items, features)
        scores = confidences(items, model, features)
        threshold = floor_threshold(items, scores, SURE_FLOOR)
        unsure = floor_threshold(items, scores)
        print("\n# fitted on every corpus; paste into assistant/extractive.py")
        print(f"BIAS = {model[0]:.4f}\nWEIGHTS: dict[str, float] = {{")
        for f, w in zip(features, model[1]):
            print(f'    "{f}": {w:.4f},')
        print(f"}}\nTHRESHOLD = {threshold:.4f}  # answers >= {SURE_FLOOR} of every corpus's answerable")
        print(
            f"UNSURE = {unsure:.4f}  # answers (marked unsure) >= {ANSWER_FLOOR} of every corpus's answerable"
        )
        weights = dict(zip(features, model[1].tolist()))
        numbers["fit"] = {"bias": model[0], "weights": weights, "threshold": threshold, "unsure": unsure}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(numbers, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
