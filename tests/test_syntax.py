"""The grammar checks behind the extractive decline model (the real spaCy parser), and their
effect on answers: a question that keeps a sentence's words but swaps who does what, or moves a
name to another noun, is declined; the faithful question is answered."""

from __future__ import annotations

import pytest

from assistant.extractive import answer_from_passages
from assistant.syntax import modifier_conflict, role_conflict
from kb.embeddings import MiniLMEmbeddings
from tests.conftest import passage

ACTIVE = "The board appointed the steering committee in March 2021."
PASSIVE = "The steering committee was appointed by the board in March 2021."


@pytest.mark.parametrize("sentence", [ACTIVE, PASSIVE])
def test_swapped_roles_conflict_and_faithful_questions_do_not(sentence):
    assert role_conflict("When did the steering committee appoint the board?", sentence)
    assert role_conflict("Who was appointed by the steering committee?", sentence)
    assert not role_conflict("When did the board appoint the steering committee?", sentence)
    assert not role_conflict("Who appointed the steering committee?", sentence)
    assert not role_conflict("When was the steering committee appointed?", sentence)


def test_do_questions_are_read_right():
    # the small model misparses "Who did the regional culture have ..." unless 'did' is swapped
    effect = "The Normans had a profound effect on the culture of the region."
    assert role_conflict("Who did the regional culture have a profound effect on?", effect)
    assert not role_conflict("Who had a profound effect on the regional culture?", effect)


def test_subject_asked_where_the_sentence_has_the_object():
    hired = "The auditors were hired in 2020 after a public tender."
    assert role_conflict("Whom did the auditors hire?", hired)
    assert not role_conflict("Who hired the auditors?", hired)
    assert not role_conflict("When were the auditors hired?", hired)


def test_opposite_prepositions_conflict():
    moved = "The research team moved to Berlin in 2019."
    assert role_conflict("Who moved from Berlin in 2019?", moved)
    assert not role_conflict("Who moved to Berlin in 2019?", moved)


def test_a_conjoined_verb_shares_the_first_verbs_subject():
    settled = "The Normans settled in the east of Ireland and built many castles."
    assert role_conflict("What castles did Ireland build?", settled)
    assert not role_conflict("What castles did the Normans build?", settled)
    # ... the grammatical subject, also after a passive: 'they' founded it, not the duke
    welcomed = "The monks fled to Italy, where they were welcomed by the duke and founded a monastery."
    assert not role_conflict("What did the monks found?", welcomed)


def test_no_conflict_is_claimed_where_the_parse_cannot_tell():
    # a pronoun could stand for anything
    assert not role_conflict("Did the steering committee appoint the board?", "It appointed the board.")
    # 'co-finances' is split and misparsed by the small model
    assert not role_conflict(
        "And who co-finances the project?", "The project is co-financed by the European Union."
    )
    # a relative pronoun stands for the noun it follows
    assert not role_conflict(
        "How do performance and scalability factors limit the applicability of blockchains?",
        "Performance and scalability are the dominating factors that limit the applicability of "
        "a blockchain platform.",
    )


def test_a_name_or_superlative_moved_to_another_noun_conflicts():
    sentence = "One of the first French engineers to join the team was a German consultant."
    assert modifier_conflict("Who was the first German engineer to join the team?", sentence)
    assert not modifier_conflict("Who was the first French engineer to join the team?", sentence)
    oldest = "The oldest partner of the consortium is ACME."
    assert modifier_conflict("What is the largest partner of the consortium?", oldest)
    assert not modifier_conflict("What is the oldest partner of the consortium?", oldest)


def test_is_reads_both_ways():
    assert not role_conflict(
        "What are the three types of transactions?",
        "There are three types of transactions: transfers, calls and deployments.",
    )
    assert not role_conflict(
        "Why is determination the most important quality in founders?",
        "Determination has turned out to be the most important quality in founders.",
    )


def test_counts_and_sentence_initial_capitals_are_not_names():
    assert not modifier_conflict(
        "What are the three types of notary service?", "Different types of notary service exist."
    )


def test_the_decline_model_uses_the_checks():
    embeddings = MiniLMEmbeddings()
    governance = passage(1, f"{ACTIVE} The committee meets every quarter to review the budget and the risks.")
    swapped = answer_from_passages(
        "When did the steering committee appoint the board?", [governance], embeddings
    )
    assert swapped.declined and swapped.features["role_conflict"] == 1.0
    faithful = answer_from_passages(
        "When did the board appoint the steering committee?", [governance], embeddings
    )
    assert not faithful.declined and "March 2021" in faithful.text

    staff = passage(
        1, "The first Danish engineers joined the project in 2019. A Swedish consultant led the pilot."
    )
    moved = answer_from_passages(
        "When did the first Swedish engineers join the project?", [staff], embeddings
    )
    assert moved.declined and moved.features["modifier_conflict"] == 1.0
    assert not answer_from_passages(
        "When did the first Danish engineers join the project?", [staff], embeddings
    ).declined
