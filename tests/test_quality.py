"""Extractive mode end to end (ingest -> hybrid retrieval -> answer) on the shipped corpus and on
shared dev data, with floors that act as a regression gate.

The floors sit a little under what the current code measures (see the README's results table),
so a change that makes retrieval or answers worse fails here; they are quality numbers, never
timings.
"""

from __future__ import annotations

import pytest

from evaluation import run_evaluation
from tests.conftest import EVAL_DATA, REPO


def test_shipped_question_set_on_the_shipped_corpus(settings):
    report = run_evaluation(
        REPO / "evals" / "innaxe.yaml", settings.model_copy(update={"answer_mode": "extractive"})
    )
    s = report.summary
    assert report.counts["questions"] >= 15
    assert s["hit_at_k"] >= 0.9
    assert s["must_include"] >= 0.95
    assert s["answered_when_answerable"] >= 0.9
    # 3 of 5 declined; the 2 whose passages hold every name of the question are marked unsure
    assert s["declined_when_unanswerable"] >= 0.6
    assert s["declined_or_flagged_when_unanswerable"] == 1.0
    assert s["groundedness"] >= 0.9 and s["citation_precision"] >= 0.9
    assert s["error_rate"] == 0
    assert not settings.data_dir.exists(), "evaluating against a corpus leaves the user's data dir alone"


@pytest.mark.parametrize("name", ["innaxe-plain", "followups"])
def test_plain_questions_and_follow_ups_on_the_shipped_corpus(settings, name):
    """Questions worded as a stakeholder would (voice, nominalisation, acronyms) and two-turn
    conversations, answered offline: the keywords are there and every answer is cited."""
    report = run_evaluation(
        REPO / "evals" / f"{name}.yaml", settings.model_copy(update={"answer_mode": "extractive"})
    )
    assert report.summary["must_include"] >= 0.95  # 0.958 and 0.955
    answered = [r for r in report.results if not r.declined]
    assert answered and all(r.citations for r in answered)


def test_open_questions_on_the_shipped_corpus(settings):
    """ "What is INNAXE?", "What were the results?": answered by what the documents say about it,
    not by a heading that repeats the question or a sentence that only introduces a list; every
    claim of every answer held by its passage (a quoted list's numbering is no fact)."""
    report = run_evaluation(
        REPO / "evals" / "innaxe-open.yaml", settings.model_copy(update={"answer_mode": "extractive"})
    )
    assert report.summary["must_include"] >= 0.8  # 0.857 (0.214 before)
    answered = [r for r in report.results if not r.declined]
    assert answered and all(r.citations for r in answered)
    assert report.summary["groundedness"] == 1.0
    # quoted lines are held as written: a list's "BIOCAT [4]" is no bare answer to "List the partners."
    assert report.counts["verdict_partly_supported"] == report.counts["verdict_unverified"] == 0


def test_squad_subset_end_to_end(settings):
    report = run_evaluation(
        EVAL_DATA / "squad_normans" / "squad2_dev_normans.json",
        settings.model_copy(update={"answer_mode": "extractive"}),
        limit=60,
    )
    s = report.summary
    assert s["hit_at_k"] >= 0.85
    assert s["context_recall"] >= 0.85
    # SQuAD's unanswerable questions are written to look answerable: the decline model, fitted
    # across corpora, declines or marks unsure 0.17 of these 35 (benchmarks/decline_transfer.py)
    assert s["declined_or_flagged_when_unanswerable"] >= 0.15
    assert s["answered_when_answerable"] >= 0.9
    answered = [r for r in report.results if r.answerable and not r.declined]
    assert answered, "some answerable questions are answered"
    gold_in_answer = [
        r for r in answered if any(ref.lower() in r.answer.lower() for ref in r.reference_answer)
    ]
    assert len(gold_in_answer) / len(answered) >= 0.65, "the chosen sentences hold the gold answer"  # 0.70
