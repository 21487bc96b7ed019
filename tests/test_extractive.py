"""The offline answerer: picks the sentence that answers, cites it, declines without evidence,
and turns follow-ups into standalone questions. Real MiniLM embeddings throughout."""

from __future__ import annotations

import json
import re

import pytest

from assistant.answer_types import defined, defines, expected_type
from assistant.extractive import (
    CLOSEST_MESSAGE,
    DECLINE_MESSAGE,
    UNSURE_MESSAGE,
    ExtractiveAnswerer,
    answer_from_passages,
    key_terms,
    split_sentences,
)
from assistant.followups import condense
from assistant.models import Confidence, Passage
from assistant.prompts import DECLINE_TEXT
from kb.embeddings import MiniLMEmbeddings
from tests.conftest import EVAL_DATA, passage


@pytest.fixture(scope="module")
def embeddings() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


BACKUPS = passage(
    1,
    "The platform team runs the nightly jobs. Database backups are kept for 35 days in the "
    "Frankfurt bucket. Restores are requested through the service desk and take about two hours.",
)
ONBOARDING = passage(
    2,
    "New employees get their laptop on the first day. Accounts for the wiki and the chat are "
    "created by the IT helpdesk. The onboarding buddy explains the expense policy.",
    score=0.3,
)
TRAVEL = passage(
    3,
    "Travel must be booked through the Orbit portal. Flights longer than six hours may be booked "
    "in premium economy. Hotel costs are reimbursed up to the city limit.",
    score=0.35,
)


def markers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


# --- answering --------------------------------------------------------------------------------


def test_picks_the_sentence_that_answers(embeddings):
    r = answer_from_passages("How long are database backups kept?", [BACKUPS, ONBOARDING, TRAVEL], embeddings)
    assert not r.declined
    assert "35 days" in r.text
    assert markers(r.text) == {1}
    assert "35 days" in r.quotes[1]
    assert "laptop" not in r.text and "Orbit" not in r.text


def test_answer_comes_from_whichever_passage_holds_it(embeddings):
    r = answer_from_passages(
        "Which portal is travel booked through?", [BACKUPS, ONBOARDING, TRAVEL], embeddings
    )
    assert not r.declined
    assert "Orbit portal" in r.text
    assert 3 in markers(r.text)
    assert 0.0 <= r.confidence <= 1.0


def test_markers_and_quotes_refer_to_passage_numbers(embeddings):
    renumbered = [BACKUPS.model_copy(update={"n": 7}), TRAVEL.model_copy(update={"n": 4})]
    r = answer_from_passages("How long are database backups kept?", renumbered, embeddings)
    assert not r.declined
    assert markers(r.text) <= {4, 7} and 7 in markers(r.text)
    assert set(r.quotes) <= {4, 7}
    for n, quote in r.quotes.items():
        source = next(p for p in renumbered if p.n == n)
        assert all(sentence in source.text for sentence in split_sentences(quote))
    for sentence, n in r.sentences:  # every sentence of the answer is followed by its marker
        assert f"{sentence} [{n}]" in r.text


def unsure(r) -> bool:
    """Shown as the closest passage, marked as unsure: never as a sure answer."""
    return not r.declined and r.uncertain and r.text.startswith(UNSURE_MESSAGE) and len(r.sentences) == 1


def test_a_key_name_the_passages_lack_makes_the_answer_unsure_and_says_which(embeddings):
    r = answer_from_passages(
        "How long does the Zephyrine archive keep its backups?", [BACKUPS, ONBOARDING], embeddings
    )
    assert unsure(r) and r.reason == "the passages do not mention “Zephyrine”"
    assert r.text == f"{UNSURE_MESSAGE} {r.sentences[0][0]} [{r.sentences[0][1]}]"
    sure = answer_from_passages("How long are database backups kept?", [BACKUPS, ONBOARDING], embeddings)
    assert not sure.declined and not sure.uncertain and sure.reason == ""


