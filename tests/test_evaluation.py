"""Evaluation: metrics on hand-made cases, question-file validation, importers, reports, the CLI,
and one run through the real assistant on a tiny corpus (extractive, then openai + judge)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from assistant.extractive import UNSURE_MESSAGE
from evaluation import metrics as m
from evaluation.__main__ import check_floors, main
from evaluation.importers import detect_format, load_question_set
from evaluation.judge import parse_judgement
from evaluation.questions import QuestionFileError, load_questions
from evaluation.report import compare, is_regression, write_reports
from evaluation.results import EvaluationReport, QuestionResult
from evaluation.runner import run_evaluation, summarize
from ingest.loaders import load_file
from tests.conftest import EVAL_DATA, REPO
from tests.fake_openai import QuotingModel, question_in, system_text

pytest_plugins = ["tests.fake_openai"]


# --- metrics -----------------------------------------------------------------------------------


def test_squad_normalisation_f1_and_exact_match():
    assert m.squad_normalize("The  Normans' lands, in FRANCE!") == "normans lands in france"
    # pred tokens: cat sat on mat; gold: cat sat -> P 2/4, R 2/2 -> F1 2/3
    assert m.squad_f1("the cat sat on the mat", ["a cat sat"]) == pytest.approx(2 / 3)
    assert m.squad_f1("Rollo", ["Richard", "rollo."]) == 1.0  # best over alternatives
    assert m.squad_f1("nothing alike", ["Rollo"]) == 0.0
    assert m.squad_f1("anything", []) is None
    assert m.squad_exact_match("The Normans.", ["normans"]) == 1.0
    assert m.squad_exact_match("Normans of France", ["normans"]) == 0.0


def test_overlap_is_containment_of_the_shorter_text():
    chunk = "The INNAXE consortium consists of six European partners: BIOCAT, Medicen and BioRN."
    assert m.containment("consists of six European partners", chunk) == 1.0
    assert m.overlaps(chunk, "six European partners: BIOCAT, Medicen")
    # half of the reference's trigrams are in the chunk: exactly at the threshold
    ref = "one two three four five six"  # trigrams: 123 234 345 456
    assert m.containment("one two three four x y", ref) == 0.5
    assert m.overlaps("one two three four x y", ref)
    assert not m.overlaps("Travel is reimbursed within thirty days.", chunk)
    assert m.containment("", chunk) == 0.0


def test_relevance_hit_at_k_and_reciprocal_rank():
    passages = [("a.txt", "Staff get 25 days of leave."), ("docs/b.txt", "Trains are preferred for travel.")]
    by_context = m.relevance(passages, reference_contexts=["Trains are preferred for travel."])
    assert by_context == [False, True]
    assert m.relevance(passages, sources=["b.txt"]) == [False, True]  # file name matches a path
    assert m.relevance(passages, sources=["a.txt"]) == [True, False]
    assert m.relevance(passages) is None
    # reference contexts decide when both are given
    assert m.relevance(passages, ["Trains are preferred for travel."], ["a.txt"]) == [False, True]
    flags = [False, True, False]
    assert m.hit_at_k(flags, 1) == 0.0
    assert m.hit_at_k(flags, 2) == 1.0
    assert m.reciprocal_rank(flags) == 0.5
    assert m.reciprocal_rank([False, False]) == 0.0
    assert m.reciprocal_rank([False, False, False, True]) == 0.25


def test_context_recall_counts_content_words_of_the_reference():
    # content words of the reference: rollo, led, norse; the passage has rollo and norse
    assert m.context_recall(["Rollo led the Norse."], ["Rollo was the Norse leader."]) == pytest.approx(2 / 3)
    assert m.context_recall(["nothing here", "Rollo"], ["Rollo was the Norse leader."]) == 1.0
    assert m.context_recall(["Rollo"], []) == 0.0
    assert m.context_recall([], ["text"]) is None


def test_must_include_needs_one_alternative_of_every_group_as_whole_words():
    groups = [["BIOCAT"], ["six", "6"]]
    assert m.must_include("BIOCAT and 6 other partners", groups) == 1.0
    assert m.must_include("biocat has six partners", groups) == 1.0  # any case
    assert m.must_include("BIOCAT has sixty partners", groups) == 0.0  # 'six' is not in 'sixty'
    assert m.missing_groups("BIOCAT has sixty partners", groups) == [["six", "6"]]
    assert m.must_include("Health & Life  Sciences", [["health & life sciences"]]) == 1.0
    assert m.must_include("anything", []) is None


def test_cosine():
    assert m.cosine([1.0, 0.0], [1.0, 1.0]) == pytest.approx(0.5**0.5)
    assert m.cosine([1.0, 2.0], [-1.0, -2.0]) == pytest.approx(-1.0)
    assert m.cosine([0.0, 0.0], [1.0, 0.0]) == 0.0


def test_groundedness_and_citation_precision():
    cited = {1: "The consortium has six partners from Europe.", 2: "The project ends in June 2024."}
    answer = (
        "The consortium has six partners [1]. "
        "The project ends in June 2024 [1]. "  # cites the wrong passage: not supported
        "Bananas are a yellow fruit."  # no marker: checked against all cited passages, none supports
    )
    assert m.groundedness(answer, cited) == pytest.approx(1 / 3)
    # both passages support some sentence (passage 2 supports the second, though it was not cited there)
    assert m.citation_precision(answer, cited) == 1.0
    assert m.citation_precision("The consortium has six partners [1].", cited) == 0.5
    # markers written after the full stop belong to the sentence before them
    assert (
        m.groundedness("The project ends in June 2024. [2] The consortium has six partners. [1]", cited)
        == 1.0
    )
    assert m.groundedness("Yes.", cited) is None  # no sentence that makes a claim
    assert m.citation_precision("anything", {}) is None


def test_answer_sentences_keep_their_markers():
    got = m.answer_sentences("Staff get 25 leave days. [1] Unused days carry over [2, 3]. Ok.")
    assert got == [("Staff get 25 leave days.", {1}), ("Unused days carry over.", {2, 3})]


def test_rates_means_and_percentiles():
    assert m.percentile([1, 2, 3, 4], 50) == 2.5
    assert m.percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert m.percentile([7.0], 95) == 7.0
    assert m.percentile([None, None], 50) is None
    assert m.mean([1.0, None, 0.0]) == 0.5
    assert m.rate([True, False, False, True]) == 0.5
    assert m.rate([]) is None


def _result(qid: str, answerable: bool, declined: bool, total: float, **metrics: float) -> QuestionResult:
    return QuestionResult(
        id=qid,
        question=f"question {qid}?",
        answerable=answerable,
        declined=declined,
        answer="I could not find the answer." if declined else "An answer [1].",
        metrics=metrics,
        timings={"first_token_s": total / 2, "total_s": total},
    )


def test_summary_refusal_rates_and_latency_percentiles():
    results = [
        _result("a", True, False, 1.0, must_include=1.0),
        _result("b", True, True, 2.0, must_include=0.0),
        _result("c", False, True, 3.0),
        _result("d", False, False, 4.0),
        _result("e", False, True, 5.0),
    ]
    summary, counts = summarize(results)
    assert summary["answered_when_answerable"] == 0.5
    assert summary["declined_when_unanswerable"] == pytest.approx(2 / 3)
    assert summary["must_include"] == 0.5
    assert summary["total_p50_s"] == 3.0
    assert summary["total_p95_s"] == pytest.approx(4.8)
    assert summary["first_token_p50_s"] == 1.5
    assert summary["f1"] is None
    assert counts["questions"] == 5 and counts["unanswerable"] == 3 and counts["n_must_include"] == 2


# --- question files ------------------------------------------------------------------------------


def test_native_yaml_is_read_with_defaults_and_generated_ids(tmp_path):
    path = tmp_path / "set.yaml"
    path.write_text(
        "name: demo\ncorpus: docs\nquestions:\n"
        "  - question: How many days of leave?\n"
        "    answer_must_include: [['25', twenty-five], days]\n"  # a bare string group is one alternative
        "    reference_answer: 25 days\n"
        "  - id: q001\n    question: Who?\n    answerable: false\n"
        "  - question: And then?\n    history: [{role: user, content: Hi}, {role: assistant, content: Hello}]\n",
        encoding="utf-8",
    )
    qs = load_questions(path)
    assert [q.id for q in qs.questions] == ["q001_", "q001", "q003"]  # a taken id is not reused
    first = qs.questions[0]
    assert first.answer_must_include == [["25", "twenty-five"], ["days"]]
    assert first.reference_answer == ["25 days"]
    assert first.answerable and not qs.questions[1].answerable
    assert qs.questions[2].history_dicts == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]
    assert qs.corpus_dir == (tmp_path / "docs").resolve()


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        (
            "questions:\n  - question: ok?\n  - question: Bad?\n    answer_must_include: {a: b}\n",
            4,
            "questions[1].answer_must_include",
            "valid list",
        ),
        (
            "questions:\n  - question: ok?\n\n  - question: ok too?\n    answerble: false\n",
            5,
            "questions[1].answerble",
            "unknown field",
        ),
        (
            "questions:\n  - question: ok?\n  - id: x\n    sources: [a.txt]\n",
            3,
            "questions[1].question",
            "required",
        ),
        (
            "questions:\n  - question: ok?\n    history:\n      - role: bot\n        content: hi\n",
            4,
            "questions[0].history[0].role",
            "'user' or 'assistant'",
        ),
        (
            "questions:\n  - question: Who?\n    answerable: false\n    answer_must_include: [[x]]\n",
            2,
            "questions[0]",
            "cannot have answer_must_include",
        ),
        (
            "questions:\n  - id: a\n    question: one?\n  - id: a\n    question: two?\n",
            4,
            "questions[1].id",
            "duplicate",
        ),
        ("questions: []\n", 1, "questions", "at least 1"),
    ],
)
def test_invalid_yaml_names_file_line_and_field(tmp_path, body, line, field, message):
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(QuestionFileError) as err:
        load_questions(path)
    text = str(err.value)
    assert text.startswith(f"{path}:{line}: {field}: "), text
    assert message in text
    assert (err.value.line, err.value.field) == (line, field)


def test_yaml_syntax_error_has_its_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("questions:\n  - question: fine\n  - question: [unclosed\n", encoding="utf-8")
    with pytest.raises(QuestionFileError, match=rf"^{re.escape(str(path))}:\d+: not valid YAML"):
        load_questions(path)


def test_jsonl_lines_and_header(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"name": "lines", "corpus": "c"}\n'
        '{"question": "One?", "answer_must_include": [["1"]]}\n\n'
        '{"question": "Two?", "answerable": false}\n',
        encoding="utf-8",
    )
    qs = load_questions(path)
    assert qs.name == "lines" and [q.question for q in qs.questions] == ["One?", "Two?"]
    path.write_text(
        '{"question": "One?"}\n{"question": "Two?"}\n{"question": "Three?", "sources": "a"}\n'
        '{"question": 5, "answerable": "maybe"}\n',
        encoding="utf-8",
    )
    with pytest.raises(QuestionFileError) as err:
        load_questions(path)
    assert f"{path}:4: questions[3].question: Input should be a valid string" in str(err.value)
    assert f"{path}:4: questions[3].answerable:" in str(err.value)
    path.write_text('{"question": "One?"}\nnot json\n', encoding="utf-8")
    with pytest.raises(QuestionFileError, match=r":2: not valid JSON"):
        load_questions(path)


def test_shipped_innaxe_set_is_valid():
    qs = load_questions(REPO / "evals" / "innaxe.yaml")
    assert len(qs.questions) >= 15
    assert sum(not q.answerable for q in qs.questions) >= 4
    assert sum(bool(q.history) for q in qs.questions) >= 2
    assert qs.corpus_dir == (REPO / "corpus").resolve()
    corpus_text = (REPO / "corpus" / "innaxe-cluster-collaboration-results.txt").read_text(encoding="utf-8")
    texts: dict[str, str] = {}  # a named source as its loader reads it (the deck by slide, the sheet by rows)
    for q in qs.questions:
        for src in q.sources:
            if src not in texts:
                loaded = load_file(REPO / "corpus" / src, 10_000_000)
                texts[src] = "\n".join(section.text for section in loaded.sections)
        for ctx in q.reference_contexts:  # every reference context really is in one of its sources
            assert any(m.overlaps(texts[src], ctx) for src in q.sources), (q.id, ctx)
        for group in q.answer_must_include:
            assert any(alt.lower() in corpus_text.lower() for alt in group), (q.id, group)


# --- importers -----------------------------------------------------------------------------------


def test_squad_importer_on_a_tiny_file(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(
        json.dumps(
            {
                "version": "v2.0",
                "data": [
                    {
                        "title": "Tiny Topic",
                        "paragraphs": [
                            {
                                "context": "Rollo led the Norse.",
                                "qas": [
                                    {
                                        "id": "a1",
                                        "question": "Who led the Norse?",
                                        "is_impossible": False,
                                        "answers": [
                                            {"text": "Rollo", "answer_start": 0},
                                            {"text": "Rollo", "answer_start": 0},
                                        ],
                                    },
                                    {
                                        "id": "a2",
                                        "question": "Who led the Danes?",
                                        "is_impossible": True,
                                        "answers": [],
                                        "plausible_answers": [{"text": "Rollo", "answer_start": 0}],
                                    },
                                ],
                            },
                            {
                                "context": "Normandy is in France.",
                                "qas": [
                                    {
                                        "id": "b1",
                                        "question": "Where is Normandy?",
                                        "answers": [
                                            {"text": "France", "answer_start": 12},
                                            {"text": "in France", "answer_start": 9},
                                        ],
                                    },
                                ],
                            },
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    assert detect_format(path) == "squad"
    got = load_question_set(path)
    assert [d.name for d in got.documents] == ["tiny-topic-001.txt", "tiny-topic-002.txt"]
    q1, q2, q3 = got.questions.questions
    assert (q1.id, q1.reference_answer, q1.sources, q1.answerable) == (
        "a1",
        ["Rollo"],
        ["tiny-topic-001.txt"],
        True,
    )
    assert (q2.answerable, q2.reference_answer, q2.sources) == (False, [], [])
    assert q3.reference_answer == ["France", "in France"]
    got.write_documents(tmp_path / "corpus")
    assert (tmp_path / "corpus" / "tiny-topic-002.txt").read_text(
        encoding="utf-8"
    ) == "Normandy is in France."


def test_llamaindex_importer_on_a_tiny_file(tmp_path):
    path = tmp_path / "rag_dataset.json"
    examples = [
        {
            "query": "What is PoH?",
            "reference_contexts": ["Proof of History orders events."],
            "reference_answer": "Proof of History.",
            "query_by": {"type": "ai"},
        }
    ]
    path.write_text(json.dumps({"examples": examples}), encoding="utf-8")
    got = load_question_set(path)
    assert got.format == "llamaindex"
    assert [d.name for d in got.documents] == ["context-001.txt"] and got.notes  # no source_files/: contexts
    (tmp_path / "source_files").mkdir()
    (tmp_path / "source_files" / "paper.txt").write_text("Proof of History orders events.", encoding="utf-8")
    got = load_question_set(path, "llamaindex")
    q = got.questions.questions[0]
    assert [d.name for d in got.documents] == ["paper.txt"] and not got.notes
    assert (q.question, q.reference_answer, q.reference_contexts) == (
        "What is PoH?",
        ["Proof of History."],
        ["Proof of History orders events."],
    )


def test_tonic_importer_on_a_tiny_file(tmp_path):
    essays = tmp_path / "essays"
    essays.mkdir()
    (essays / "hubs.txt").write_text("Written by X\n\nHow to Be a Hub\n\nYou need rich people and nerds.")
    path = tmp_path / "qa.json"
    path.write_text(
        json.dumps(
            [
                {
                    "essay": "hubs.txt",
                    "question": "What makes a hub?",
                    "answer": "Rich people and nerds.",
                    "quote": "You need rich people and nerds.",
                },
                {
                    "reference_article": "how to be a HUB",
                    "question": "Who is needed?",
                    "answer": "Nerds.",
                    "reference_text": "rich people and nerds",
                },
                {
                    "reference_article": "Missing Essay",
                    "question": "What else?",
                    "answer": "Nothing.",
                    "reference_text": "Some text that stands in.",
                },
            ]
        ),
        encoding="utf-8",
    )
    assert detect_format(path) == "tonic"
    got = load_question_set(path)
    assert sorted(d.name for d in got.documents) == ["hubs.txt", "missing-essay.txt"]
    q1, q2, q3 = got.questions.questions
    assert q1.sources == ["hubs.txt"] and q1.reference_contexts == ["You need rich people and nerds."]
    assert q2.sources == ["hubs.txt"]  # found by its title
    assert q3.sources == ["missing-essay.txt"] and any("Missing Essay" in n for n in got.notes)


def test_importer_errors_name_the_field(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}), encoding="utf-8")
    with pytest.raises(QuestionFileError, match=r"data\[0\]\.paragraphs\[0\]\.context: Field required"):
        load_question_set(path, "squad")


@pytest.mark.parametrize(
    ("rel", "fmt", "questions", "answerable", "documents"),
    [
        ("squad_normans/squad2_dev_normans.json", "squad", 208, 96, 39),
        ("llamaindex_blockchain_solana/rag_dataset.json", "llamaindex", 58, 58, 1),
        ("paul_graham_essays/qa_pairs.json", "tonic", 55, 55, 29),
        ("paul_graham_essays/question_and_answer_list.json", "tonic", 14, 14, 5),
    ],
)
def test_importers_on_the_shared_dev_sets(rel, fmt, questions, answerable, documents):
    got = load_question_set(EVAL_DATA / rel)
    assert got.format == fmt
    qs = got.questions.questions
    assert len(qs) == questions
    assert sum(q.answerable for q in qs) == answerable
    assert len(got.documents) == documents
    assert not got.notes  # every named essay / source file was found
    assert len({q.id for q in qs}) == questions
    assert all(q.reference_answer for q in qs if q.answerable)


# --- reports, baselines and the gate -------------------------------------------------------------


def _report(**summary: float | None) -> EvaluationReport:
    results = [
        _result("a", True, False, 0.4, must_include=1.0, hit_at_k=1.0),
        _result("b", False, True, 0.9),
    ]
    base_summary, counts = summarize(results)
    base_summary.update(summary)
    return EvaluationReport(
        name="demo <set>",
        questions_file="demo.yaml",
        format="native",
        created_at="2025-01-01T00:00:00+00:00",
        mode="extractive",
        k=5,
        settings={"top_k": 5},
        corpus={"fingerprint": "abc", "documents": 1, "chunks": 2},
        summary=base_summary,
        counts=counts,
        results=results,
    )


def test_reports_are_written_and_read_offline(tmp_path):
    report = _report()
    paths = write_reports(report, tmp_path / "out")
    assert set(paths) == {"json", "md", "html"}
    data = json.loads(Path(paths["json"]).read_text(encoding="utf-8"))
    assert data["summary"]["must_include"] == 1.0 and data["results"][0]["id"] == "a"
    html = Path(paths["html"]).read_text(encoding="utf-8")
    assert html.count("<svg") == 2  # metric bars and latency histogram
    assert "demo &lt;set&gt;" in html  # escaped
    assert not re.search(r"<script|<link|src=|@import|https?://", html)  # nothing to fetch
    md = Path(paths["md"]).read_text(encoding="utf-8")
    assert "| must include (`must_include`) | 1.000 | 1 |" in md
    assert "## Worst questions" in md


def test_baseline_deltas_flag_regressions(tmp_path):
    old = json.loads(_report(must_include=1.0, total_p95_s=0.5, hit_at_k=0.9).model_dump_json())
    old["results"][0]["quality"] = 1.0
    new = _report(must_include=0.9, total_p95_s=0.9, hit_at_k=0.95)
    new.baseline = compare(new, old)
    rows = {r["metric"]: r for r in new.baseline["rows"]}
    assert rows["must_include"]["delta"] == pytest.approx(-0.1) and rows["must_include"]["regression"]
    assert rows["total_p95_s"]["regression"]  # 0.5 s -> 0.9 s is slower by > 20 % and > 50 ms
    assert rows["hit_at_k"]["improvement"] and not rows["hit_at_k"]["regression"]
    assert set(new.baseline["regressions"]) == {"must_include", "total_p95_s"}
    assert [w["id"] for w in new.baseline["questions_worse"]] == ["a"]  # quality 1.0 -> 0.0
    paths = write_reports(new, tmp_path)
    md = Path(paths["md"]).read_text(encoding="utf-8")
    assert "| must include | 1.000 | 0.900 | -0.100 | **REGRESSION** |" in md
    assert "regression" in Path(paths["html"]).read_text(encoding="utf-8")
    assert not is_regression("must_include", 1.0, 0.99)  # within tolerance
    assert not is_regression("total_p95_s", 0.01, 0.03)  # tiny absolute change


def test_floors():
    summary = {"must_include": 0.8, "total_p95_s": 2.0, "f1": None}
    assert check_floors(summary, [("must_include", 0.8)]) == []
    assert check_floors(summary, [("must_include", 0.81)]) == ["must_include = 0.800 is below the floor 0.81"]
    assert check_floors(summary, [("total_p95_s", 1.5)]) == ["total_p95_s = 2.00 s is above the ceiling 1.5"]
    assert "not measured" in check_floors(summary, [("f1", 0.1)])[0]


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("questions:\n  - id: x\n", encoding="utf-8")
    assert main([str(bad)]) == 2
    assert f"{bad}:2: questions[0].question: Field required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(bad), "--fail-under", "nonsense=1"])
    assert exc.value.code == 2
    good = REPO / "evals" / "innaxe.yaml"
    assert main([str(good), "--corpus", str(tmp_path / "nowhere")]) == 2
    assert main([str(good), "--limit", "0"]) == 2


# --- end to end through the real assistant -------------------------------------------------------

TINY_SET = """\
name: tiny
corpus: docs
questions:
  - id: leave
    question: How many days of annual leave do staff get?
    reference_answer: 25 days per year.
    answer_must_include: [["25"]]
    sources: [leave.md]
  - id: carry-over
    history:
      - role: user
        content: How many days of annual leave do staff get?
      - role: assistant
        content: Staff get 25 days of annual leave per year [1].
    question: Until when can unused days be carried over?
    reference_answer: Until 31 March.
    reference_contexts: ["Unused days can be carried over until 31 March of the next year."]
  - id: trains
    question: Which transport is preferred for journeys under 500 km?
    reference_answer: Train travel.
    answer_must_include: [["train"]]
    sources: [travel.txt]
  - id: parking
    question: What is the salary of the chief financial officer?
    answerable: false
