"""Run a question set through the real assistant and score every answer.

With a corpus (``--corpus``, the set's ``corpus:`` field, or an importer's documents) the
documents are ingested into a temporary data dir that is deleted afterwards: the user's index,
record store and uploads are never touched. Without one, the current index is used.

Questions run on a thread pool (``concurrency``, default 2): ``Assistant`` keeps no per-question
state. Latencies are measured here around ``Assistant.stream`` (time to the first text delta
and to the final ``Answer``), so they include any queueing inside the process; use
``concurrency=1`` when latency is what you are measuring.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.models import Answer
from evaluation import metrics as m
from evaluation.importers import LoadedSet, load_question_set
from evaluation.questions import Question
from evaluation.results import CitationResult, EvaluationReport, PassageResult, QuestionResult
from kb.settings import Settings

# progress(done, total, question_id)
Progress = Callable[[int, int, str], None]

SECRET_SETTINGS = {"openai_api_key", "users", "users_file"}


# --- one question ------------------------------------------------------------------------------


def ask_one(assistant, q: Question) -> tuple[Answer | None, dict[str, float | None], str | None]:
    """Stream one answer; return it with our own timings (first delta, total) or the error."""
    started = time.perf_counter()
    first: float | None = None
    answer: Answer | None = None
    try:
        for item in assistant.stream(q.question, q.history_dicts):
            if isinstance(item, Answer):
                answer = item
            elif item and first is None:
                first = time.perf_counter() - started
    except Exception as exc:  # a crash in one question must not end the run; it is reported
        return (
            None,
            {"first_token_s": first, "total_s": time.perf_counter() - started},
            (f"{type(exc).__name__}: {exc}"),
        )
    total = time.perf_counter() - started
    timings = {
        "first_token_s": first,
        "total_s": total,
        "retrieval_s": answer.timings.retrieval_s if answer else None,
    }
    return answer, timings, None


def score_question(q: Question, answer: Answer | None, k: int) -> QuestionResult:
    """Every offline metric except semantic similarity (that one is batched over the run)."""
    res = QuestionResult(
        id=q.id or "",
        question=q.question,
        history=q.history_dicts,
        answerable=q.answerable,
        reference_answer=q.reference_answer,
        answer_must_include=q.answer_must_include,
        sources=q.sources,
    )
    passages = answer.passages if answer else []
    rel = m.relevance([(p.source, p.text) for p in passages], q.reference_contexts, q.sources)
    res.passages = [
        PassageResult(
            n=p.n,
            source=p.source,
            location=p.location,
            score=p.score,
            dense_score=p.dense_score,
            bm25_score=p.bm25_score,
            relevant=rel[i] if rel is not None else None,
            text=p.text,
        )
        for i, p in enumerate(passages)
    ]
    if answer is not None:
        res.answer = answer.text
        res.declined = answer.declined
        res.verdict = None if answer.declined else answer.verdict
        res.unsupported = answer.unsupported
        res.uncertain, res.reason = answer.uncertain, answer.reason
        res.standalone_question = answer.standalone_question
        res.error = answer.error
        res.citations = [
            CitationResult(n=c.n, source=c.passage.source, location=c.passage.location, quote=c.quote)
            for c in answer.citations
        ]
    else:
        res.declined = True  # nothing was said
    text = res.answer
    scores: dict[str, float | None] = {}
    has_refs = bool(q.reference_contexts or q.sources)
    if q.answerable and has_refs:
        flags = rel or []
        scores["hit_at_1"] = m.hit_at_k(flags, 1)
        scores["hit_at_k"] = m.hit_at_k(flags, k)
        scores["mrr"] = m.reciprocal_rank(flags)
    if q.answerable:
        scores["context_recall"] = m.context_recall(q.reference_answer, [p.text for p in passages])
        scores["must_include"] = m.must_include(text, q.answer_must_include)
        scores["f1"] = m.squad_f1(text, q.reference_answer)
        scores["exact_match"] = m.squad_exact_match(text, q.reference_answer)
        res.missing = m.missing_groups(text, q.answer_must_include)
    if answer is not None and not res.declined:
        cited = {c.n: c.passage.text for c in answer.citations}
        scores["groundedness"] = m.groundedness(text, cited) if cited else 0.0
        scores["citation_precision"] = m.citation_precision(text, cited)
    res.metrics = {name: value for name, value in scores.items() if value is not None}
    return res


def quality(res: QuestionResult) -> float:
    """How well one question went, 0..1, for ranking the worst: a wrong refusal is 0; otherwise
    the mean of must-include, semantic similarity, hit@k, groundedness and judged correctness."""
    if res.error and not res.answer:
        return 0.0
    if not res.answerable:
        return 1.0 if res.declined else 0.0
    if res.declined:
        return 0.0
    parts = [
        res.metrics.get(name)
        for name in ("must_include", "semantic_similarity", "hit_at_k", "groundedness", "judge_correctness")
    ]
    return m.mean(parts) if any(p is not None for p in parts) else 1.0


# --- the summary ----------------------------------------------------------------------------------

VERDICTS = ("supported", "partly_supported", "unverified")
AVERAGED = (
    "hit_at_1",
    "hit_at_k",
    "mrr",
    "context_recall",
    "must_include",
    "f1",
    "exact_match",
    "semantic_similarity",
    "groundedness",
    "citation_precision",
    "judge_correctness",
    "judge_faithfulness",
)


def summarize(results: list[QuestionResult]) -> tuple[dict[str, float | None], dict[str, int]]:
    summary: dict[str, float | None] = {}
    for name in AVERAGED:
        summary[name] = m.mean(r.metrics.get(name) for r in results)
    summary["declined_when_unanswerable"] = m.rate(r.declined for r in results if not r.answerable)
    summary["answered_when_answerable"] = m.rate(not r.declined for r in results if r.answerable)
    # an answer shown as unverified tells the user not to trust it: for a question the documents
    # cannot answer that is as good as a refusal; for one they can, it is not a real answer
    summary["declined_or_flagged_when_unanswerable"] = m.rate(r.flagged for r in results if not r.answerable)
    summary["answered_verified_when_answerable"] = m.rate(not r.flagged for r in results if r.answerable)
    summary["error_rate"] = m.rate(bool(r.error) for r in results)
    for key, label in (("first_token_s", "first_token"), ("total_s", "total")):
        values = [r.timings.get(key) for r in results]
        summary[f"{label}_p50_s"] = m.percentile(values, 50)
        summary[f"{label}_p95_s"] = m.percentile(values, 95)
    counts = {
        "questions": len(results),
        "answerable": sum(r.answerable for r in results),
        "unanswerable": sum(not r.answerable for r in results),
        "declined": sum(r.declined for r in results),
        "errors": sum(bool(r.error) for r in results),
        "follow_ups": sum(bool(r.history) for r in results),
        **{f"verdict_{v}": sum(r.verdict == v for r in results) for v in VERDICTS},
    }
    for name in AVERAGED:
        counts[f"n_{name}"] = sum(name in r.metrics for r in results)
    return summary, counts


# --- the run -------------------------------------------------------------------------------------------


def public_settings(settings: Settings) -> dict[str, Any]:
    """The settings for the report, without secrets."""
    data = settings.model_dump(mode="json", exclude=SECRET_SETTINGS)
    data["effective_answer_mode"] = settings.effective_answer_mode
    data["openai_api_key_set"] = bool(settings.openai_api_key)
    return data


def corpus_fingerprint(kb) -> dict[str, Any]:
    """A hash of the indexed documents' names and contents: equal fingerprints, same corpus."""
    docs = kb.list_documents()
    digest = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.source):
        digest.update(f"{d.source}\t{d.sha256}\n".encode())
    return {
        "fingerprint": digest.hexdigest()[:16],
        "documents": len(docs),
        "chunks": kb.count_chunks(),
        "embedding_model": kb.model_id,
    }