def test_a_year_the_passages_lack_makes_the_answer_unsure(embeddings):
    p = passage(1, "The Duchy of Normandy began in 911 as a fiefdom. It was established by treaty.")
    sure = answer_from_passages("When did the Duchy of Normandy begin?", [p], embeddings)
    assert not sure.declined and not sure.uncertain and "911" in sure.text
    r = answer_from_passages("What duchy began in 1204 as a fiefdom?", [p], embeddings)
    assert unsure(r) and "“1204”" in r.reason


def test_a_question_whose_kind_of_answer_the_sentence_lacks_is_unsure(embeddings):
    p = passage(1, "The steering committee approves the travel budget of every project team.")
    r = answer_from_passages("When does the steering committee approve the travel budget?", [p], embeddings)
    assert unsure(r) and r.reason == "the closest sentence names no date"


def test_weak_evidence_about_a_name_the_passage_holds_is_unsure_not_declined(embeddings):
    # a passage on many things scores low for a question about one person in it
    p = unrelated(
        passage(
            1,
            "The consortium met in Sofia. Budgets were reported to the board. Karen Lindegaard is the "
            "international programme manager at Danish Life Science Cluster. The survey got 91 answers.",
        ),
        0.2,
    )
    r = answer_from_passages("What is Karen Lindegaard's role?", [p], embeddings)
    assert unsure(r) and "programme manager" in r.text and r.confidence < 0.29
    assert r.reason == "the passages do not mention “role”"
    # without a name of the question in the passage, or when a check fails, the same evidence declines
    assert answer_from_passages("What is Jens Madsen's role?", [p], embeddings).declined
    assert answer_from_passages("When did Karen Lindegaard join the cluster?", [p], embeddings).declined


REVIEW = passage(
    1,
    "Security review 2025\n\nThe review found three problems:\n- backups were never restored in a test,\n"
    "- two servers ran unsupported software,\n- the on-call rota had gaps at weekends.\n\n"
    "The next review is planned for May.",
)
HERON = passage(
    2,
    "Project Heron\n\nProject Heron is funded by the regional council. Project Heron, a three-year "
    "programme to replace the billing system, started in March.",
)


def test_an_introduction_comes_with_the_list_it_introduces(embeddings):
    r = answer_from_passages("What problems did the security review find?", [REVIEW], embeddings)
    assert not r.declined
    items = ["backups were never restored", "unsupported software", "on-call rota"]
    assert all(item in r.text for item in items), r.text
    assert "next review" not in r.text  # the list ends where its items end
    for item in items:  # each item on a line of its own, cited: a list in the chat's Markdown
        assert re.search(rf"\n- [^\n]*{item}[^\n]* \[1\]", r.text), r.text
    assert not r.text.startswith("Security review 2025")  # a heading says nothing
    # a slide's list has no markers: its short lines after "...:" are the items
    slide = passage(
        2, "The review board\n\nBoard members:\nAnna Berg\nJonas Holm\nEva Lind\n\nNotes: it meets monthly."
    )
    r = answer_from_passages("List the board members.", [slide], embeddings)
    assert r.text.startswith("Board members: [2]\nAnna Berg [2]\nJonas Holm [2]\nEva Lind [2]"), r.text
    assert "monthly" not in r.text


def test_a_heading_that_only_repeats_the_question_is_not_the_answer(embeddings):
    r = answer_from_passages("What is Project Heron?", [HERON], embeddings)
    assert not r.declined
    assert not re.match(r"(\*\*[^*]+\*\* — )?Project Heron \[2\]", r.text), r.text


def test_what_is_x_is_answered_by_the_sentence_that_says_what_x_is(embeddings):
    r = answer_from_passages("What is Project Heron?", [HERON], embeddings)
    assert "three-year programme to replace the billing system" in r.text, r.text
    assert not r.uncertain  # "What is Project ..." asks what it is, not for the name of a project
    assert "regional council" not in r.text
    assert defined("What is Project Heron?") == "Project Heron"
    assert defined("Who was Rollo?") == "Rollo"
    for other in ("What is in the executive summary?", "What is the project about?", "What was it called?"):
        assert defined(other) is None, other
    assert defines("Karen Lindegaard, international programme manager at DLSC", "Karen Lindegaard")
    assert not defines("Project Heron is funded by the regional council.", "Project Heron")
    assert not defines("BIOCAT, Medicen Paris Region and BioRN", "BIOCAT")


