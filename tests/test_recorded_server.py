"""A real model server's answers, replayed (``tests/recordings/``, made by
``scripts/record_model_server.py`` against llama-cpp-python serving SmolLM2-135M): its habits (a
500 for a ``json_schema`` format, headers at once and then a silent prompt evaluation, answers
without markers, inventions, paraphrased refusals) go through the real client and the whole
assistant. The promise under test: nothing is shown as an ordinary answer unless one of its
sentences is held by a passage it cites; everything else is declined or marked unverified."""

from __future__ import annotations

import json
import shutil

import pytest

from assistant.core import Assistant
from assistant.llm import ChatAnswerer
from assistant.models import Answer
from ingest.pipeline import ingest
from tests.conftest import REPO
from tests.fake_openai import question_in, recorded_text

pytest_plugins = ["tests.fake_openai"]

RECORDING = REPO / "tests" / "recordings" / "smollm2-llamacpp.json"
EXCHANGES = json.loads(RECORDING.read_text(encoding="utf-8"))["exchanges"]
QUESTIONS = list(dict.fromkeys((e["kind"], e["question"]) for e in EXCHANGES if e["kind"] != "condense"))


@pytest.fixture
def article_assistant(make_settings, fake_openai):
    def make(structured: str) -> Assistant:
        settings = make_settings(
            answer_mode="openai",
            openai_base_url=fake_openai.base_url,
            chat_model="smollm2",
            structured_answers=structured,
            request_timeout_s=30,
        )
        shutil.copy(REPO / "corpus" / "innaxe-cluster-collaboration-results.txt", settings.corpus_dir)
        assert not ingest(None, settings).failed
        fake_openai.replay = EXCHANGES
        return Assistant.from_settings(settings)

    return make


def checked(answer: Answer) -> bool:
    """Declined, marked unverified, or holding a cited sentence its passages hold."""
    held = any(s.supported and s.cites for s in answer.support)
    return answer.declined or answer.verdict == "unverified" or (bool(answer.citations) and held)


@pytest.mark.parametrize("structured", ["off", "auto"])
def test_recorded_answers_are_declined_flagged_or_held_by_their_citations(
    structured, article_assistant, fake_openai
):
    assistant = article_assistant(structured)
    outcomes = {}
    for kind, question in QUESTIONS:
        answer = assistant.ask(question)
        replayed = [b for b in fake_openai.chat_requests() if question_in(b) == question]
        assert replayed, f"no recorded exchange was asked for {question!r}"
        assert not answer.error, (question, answer.text)
        assert checked(answer), (question, answer.text, answer.verdict)
        if kind == "unanswerable":
            assert answer.declined or answer.verdict == "unverified", (question, answer.text)
        outcomes[question] = "declined" if answer.declined else answer.verdict
    assert len(outcomes) == len(QUESTIONS)
    if structured == "auto":  # the 500 on json_schema was taken for a refusal of that format only
        formats = [(b.get("response_format") or {}).get("type") for b in fake_openai.chat_requests()]
        assert formats[:2] == ["json_schema", "json_object"] and set(formats[2:]) == {"json_object"}


def test_the_recorded_models_rewrite_that_answers_instead_gives_way_to_the_offline_one(
    make_settings, fake_openai
):
    (recorded,) = [e for e in EXCHANGES if e["kind"] == "condense"]
    assert "</conversation>" in recorded_text(recorded)  # it answered, and ran on past its prompt
    fake_openai.replay = EXCHANGES
    settings = make_settings(answer_mode="openai", openai_base_url=fake_openai.base_url, chat_model="smollm2")
    history = [
        {"role": "user", "content": "Who are the partners of the INNAXE consortium?"},
        {"role": "assistant", "content": "Six European partners, among them BIOCAT and BioRN [1]."},
    ]
    rewrite = ChatAnswerer(settings).condense(recorded["question"], history)
    assert len(fake_openai.chat_requests()) == 1
    assert rewrite == "When did the partners of the INNAXE consortium present the results?"