"""


@pytest.fixture
def tiny_set(tmp_path) -> Path:
    docs = tmp_path / "set" / "docs"
    docs.mkdir(parents=True)
    (docs / "leave.md").write_text(
        "# Annual leave\n\nStaff get 25 days of annual leave per year. "
        "Unused days can be carried over until 31 March of the next year.\n",
        encoding="utf-8",
    )
    (docs / "travel.txt").write_text(
        "Travel expenses are reimbursed within 30 days of the claim. "
        "Train travel is preferred for journeys under 500 km.\n",
        encoding="utf-8",
    )
    path = tmp_path / "set" / "tiny.yaml"
    path.write_text(TINY_SET, encoding="utf-8")
    return path


def test_cli_end_to_end_with_baseline_and_gate(tiny_set, tmp_path, monkeypatch, output_dir):
    user_data = tmp_path / "user-data"
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(user_data))
    monkeypatch.setenv("ASSISTANT_ANSWER_MODE", "extractive")
    first = output_dir / "first"
    assert main([str(tiny_set), "--out", str(first), "--fail-under", "answered_when_answerable=0.1"]) == 0
    assert not user_data.exists()  # the temporary index, never the user's data dir

    data = json.loads((first / "report.json").read_text(encoding="utf-8"))
    assert data["counts"] == {**data["counts"], "questions": 4, "unanswerable": 1, "follow_ups": 1}
    assert data["corpus"]["documents"] == 2 and data["corpus"]["isolated"] is True
    assert "openai_api_key" not in data["settings"]
    by_id = {r["id"]: r for r in data["results"]}
    leave = by_id["leave"]
    assert leave["passages"] and leave["passages"][0]["source"] in ("leave.md", "travel.txt")
    assert {"hit_at_k", "mrr", "must_include", "f1", "semantic_similarity"} <= set(leave["metrics"])
    assert leave["timings"]["total_s"] > 0 and leave["timings"]["first_token_s"] is not None
    assert by_id["carry-over"]["history"][0]["role"] == "user"
    assert "must_include" not in by_id["parking"]["metrics"]
    for name in ("hit_at_k", "mrr", "semantic_similarity", "answered_when_answerable", "total_p95_s"):
        assert data["summary"][name] is not None, name
    assert 0.0 <= data["summary"]["semantic_similarity"] <= 1.0

    second = output_dir / "second"
    code = main(
        [
            str(tiny_set),
            "--out",
            str(second),
            "--baseline",
            str(first / "report.json"),
            "--fail-under",
            "must_include=1.01",
            "--concurrency",
            "1",
        ]
    )
    assert code == 1  # no score can reach 1.01: the gate fails
    again = json.loads((second / "report.json").read_text(encoding="utf-8"))
    assert again["baseline"]["same_corpus"] and again["baseline"]["same_questions"]
    assert "Compared with" in (second / "report.md").read_text(encoding="utf-8")


def test_openai_mode_is_judged_by_the_configured_model(tiny_set, make_settings, fake_openai):
    quoting = QuotingModel()

    def reply(body: dict) -> str:
        if "grading the answer" in system_text(body):
            return 'Here: {"correctness": 4, "faithfulness": 0.5, "reason": "close"}'
        return quoting(body)

    fake_openai.reply = reply
    settings = make_settings(
        answer_mode="openai", openai_base_url=fake_openai.base_url, chat_model="judge-me"
    )
    seen: list[tuple[int, int]] = []
    report = run_evaluation(tiny_set, settings, limit=3, progress=lambda d, t, q: seen.append((d, t)))
    assert report.mode == "openai" and report.model == "judge-me"
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert report.summary["judge_correctness"] == 0.75  # (4 - 1) / 4
    assert report.summary["judge_faithfulness"] == 0.5
    judged = [b for b in fake_openai.chat_requests() if "grading the answer" in system_text(b)]
    assert len(judged) == 3 and {b["model"] for b in judged} == {"judge-me"}
    # in JSON mode, bounded, and the report says how many replies could be read
    assert all(b["response_format"] == {"type": "json_object"} and b["max_tokens"] == 300 for b in judged)
    assert "judge: 3 of 3 replies valid" in report.notes
    assert report.paths == {}  # no out_dir: nothing written


def test_a_judge_without_json_mode_is_asked_without_it_and_bad_replies_are_counted(
    tiny_set, make_settings, fake_openai
):
    quoting, graded = QuotingModel(), []

    def reply(body: dict) -> str:
        if "grading the answer" not in system_text(body):
            return quoting(body)
        graded.append(body)
        return "Looks fine to me." if len(graded) == 1 else '{"correctness": 5, "faithfulness": 1.0}'

    fake_openai.reply, fake_openai.json_mode = reply, False
    settings = make_settings(answer_mode="openai", openai_base_url=fake_openai.base_url)
    report = run_evaluation(tiny_set, settings, limit=3, concurrency=1)
    assert "judge: 2 of 3 replies valid" in report.notes
    assert report.summary["judge_faithfulness"] == 1.0
    assert all("response_format" not in b for b in graded)  # refused once (400), then never sent
    refused = [b["response_format"]["type"] for b in fake_openai.chat_requests() if "response_format" in b]
    # the answerer's two ways of asking for a schema, then the judge's JSON mode, each refused once
    assert refused == ["json_schema", "json_object", "json_object"]
    assert sum("not JSON" in r.judge_reason for r in report.results) == 1


def test_without_a_corpus_the_current_index_is_used(tiny_set, make_settings, tmp_path):
    from ingest.pipeline import ingest

    settings = make_settings(corpus_dir=tiny_set.parent / "docs")
    assert not ingest(None, settings).failed
    no_corpus = tmp_path / "no-corpus.yaml"
    no_corpus.write_text(TINY_SET.replace("corpus: docs\n", ""), encoding="utf-8")
    report = run_evaluation(no_corpus, settings, out_dir=tmp_path / "out", limit=1, concurrency=1)
    assert report.corpus["isolated"] is False and report.corpus["documents"] == 2
    assert str(settings.data_dir) in report.corpus["dir"]
    assert Path(report.paths["html"]).is_file()
    assert [r.id for r in report.results] == ["leave"]


def test_judge_reply_parsing():
    j = parse_judgement('```json\n{"correctness": 5, "faithfulness": 1, "reason": "ok"}\n```')
    assert (j.correctness, j.faithfulness, j.reason, j.error) == (1.0, 1.0, "ok", None)
    j = parse_judgement('{"correctness": null, "faithfulness": 1.7}', has_reference=False)
    assert (j.correctness, j.faithfulness) == (None, 1.0)
    assert parse_judgement("I think it is fine").error
    assert parse_judgement('{"correctness": "high"}').error


def test_the_old_command_still_runs_with_a_deprecation_note():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "assistant.evaluation", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0
    assert "deprecated; use `python -m evaluation`" in out.stderr
    assert out.stdout.startswith("usage: python -m evaluation")


def with_unanswerable(tiny_set: Path, name: str, question: str) -> Path:
    """The tiny set under another name, its unanswerable question replaced by ``question``."""
    path = tiny_set.parent / f"{name}.yaml"
    text = TINY_SET.replace("name: tiny", f"name: {name}")
    path.write_text(
        text.replace("What is the salary of the chief financial officer?", question), encoding="utf-8"
    )
    return path


def test_invented_answers_are_counted_as_flagged_not_as_answers(
    tiny_set, make_settings, fake_openai, tmp_path
):
    quoting = QuotingModel()
    questions = with_unanswerable(tiny_set, "invented", "How many days of annual leave do interns get?")

    def reply(body: dict) -> str:
        if "interns" in question_in(body):  # the unanswerable one: an invention that cites [1]
            return "Interns get 40 days of annual leave, approved by Mr Schmidt [1]."
        return quoting(body)

    fake_openai.reply = reply
    settings = make_settings(answer_mode="openai", openai_base_url=fake_openai.base_url)
    report = run_evaluation(questions, settings, out_dir=tmp_path / "out", concurrency=1, judge=False)
    s, c = report.summary, report.counts
    invented = next(r for r in report.results if r.id == "parking")
    assert not invented.declined and invented.verdict == "unverified"
    assert invented.unsupported == ["Interns get 40 days of annual leave, approved by Mr Schmidt [1]."]
    assert s["declined_when_unanswerable"] == 0.0 and s["declined_or_flagged_when_unanswerable"] == 1.0
    assert s["answered_verified_when_answerable"] == 1.0
    assert c["verdict_unverified"] == 1 and c["verdict_supported"] == 3
    markdown = Path(report.paths["md"]).read_text(encoding="utf-8")
    assert "3 answers supported, 0 partly supported, 1 unverified" in markdown
    assert "answer (unverified): Interns get 40 days" in markdown


def test_an_unsure_offline_answer_counts_as_flagged_and_the_report_says_why(
    tiny_set, make_settings, tmp_path
):
    questions = with_unanswerable(
        tiny_set, "unsure", "How many days of annual leave do staff get in Vladivostok?"
    )
    report = run_evaluation(questions, make_settings(answer_mode="extractive"), out_dir=tmp_path / "out")
    unsure = next(r for r in report.results if r.id == "parking")
    assert not unsure.declined and unsure.uncertain and unsure.flagged
    assert unsure.reason == "the passages do not mention “Vladivostok”"
    assert report.summary["declined_when_unanswerable"] == 0.0
    assert report.summary["declined_or_flagged_when_unanswerable"] == 1.0
    markdown = Path(report.paths["md"]).read_text(encoding="utf-8")
    assert (
        "answer (unsure: the passages do not mention “Vladivostok”): I could not find a sure answer"
        in markdown
    )


def test_a_sentence_that_only_says_what_is_missing_is_no_claim_to_ground():
    passage = {1: "Project Alpha installs solar water pumps in rural clinics in Kenya."}
    unsure = (
        "I could not find a sure answer in the documents. "
        "The closest passage says: Project Alpha installs solar water pumps in rural clinics. [1]"
    )
    # the framing ("... The closest passage says:") is no claim either: only the quote is checked
    assert [s for s, _ in m.answer_sentences(unsure)] == [
        "Project Alpha installs solar water pumps in rural clinics."
    ]
    assert m.groundedness(unsure, passage) == 1.0
    row = f"{UNSURE_MESSAGE} Participants in co-creation activities | 79 [1]"  # a short table row
    assert m.groundedness(row, {1: "Activity | Result\nParticipants in co-creation activities | 79"}) == 1.0
    invented = "The documents say little. Project Alpha builds bridges in Peru. [1]"
    assert m.groundedness(invented, passage) == 0.0