def test_requests_and_verbs_about_documents_are_not_key_terms():
    assert [t.text for t in key_terms("List the partners.")] == ["partners"]
    assert [t.text for t in key_terms("Please describe the rollout plan")] == ["rollout", "plan"]
    assert [t.text for t in key_terms("What do the guidelines cover?")] == ["guidelines"]
    # the same words as the topic of a question still count
    assert "list" in [t.text for t in key_terms("Who keeps the waiting list?")]


def test_weak_evidence_that_holds_every_word_of_the_question_is_unsure_not_declined(embeddings):
    # a long scanned page on several things scores low as a whole for a question on one of them
    p = unrelated(
        passage(
            1,
            "Guidelines and executive summary. The consortium analysed which actions create value. "
            "The results are compiled in the guidelines. The analysis can be downloaded for free. "
            "Executive summary: nine activities for long-term collaboration.",
        ),
        0.2,
    )
    r = answer_from_passages("Can I download the analysis?", [p], embeddings)
    assert unsure(r) and "can be downloaded for free" in r.text
    assert answer_from_passages("Can I download the budget?", [p], embeddings).declined


def unrelated(p: Passage, cosine: float = 0.1) -> Passage:
    """The passage as the retriever scores it for an unrelated question (cosine ~0.1)."""
    return p.model_copy(update={"score": cosine, "dense_score": cosine})


def test_off_topic_question_is_declined_with_a_clear_message(embeddings):
    r = answer_from_passages(
        "What is a good recipe for banana bread?", [unrelated(BACKUPS), unrelated(TRAVEL)], embeddings
    )
    assert r.declined
    assert r.text.startswith(DECLINE_TEXT)  # the core recognises a decline by this sentence
    assert r.confidence < 0.5


def test_decline_mentions_closest_passages_only_when_something_is_related(embeddings):
    related = answer_from_passages(
        "How long are Zephyrine backups kept in Oslo?", [unrelated(BACKUPS, 0.35)], embeddings
    )
    assert related.declined and "“Zephyrine”" in related.reason
    assert CLOSEST_MESSAGE in related.text
    nothing = answer_from_passages("Who won the 1998 football world cup?", [unrelated(BACKUPS)], embeddings)
    assert nothing.declined
    assert CLOSEST_MESSAGE not in nothing.text
    empty = answer_from_passages("How long are backups kept?", [], embeddings)
    assert empty.declined and empty.text == DECLINE_MESSAGE


def test_answerer_streams_the_same_answer(embeddings):
    answerer = ExtractiveAnswerer(embeddings)
    assert (answerer.mode, answerer.model) == ("extractive", "")
    question = "How long are database backups kept?"
    confidence, *deltas = answerer.stream(question, [BACKUPS, ONBOARDING])
    expected = answer_from_passages(question, [BACKUPS, ONBOARDING], embeddings)
    assert len(deltas) >= 1 and all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == expected.text
    assert isinstance(confidence, Confidence) and confidence == round(expected.confidence, 4) > 0.5
    low, *declined = answerer.stream("What is a good recipe for banana bread?", [unrelated(BACKUPS)])
    assert "".join(declined).startswith(DECLINE_TEXT) and low < confidence


def test_squad_examples(embeddings):
    """Two real SQuAD 2.0 questions on their paragraph: one answerable, one written to look so."""
    data = json.loads((EVAL_DATA / "squad_normans" / "squad2_dev_normans.json").read_text())
    para = data["data"][0]["paragraphs"][3]["context"]
    p = passage(1, para, score=0.6, source="normans.txt")
    answered = answer_from_passages("When was the Duchy of Normandy founded?", [p], embeddings)
    assert not answered.declined and not answered.uncertain and "911" in answered.text
    tricked = answer_from_passages("What treaty was established in the 9th century?", [p], embeddings)
    assert unsure(tricked) and "“9th”" in tricked.reason


# --- pieces -----------------------------------------------------------------------------------


def test_sentences_keep_abbreviations_together():
    text = "Dr. Smith met St. John at 9 a.m. on Monday. He left early. The end"
    assert split_sentences(text) == [
        "Dr. Smith met St. John at 9 a.m. on Monday.",
        "He left early.",
        "The end",
    ]


