"""Do follow-up rewrites find what the user meant? Each conversation of the follow-up sets has a
hand-written standalone form of its second question; a rewrite is as good as it should be when it
retrieves the gold passage as often as that question does.

    python -m benchmarks.followups                       # the offline rewrite
    OPENAI_BASE_URL=http://127.0.0.1:8089/v1 ASSISTANT_CHAT_MODEL=smollm2 \\
        python -m benchmarks.followups --model           # the model's rewrite beside it
    python -m benchmarks.followups --json reports/followups.json

Sets: ``evals/followups.yaml`` (the shipped corpus) and ``evals/followups-normans.yaml`` (the SQuAD
"Normans" article, one document per paragraph, from ../shared/eval-data). Each is ingested into a
temporary data folder and asked through the real retriever. Per rewriter: hit@1 and hit@k of the
gold document, the gap to the hand-written question (target: within 0.05), and each miss with the
rewrite, so a reader sees why. The follow-up asked as it is, without the conversation, is the
floor.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import kb  # noqa: F401  (telemetry off)
from assistant import followups
from assistant.retrieval import HybridRetriever
from evaluation.importers import load_question_set
from evaluation.questions import Question
from ingest.pipeline import ingest
from kb.settings import load_settings
from kb.store import KnowledgeBase

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "eval-data"
SETS = {
    "innaxe": (REPO / "evals" / "followups.yaml", None),
    "normans": (
        REPO / "evals" / "followups-normans.yaml",
        DATA / "squad_normans" / "squad2_dev_normans.json",
    ),
}


def corpus_folder(name: str, root: Path) -> Path:
    """The documents a set is asked over: its own corpus, or the imported SQuAD paragraphs."""
    path, squad = SETS[name]
    if squad is None:
        corpus = load_question_set(path).questions.corpus_dir
        assert corpus is not None, f"{path} names no corpus"
        return corpus
    folder = root / "corpus"
    load_question_set(squad).write_documents(folder)
    return folder


def ranks(retriever: HybridRetriever, question: str, q: Question) -> int | None:
    """1-based rank of the first gold passage, or None. Gold: from a document the question names,
    or holding every ``answer_must_include`` group (the shipped corpus says some facts twice: the
    article, and the slides and spreadsheet made from it)."""
    gold = {Path(s).name for s in q.sources}
    for p in retriever.retrieve(question):
        text = p.text.lower()
        holds = bool(q.answer_must_include) and all(
            any(alt.lower() in text for alt in group) for group in q.answer_must_include
        )
        if holds or p.source.rsplit("/", 1)[-1] in gold:
            return p.n
    return None


def run_set(name: str, use_model: bool, k: int) -> dict:
    path, _ = SETS[name]
    questions = load_question_set(path).questions.questions
    with tempfile.TemporaryDirectory(prefix=f"followups-{name}-") as tmp:
        root = Path(tmp)
        corpus = corpus_folder(name, root)
        settings = load_settings(data_dir=root / "data", corpus_dir=corpus, top_k=k)
        knowledge = KnowledgeBase(settings)
        report = ingest(None, settings, knowledge)
        assert not report.failed, report.summary()
        retriever = HybridRetriever(knowledge, settings)
        rewriters = {"as asked": lambda q, h: q, "offline rewrite": followups.condense}
        if use_model:
            from assistant.llm import ChatAnswerer

            rewriters["model rewrite"] = ChatAnswerer(settings).condense
        rewriters["hand-written"] = None  # the question's own standalone form
        rows: dict[str, dict] = {
            r: {"hit1": 0, "hitk": 0, "seconds": 0.0, "misses": [], "asked": []} for r in rewriters
        }
        for q in questions:
            for label, rewrite in rewriters.items():
                started = time.perf_counter()
                asked = q.standalone if rewrite is None else rewrite(q.question, q.history_dicts)
                rows[label]["seconds"] += time.perf_counter() - started
                rows[label]["asked"].append(asked)
                rank = ranks(retriever, asked or q.question, q)
                rows[label]["hit1"] += rank == 1
                rows[label]["hitk"] += rank is not None
                if rank != 1:
                    rows[label]["misses"].append({"id": q.id, "asked": asked, "rank": rank})
    n = len(questions)
    out = {"set": name, "conversations": n, "k": k, "rewriters": {}}
    for label, row in rows.items():
        out["rewriters"][label] = {
            "hit_at_1": round(row["hit1"] / n, 3),
            f"hit_at_{k}": round(row["hitk"] / n, 3),
            "mean_rewrite_s": round(row["seconds"] / n, 3),
            "misses": row["misses"],
            # the model's rewrite is kept only when valid (else the offline one is used)
            "own_rewrites": sum(a != o for a, o in zip(row["asked"], rows["offline rewrite"]["asked"])),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="store_true", help="also the configured chat model's rewrite")
    ap.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    results = [run_set(name, args.model, args.k) for name in args.sets]
    for res in results:
        hand = res["rewriters"]["hand-written"]
        print(f"\n{res['set']}: {res['conversations']} conversations, top {res['k']}")
        print(f"  {'question retrieved with':22s} hit@1   hit@{res['k']}   gap@1 to hand-written   rewrite s")
        for label, row in res["rewriters"].items():
            gap, hit_k = row["hit_at_1"] - hand["hit_at_1"], row[f"hit_at_{res['k']}"]
            print(
                f"  {label:22s} {row['hit_at_1']:.3f}  {hit_k:.3f}   {gap:+.3f}"
                f"                  {row['mean_rewrite_s']:.3f}"
            )
        if "model rewrite" in res["rewriters"]:
            own = res["rewriters"]["model rewrite"]["own_rewrites"]
            print(
                f"  the model's own rewrite kept for {own} of {res['conversations']} (else the offline one)"
            )
        for label in ("offline rewrite", "model rewrite"):
            for miss in res["rewriters"].get(label, {}).get("misses", []):
                print(f"    {label} miss {miss['id']}: rank {miss['rank']}: {miss['asked']!r}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