def run_evaluation(
    questions_path: Path | str,
    settings: Settings,
    out_dir: Path | str | None = None,
    fmt: str | None = None,
    corpus: Path | str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    *,
    concurrency: int = 2,
    baseline: Path | str | dict | None = None,
    judge: bool | None = None,
    loaded: LoadedSet | None = None,
) -> EvaluationReport:
    """Load, (ingest,) ask, score and report. Raises ``QuestionFileError`` for a bad question file.

    ``judge``: None = judge with the chat model when the answer mode is openai; False = never.
    ``progress(done, total, question_id)`` is called after each question.
    """
    from assistant.core import Assistant
    from evaluation.report import compare, load_report, write_reports
    from ingest.pipeline import ingest
    from kb.embeddings import make_embeddings
    from kb.store import KnowledgeBase

    started = time.perf_counter()
    loaded = loaded or load_question_set(questions_path, fmt)
    qset = loaded.questions.limited(limit)
    notes = list(loaded.notes)
    corpus_dir = Path(corpus).resolve() if corpus else None
    if corpus_dir is None and not loaded.documents:
        corpus_dir = qset.corpus_dir
    if corpus_dir is not None and not corpus_dir.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {corpus_dir}")

    isolated = corpus_dir is not None or bool(loaded.documents)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="assistant-eval-", ignore_cleanup_errors=True)
        )
        corpus_info: dict[str, Any] = {"isolated": isolated}
        if isolated:
            if corpus_dir is None:
                corpus_dir = Path(tmp) / "corpus"
                loaded.write_documents(corpus_dir)
                corpus_info["dir"] = f"(imported from {Path(questions_path).name})"
            else:
                corpus_info["dir"] = str(corpus_dir)
            run_settings = settings.model_copy(
                update={
                    "data_dir": Path(tmp) / "data",
                    "corpus_dir": corpus_dir,
                    "chroma_host": None,
                    "record_db_url": None,
                }
            )
            kb = KnowledgeBase(run_settings)
            stack.callback(kb.close)
            ingest_report = ingest(None, run_settings, kb)
            corpus_info["ingest"] = ingest_report.summary()
            for f in ingest_report.failed:
                notes.append(f"could not ingest {f.source}: {f.reason}")
            assistant = Assistant(run_settings, kb)
        else:
            run_settings = settings
            assistant = Assistant.from_settings(settings)
            kb = assistant.kb  # not closed: an embedded Chroma client is shared within the process
            corpus_info["dir"] = f"(current index in {settings.data_dir})"
        corpus_info.update(corpus_fingerprint(kb))
        k = run_settings.top_k

        questions = qset.questions
        answers: list[tuple[Answer | None, dict, str | None] | None] = [None] * len(questions)
        done = 0

        def work(i: int) -> int:
            answers[i] = ask_one(assistant, questions[i])
            return i

        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="eval") as pool:
            for i in pool.map(work, range(len(questions))):
                done += 1
                if progress:
                    progress(done, len(questions), questions[i].id or "")

        results: list[QuestionResult] = []
        for q, got in zip(questions, answers, strict=True):
            answer, timings, error = got  # type: ignore[misc]
            res = score_question(q, answer, k)
            res.timings = timings
            if error:
                res.error = error
            results.append(res)

        _semantic_similarity(make_embeddings(run_settings), questions, results)
        mode = assistant.answerer.mode
        if judge is None:
            judge = mode == "openai"
        if judge and mode == "openai":
            valid, asked = _judge_all(run_settings, questions, results, concurrency)
            notes.append(f"judge: {valid} of {asked} replies valid")
        elif judge:
            notes.append("the LLM judge needs answer mode openai; it was skipped")

    for res in results:
        res.quality = quality(res)
    summary, counts = summarize(results)
    report = EvaluationReport(
        name=qset.name or Path(questions_path).stem,
        questions_file=str(Path(questions_path)),
        format=loaded.format,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        mode=mode,
        model=assistant.answerer.model,
        k=k,
        settings=public_settings(run_settings),
        corpus=corpus_info,
        summary=summary,
        counts=counts,
        notes=notes,
        results=results,
    )
    if baseline is not None:
        old = baseline if isinstance(baseline, dict) else load_report(baseline)
        report.baseline = compare(report, old)
    report.wall_s = time.perf_counter() - started
    if out_dir is not None:
        report.paths = write_reports(report, Path(out_dir))
    return report