def test_a_citation_marker_stays_with_the_sentence_it_follows():
    assert split_sentences("Sicily was founded. [1] In 1066 William conquered England. [2]") == [
        "Sicily was founded. [1]",
        "In 1066 William conquered England. [2]",
    ]
    assert split_sentences("It was co-financed. [2]") == ["It was co-financed. [2]"]
    assert split_sentences("It was founded.[3] The city grew.") == ["It was founded.[3]", "The city grew."]
    # an essay's footnote mark closes its sentence, even with no space before the next one
    assert split_sentences("It was banned. [4]The second reason.") == [
        "It was banned. [4]",
        "The second reason.",
    ]


def test_headings_split_but_a_wrapped_quoted_title_does_not():
    text = (
        "Results\nThe consortium met.\n\nThe results are compiled in the 'Guidelines for Ecosystem\n"
        "Monitoring and Impact Evaluation Results'. The analysis is free.\n\nPartners:\nBIOCAT\nBioRN"
    )
    assert split_sentences(text) == [
        "Results",
        "The consortium met.",
        "The results are compiled in the 'Guidelines for Ecosystem Monitoring and Impact Evaluation Results'.",
        "The analysis is free.",
        "Partners:",  # what introduces a list stands apart from it
        "BIOCAT",
        "BioRN",
    ]


def test_key_terms_and_answer_types():
    terms = {t.text: t for t in key_terms("When did Robert Guiscard besiege Dyrrachium in 1081?")}
    assert {"Robert", "Guiscard", "besiege", "Dyrrachium", "1081"} <= set(terms)
    assert terms["1081"].kind == "number" and terms["Dyrrachium"].kind == "name"
    assert terms["Dyrrachium"].weight > terms["besiege"].weight
    assert expected_type("When did it start?") == "date"
    assert expected_type("How many people work here?") == "number"
    assert expected_type("Who approves expenses?") == "name"
    assert expected_type("Where is the office?") == "place"
    assert expected_type("What is the policy?") is None
    assert expected_type("What is Project Heron?") is None
    assert expected_type("Which EU project runs it?") == "name"
    # "which EU programme": the noun after the name is the kind of answer asked for, not a topic
    assert [t.text for t in key_terms("Under which EU programme does INNAXE run?")] == ["EU", "INNAXE", "run"]
    assert expected_type("Under which EU programme does INNAXE run?") == "name"


# --- follow-ups -------------------------------------------------------------------------------


def turns(*questions: str) -> list[dict]:
    out: list[dict] = []
    for q in questions:
        out += [{"role": "user", "content": q}, {"role": "assistant", "content": "An answer [1]."}]
    return out


def test_condense_resolves_it_they_and_there():
    assert condense("When was it made?", turns("What is the Bayeux Tapestry?")) == (
        "When was the Bayeux Tapestry made?"
    )
    assert condense("What did they build?", turns("Who were the Normans?")) == "What did the Normans build?"
    resolved = condense("When did they arrive there?", turns("Did the Normans invade Ireland?"))
    assert "Normans" in resolved and "Ireland" in resolved and "there" not in resolved
    assert "backup policy" in condense(
        "What is its retention period?", turns("How does the backup policy work?")
    )


@pytest.mark.parametrize(
    ("previous", "question", "standalone"),
    [
        # a question word alone asks the previous question again
        (
            "Where did the partners present the results?",
            "And when?",
            "When did the partners present the results?",
        ),
        (
            "When did the partners present the results?",
            "Where?",
            "Where did the partners present the results?",
        ),
        ("Did the consortium run a survey?", "When?", "When did the consortium run a survey?"),
        # a question phrase without a verb takes the previous question's place
        (
            "How many topics does the Joint Programme have?",
            "For how long?",
            "For how long does the Joint Programme have?",
        ),
        ("What is the Joint Programme?", "How many topics?", "How many topics is the Joint Programme?"),
        ("Which year did BioRN join?", "And which city?", "Which city did BioRN join?"),
        ("Where is BIOCAT based?", "What?", "What?"),  # asks to repeat: nothing to fill in
        ("BioRN joined the consortium?", "Why?", "Why BioRN joined the consortium?"),
        # "what about" / "and" before a noun phrase: the same question about it
        ("Where is BIOCAT based?", "What about BioRN?", "Where is BioRN based?"),
        ("Where is BIOCAT based?", "And BioRN?", "Where is BioRN based?"),
        (
            "When does the INNAXE project end?",
            "How about the Joint Programme?",
            "When does the Joint Programme end?",
        ),
        # questions of their own: only their pronouns are resolved
        ("Where is BIOCAT based?", "And when was it founded?", "And when was BIOCAT founded?"),
        ("Where is BIOCAT based?", "And is it a partner?", "And is BIOCAT a partner?"),
        ("Where is BIOCAT based?", "Thanks!", "Thanks!"),
        ("Where is BIOCAT based?", "And then?", "And then?"),
    ],
)
def test_condense_fills_in_elliptical_follow_ups(previous, question, standalone):
    assert condense(question, exchange(previous, "An answer [1].")) == standalone


