"""Does the offline answerer quote the sentence that answers? Across corpora, as users ask.

    python -m benchmarks.sentence_choice                      # every set
    python -m benchmarks.sentence_choice --sets innaxe-plain  # some of them
    python -m benchmarks.sentence_choice --show               # ... and every miss
    python -m benchmarks.sentence_choice --fit                # the sentence-choice weights, across corpora

The decline model is measured by ``benchmarks.decline_transfer``; this measures the other half:
when the answerer answers, is the answer in what it quotes? Sets:

* ``squad`` — SQuAD 2.0 "Normans": the answer text holds one of the gold answers (SQuAD's
  normalisation);
* ``followups-normans`` — two-turn conversations over the same article, asked as a user asks
  them (the offline rewrite first), gold: the reference answer;
* ``innaxe``, ``innaxe-plain``, ``followups``, ``innaxe-open`` — the shipped corpus's sets in ``evals/``, gold: every
  ``answer_must_include`` group, as the evaluation report counts it.

Each set runs through the real ingest, the offline follow-up rewrite, the hybrid retriever and
``assistant.extractive.answer_from_passages`` at its default thresholds (a follow-up's rewrite with
the user's own words beside it, as ``Assistant`` passes them). Per set: on answerable
questions the share answered sure and right (``sure_right``), right whether sure or unsure
(``right``: the quoted sentence holds the answer), sure but wrong (``sure_wrong``); on unanswerable
ones the share answered sure (``false_sure``). Of the sure and right answers, how many open with a
short answer in bold (``led``) and the share of those that is the answer or part of it
(``lead_right``; ``--show`` lists each wrong one). Sentence embeddings are cached in
``$TMPDIR/assistant-bench-cache/sentence-choice.npz``.

``--fit`` grid-searches the weights of ``assistant.extractive.sentence_score`` (W_LEX, W_ALIGN,
W_RANK, W_TYPE; W_COS stays 1) for "the sentences the answer would quote hold the gold answer",
on the answerable questions, whatever the confidence. Two corpus families: SQuAD (``squad``,
``followups-normans``) and the shipped corpus (the three INNAXE sets). It reports the weights
fitted on each family and their accuracy on the other (held out), and the weights best on both
(the sum of the two accuracies; ties go to the grid's first, the smallest weights).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np

import kb  # noqa: F401  (telemetry off)
from assistant import extractive as ex
from assistant.followups import condense
from benchmarks.corpora import DATA, REPO, ingested
from benchmarks.squad_extractive import CachedEmbeddings, contains, strip_markers
from evaluation.importers import load_question_set
from evaluation.metrics import must_include
from kb.embeddings import MiniLMEmbeddings

SQUAD = DATA / "squad_normans" / "squad2_dev_normans.json"
SETS: dict[str, tuple[Path, Path | None]] = {  # name: (questions, documents when not the set's own)
    "squad": (SQUAD, None),
    "followups-normans": (REPO / "evals" / "followups-normans.yaml", SQUAD),
    "innaxe": (REPO / "evals" / "innaxe.yaml", None),
    "innaxe-plain": (REPO / "evals" / "innaxe-plain.yaml", None),
    "followups": (REPO / "evals" / "followups.yaml", None),
    "innaxe-open": (REPO / "evals" / "innaxe-open.yaml", None),
}
CACHE = Path(tempfile.gettempdir()) / "assistant-bench-cache" / "sentence-choice.npz"


def right(answer: str, q) -> bool:
    if q.answer_must_include:
        return must_include(answer, q.answer_must_include) == 1.0
    return any(contains(strip_markers(answer), gold) for gold in q.reference_answer)


def lead_right(lead: str, q) -> bool:
    """The short answer is the gold (SQuAD), or part of it (a reference sentence)."""
    if q.answer_must_include:
        return right(lead, q)
    return any(contains(lead, gold) or contains(gold, lead) for gold in q.reference_answer)


def run_set(name: str, emb: CachedEmbeddings, show: bool) -> dict[str, float | int]:
    path, docs = SETS[name]
    loaded = load_question_set(path)
    source = load_question_set(docs) if docs else loaded
    counts = dict.fromkeys(
        (
            "answerable",
            "unanswerable",
            "sure_right",
            "right",
            "sure_wrong",
            "false_sure",
            "led",
            "lead_right",
        ),
        0,
    )
    with ingested(source, source.questions.corpus_dir) as (retriever, _):
        for q in loaded.questions.questions:
            asked = condense(q.question, q.history_dicts) if q.history else q.question
            passages = retriever.retrieve(asked)
            result = ex.answer_from_passages(asked, passages, emb, asked=q.question) if passages else None
            sure = bool(result and not result.declined and not result.uncertain)
            shown = result.text if result and not result.declined else ""
            if q.answerable:
                ok = right(shown, q)
                counts["answerable"] += 1
                counts["right"] += ok
                counts["sure_right"] += ok and sure
                counts["sure_wrong"] += sure and not ok
                lead = result.lead if sure and ok else ""
                good_lead = bool(lead) and lead_right(lead, q)
                counts["led"] += bool(lead)
                counts["lead_right"] += good_lead
                if show and not (ok and sure):
                    state = "sure" if sure else "unsure" if shown else "declined"
                    print(f"  MISS [{state}] {asked}\n     -> {shown[:220]!r}")
                elif show and lead and not good_lead:
                    print(f"  WRONG LEAD {asked}\n     -> {shown[:220]!r}")
            else:
                counts["unanswerable"] += 1
                counts["false_sure"] += sure
                if show and sure:
                    print(f"  FALSE SURE {asked}\n     -> {shown[:220]!r}")
    emb.save()
    n, u = counts["answerable"] or 1, counts["unanswerable"] or 1
    return {
        **counts,
        "sure_right_rate": round(counts["sure_right"] / n, 3),
        "right_rate": round(counts["right"] / n, 3),
        "sure_wrong_rate": round(counts["sure_wrong"] / n, 3),
        "false_sure_rate": round(counts["false_sure"] / u, 3) if counts["unanswerable"] else float("nan"),
        "lead_right_rate": round(counts["lead_right"] / counts["led"], 3) if counts["led"] else float("nan"),
    }


FAMILIES = {
    "squad": ("squad", "followups-normans"),
    "innaxe": ("innaxe", "innaxe-plain", "followups", "innaxe-open"),
}
GRID = {  # W_LEX, W_ALIGN, W_RANK, W_TYPE
    "W_LEX": (0.0, 0.25, 0.5, 0.75, 1.0, 1.5),
    "W_ALIGN": (0.0, 0.25, 0.5, 0.75, 1.0),
    "W_RANK": (0.0, 0.05, 0.1),
    "W_TYPE": (0.0, 0.2, 0.4, 0.6),
}


def choice_items(emb: CachedEmbeddings) -> list[tuple[str, object, list, list, list]]:
    """(set, question, candidates, sentences, terms) of every answerable question, as asked."""
    items = []
    for name, (path, docs) in SETS.items():
        loaded = load_question_set(path)
        source = load_question_set(docs) if docs else loaded
        with ingested(source, source.questions.corpus_dir) as (retriever, _):
            for q in loaded.questions.questions:
                asked = condense(q.question, q.history_dicts) if q.history else q.question
                passages = retriever.retrieve(asked) if q.answerable else []
                if passages:
                    items.append((name, q, *ex.score_sentences(asked, passages, emb, q.question)))
    emb.save()
    return items


def fit(emb: CachedEmbeddings) -> None:
    items = choice_items(emb)
    feats = [
        np.array([[c.cos, c.cov, c.align, 1 / (1 + c.passage_index), c.type_fit] for c in cands])
        for _, _, cands, _, _ in items
    ]
    # fixed parts of the score: a definition's bonus, and no heading or echo of the question chosen
    fixed = []
    for _, q, cands, sentences, _ in items:
        asked = condense(q.question, q.history_dicts) if q.history else q.question
        can = {id(c) for c in ex.answer_candidates(cands, sentences, asked)}
        fixed.append(np.array([ex.W_DEF * c.defines + (0.0 if id(c) in can else -99.0) for c in cands]))
    counts = {f: sum(it[0] in sets for it in items) for f, sets in FAMILIES.items()}
    memo: dict[tuple[int, int], bool] = {}

    def quoted_right(i: int, scores: np.ndarray) -> bool:
        best = int(np.argmax(scores))
        if (i, best) not in memo:  # what the answer quotes: the best sentence and its picks
            _, q, cands, sentences, terms = items[i]
            scored = [copy.copy(c) for c in cands]
            for c, v in zip(scored, scores):
                c.score = float(v)
            picked = ex._pick_sentences(scored[best], scored, sentences, terms)
            memo[i, best] = right(" ".join(sentences[pi][si] for pi, si in picked), q)
        return memo[i, best]

    def accuracy(weights: tuple[float, ...]) -> dict[str, float]:
        w = np.array([1.0, *weights])
        hits = dict.fromkeys(FAMILIES, 0)
        for i, (name, *_rest) in enumerate(items):
            family = next(f for f, sets in FAMILIES.items() if name in sets)
            hits[family] += quoted_right(i, feats[i] @ w + fixed[i])
        return {f: hits[f] / (counts[f] or 1) for f in FAMILIES}

    now = (ex.W_LEX, ex.W_ALIGN, ex.W_RANK, ex.W_TYPE)
    rows = [(w, accuracy(w)) for w in itertools.product(*GRID.values())]
    print(
        f"{len(rows)} weightings on {counts} answerable questions; accuracy = the quoted sentences hold the answer"
    )
    print(f"  now {dict(zip(GRID, now))}: " + ", ".join(f"{f} {a:.3f}" for f, a in accuracy(now).items()))
    for family in FAMILIES:
        w, acc = max(rows, key=lambda r: r[1][family])
        print(
            f"  fitted on {family}: {dict(zip(GRID, w))}: "
            + ", ".join(f"{f} {a:.3f}" for f, a in acc.items())
        )
    w, acc = max(rows, key=lambda r: sum(r[1].values()))
    print(f"  best on both: {dict(zip(GRID, w))}: " + ", ".join(f"{f} {a:.3f}" for f, a in acc.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated: " + ", ".join(SETS))
    ap.add_argument("--show", action="store_true", help="print every miss and every false sure answer")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument(
        "--fit", action="store_true", help="grid-search the sentence-choice weights across corpora"
    )
    args = ap.parse_args(argv)
    emb = CachedEmbeddings(MiniLMEmbeddings(), CACHE)
    if args.fit:
        fit(emb)
        return 0
    rows = {}
    for name in args.sets.split(","):
        print(f"{name}:", flush=True)
        rows[name] = run_set(name, emb, args.show)
    print(
        f"\n{'set':<18} {'answerable':>10} {'sure_right':>10} {'right':>7} {'sure_wrong':>10} {'false_sure':>10}"
        f" {'led':>5} {'lead_right':>10}"
    )
    for name, r in rows.items():
        print(
            f"{name:<18} {r['answerable']:>10} {r['sure_right_rate']:>10.3f} {r['right_rate']:>7.3f} "
            f"{r['sure_wrong_rate']:>10.3f} {r['false_sure_rate']:>10.3f} {r['led']:>5} {r['lead_right_rate']:>10.3f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