def _semantic_similarity(embeddings, questions: list[Question], results: list[QuestionResult]) -> None:
    """Cosine of answer and reference embeddings, best over alternative references, in one batch."""
    texts: list[str] = []
    jobs: list[tuple[QuestionResult, int, list[int]]] = []
    for q, res in zip(questions, results, strict=True):
        if not (q.answerable and q.reference_answer):
            continue
        start = len(texts)
        texts.append(res.answer or " ")
        texts.extend(q.reference_answer)
        jobs.append((res, start, list(range(start + 1, len(texts)))))
    if not texts:
        return
    vectors = embeddings.embed_documents(texts)
    for res, a, refs in jobs:
        res.metrics["semantic_similarity"] = max(m.cosine(vectors[a], vectors[r]) for r in refs)


def _judge_all(
    settings: Settings, questions: list[Question], results: list[QuestionResult], workers: int
) -> tuple[int, int]:
    """Grade every answer; returns (valid judge replies, answers judged)."""
    from evaluation.judge import Judge

    judge = Judge(settings)

    def grade(pair: tuple[Question, QuestionResult]) -> bool | None:
        q, res = pair
        if not res.answer:
            return None
        j = judge.grade(q.question, res.answer, q.reference_answer, [p.text for p in res.passages])
        if j.correctness is not None and q.answerable:
            res.metrics["judge_correctness"] = j.correctness
        if j.faithfulness is not None:
            res.metrics["judge_faithfulness"] = j.faithfulness
        res.judge_reason = j.error or j.reason
        return j.error is None

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="judge") as pool:
        graded = [g for g in pool.map(grade, zip(questions, results, strict=True)) if g is not None]
    return sum(graded), len(graded)