def test_elliptical_follow_ups_chain():
    history = exchange("Where did the partners present the results?", "At the conference [1].")
    history += exchange("And when?", "In June 2024 [1].")
    assert condense("And why?", history) == "Why did the partners present the results?"


def exchange(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def test_condense_takes_he_she_it_from_what_the_answer_named_when_one_was_asked_for():
    after = exchange("Who conquered England in 1066?", "Duke William II of Normandy [1].")
    assert condense("Which king did he kill?", after) == "Which king did Duke William II of Normandy kill?"
    after = exchange("What is the most famous work of Norman art?", "The Bayeux Tapestry, an embroidery [1].")
    assert condense("Who commissioned it?", after) == "Who commissioned the Bayeux Tapestry?"
    after = exchange("Which Scottish king introduced Norman culture?", "King David I of Scotland [1].")
    assert (
        condense("Whom had his brother married?", after)
        == "Whom had King David I of Scotland's brother married?"
    )
    # a question about someone keeps its subject: the answer only describes them
    after = exchange("Who is Karen Lindegaard?", "The programme manager at Danish Life Science Cluster [1].")
    assert condense("What does she say?", after) == "What does Karen Lindegaard say?"
    after = exchange(
        "What is Karen Lindegaard's role?", "Programme manager at Danish Life Science Cluster [1]."
    )
    assert condense("Where is her office?", after) == "Where is Karen Lindegaard's office?"
    # "they" is what the question was about, with its noun phrase
    after = exchange("Who are the partners of the INNAXE consortium?", "BIOCAT, BioRN and four more [1].")
    assert condense("When did they present the results?", after) == (
        "When did the partners of the INNAXE consortium present the results?"
    )
    after = exchange(
        "When was the customary law of Normandy developed?", "Between the 10th and 13th centuries [1]."
    )
    assert (
        condense("Where does it survive today?", after)
        == "Where does the customary law of Normandy survive today?"
    )
    after = exchange("What does the backup policy say?", "Backups are kept for 30 days [1].")
    assert condense("Are those rules strict?", after) == "Are the rules of the backup policy strict?"
    # after "the", a name qualifies the noun that follows it, whatever comes next
    after = exchange("Did the INNAXE consortium run a survey?", "Yes, a joint survey [1].")
    assert (
        condense("How many responses did it get?", after)
        == "How many responses did the INNAXE consortium get?"
    )
    after = exchange("Did Rollo sign the treaty?", "Yes [1].")
    assert condense("When did he die?", after) == "When did Rollo die?"
    # a count or a date names nothing to refer to; a record's labels and an ACRONYM are no person
    after = exchange(
        "How many responses did the joint survey get?", "**91** — 91 responses from European SMEs [1]."
    )
    assert condense("Who answered it?", after) == "Who answered the joint survey?"
    after = exchange(
        "Who is the programme manager of Danish Life Science Cluster?",
        "Partner: Danish Life Science Cluster; Consortium: INNAXE; Karen Lindegaard is its programme manager [1].",
    )
    assert condense("What does she say?", after) == "What does Karen Lindegaard say?"


def test_a_follow_up_is_answered_by_what_the_user_asked_not_by_who_it_was_about(embeddings):
    """The rewrite names who "they" are; the user asked when they presented. The sentence that
    describes the consortium matches the rewrite better; the user's own words pick the answer."""
    p = passage(
        1,
        "The Orbit consortium consists of four partners: Acme, Globex, Initech and Umbrella. "
        "The consortium runs a shared laboratory in Leiden. "
        "The four partners met and presented the project's results at the Lisbon summit in May 2023.",
    )
    rewrite = "When did the partners of the Orbit consortium present the results?"
    as_rewritten = answer_from_passages(rewrite, [p], embeddings)
    assert as_rewritten.uncertain and "May 2023" not in as_rewritten.text
    r = answer_from_passages(rewrite, [p], embeddings, asked="When did they present the results?")
    assert not r.uncertain and r.lead == "May 2023"
    assert r.text.startswith("**May 2023** — The four partners met and presented")
    weights = {t.text: t.weight for t in key_terms(rewrite, asked="When did they present the results?")}
    assert weights["consortium"] < weights["results"]


def test_condense_leaves_standalone_questions_alone():
    history = turns("Who were the Normans?")
    assert condense("Who founded Normandy?", history) == "Who founded Normandy?"  # no pronoun
    assert condense("What did Rollo do there?", history) == "What did Rollo do there?"  # own subject
    assert condense("Is there a limit?", turns("How do I reset my password?")) == "Is there a limit?"
    assert condense("When was it made?", []) == "When was it made?"


def test_condense_uses_user_questions_not_answers_or_sources():
    history = [
        {"role": "user", "content": "What is the Bayeux Tapestry?"},
        {"role": "assistant", "content": "An embroidery commissioned by Bishop Odo [1]."},
        {"role": "assistant", "content": "Sources:\n[1] normans.txt"},
    ]
    assert condense("Who made it?", history) == "Who made the Bayeux Tapestry?"
    chain = turns("Who were the Normans?", "Where did they come from?")
    assert "Normans" in condense("What was their religion?", chain)


# --- through the real pipeline ----------------------------------------------------------------


def test_assistant_in_extractive_mode_answers_cites_and_declines(make_settings):
    """Two tiny documents ingested for real; the core sees the answerer's declines and markers."""
    from assistant.core import Assistant
    from ingest.pipeline import ingest

    settings = make_settings(answer_mode="extractive")
    (settings.corpus_dir / "backups.txt").write_text(BACKUPS.text + "\n", encoding="utf-8")
    (settings.corpus_dir / "travel.txt").write_text(TRAVEL.text + "\n", encoding="utf-8")
    assert not ingest(None, settings).failed
    assistant = Assistant.from_settings(settings)

    answer = assistant.ask("How long are database backups kept?")
    assert not answer.declined and answer.mode == "extractive"
    assert "35 days" in answer.text
    assert answer.citations and answer.citations[0].passage.source.endswith("backups.txt")

    follow_up = assistant.ask(
        "Where are they stored?",
        [
            {"role": "user", "content": "How long are database backups kept?"},
            {"role": "assistant", "content": answer.text},
        ],
    )
    assert "backups" in follow_up.standalone_question.lower()

    off_topic = assistant.ask("Which team won the 1998 football world cup?")
    assert off_topic.declined and not off_topic.citations


def test_an_acronym_is_held_by_the_words_it_abbreviates(embeddings):
    p = passage(1, "INNAXE is a Horizon Europe project co-financed by the European Union.")
    r = answer_from_passages("Which EU programme co-finances INNAXE?", [p], embeddings)
    assert "“EU”" not in r.reason
    unknown = answer_from_passages("Which UN programme co-finances INNAXE?", [p], embeddings)
    assert unsure(unknown) and "“UN”" in unknown.reason


def test_the_words_an_acronym_abbreviates_do_not_answer_a_question_that_uses_it(embeddings):
    funder = passage(1, "INNAXE is co-financed by the European Union. Its partners meet twice a year.")
    programme = passage(2, "INNAXE, a Horizon Europe (EIE) project co-financed by the European Union")
    r = answer_from_passages("Under which EU programme does INNAXE run?", [funder, programme], embeddings)
    assert not r.declined and r.lead == "Horizon Europe" and r.sentences[0][1] == 2
