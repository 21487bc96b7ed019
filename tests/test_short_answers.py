"""short_answer: the span of the answering sentence that answers (a date, a count with its noun, a
name or a list of names, a place), or None when the question asks for none or it is unsure."""

from __future__ import annotations

import pytest

from assistant.answer_types import expected_type, has_type, short_answer

INNAXE_MEETING = (
    "The six partners met and presented the project's results in connection with the Spinoff "
    "Bulgaria conference in June 2024."
)
INNAXE_PARTNERS = (
    "The INNAXE consortium consists of six European partners: BIOCAT, Medicen Paris Region, BioRN, "
    "Health & Life Sciences Cluster Bulgaria, Council of European BioRegions and Danish Life Science Cluster."
)
HASTINGS = (
    "In 1066, Duke William II of Normandy conquered England killing King Harold II at the Battle of Hastings."
)
FOUNDED = "The company was founded by Ada Lovelace and Charles Babbage in London in 1843."


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("When were the results presented?", INNAXE_MEETING, "June 2024"),
        ("When was the Battle of Hastings?", HASTINGS, "1066"),
        ("When was the company founded?", FOUNDED, "1843"),
        (
            "What century did the Normans gain their identity?",
            "The Normans gained their identity in the first half of the 10th century.",
            "the 10th century",
        ),
        (
            "When was the treaty signed?",
            "The treaty was signed on 14 October 1066 at Hastings.",
            "14 October 1066",
        ),
        ("When did Herve serve?", "Herve served as a general in the 1050s.", "the 1050s"),
        # two dates: the one after the question's word
        ("When did the war end?", "The war began in 1939 and ended in 1945.", "1945"),
        ("When did the war begin?", "The war began in 1939 and ended in 1945.", "1939"),
    ],
)
def test_dates(question, sentence, expected):
    assert short_answer(question, sentence) == expected


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("How many partners are in the INNAXE consortium?", INNAXE_PARTNERS, "six European partners"),
        (
            "How long did the clusters collaborate?",
            "For two years, Danish Life Science Cluster and 5 other European clusters have collaborated.",
            "two years",
        ),
        ("How much did the project cost?", "The project cost €8 million over three years.", "€8 million"),
        (
            "How many employees does the firm have?",
            "The firm employs 1,200 people in 14 countries.",
            "1,200 people",
        ),
        (
            "How many countries is the firm in?",
            "The firm employs 1,200 people in 14 countries.",
            "14 countries",
        ),
        ("How much did revenue grow?", "Revenue grew by 12 % to $4.5 billion in 2023.", "12 %"),
        # a year is not a count, and "how long" wants a duration
        ("How long did they hold Cyprus?", "From 1192 they held Cyprus for 380 years.", "380 years"),
        ("How many people live in Paris?", "Paris has 2.1 million inhabitants.", "2.1 million inhabitants"),
        # an item's number in a list is no count
        ("How many results are there?", "2) Results: the consortium reached 91 companies.", "91 companies"),
    ],
)
def test_numbers(question, sentence, expected):
    assert short_answer(question, sentence) == expected


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("Who was the duke in the battle of Hastings?", HASTINGS, "Duke William II of Normandy"),
        ("Who founded the company?", FOUNDED, "Ada Lovelace"),
        ("Who were the founders?", FOUNDED, "Ada Lovelace and Charles Babbage"),
        (
            "Who are the partners of the INNAXE consortium?",
            INNAXE_PARTNERS,
            "BIOCAT, Medicen Paris Region, BioRN, Health & Life Sciences Cluster Bulgaria, "
            "Council of European BioRegions and Danish Life Science Cluster",
        ),
        ("Which countries joined?", "France, Germany and Italy joined in 1957.", "France, Germany and Italy"),
        ("Who co-finances INNAXE?", "INNAXE is co-financed by the European Union.", "European Union"),
        ("Who is the CEO of Acme?", "Acme's CEO, Jane Smith, announced the merger.", "Jane Smith"),
        # the agent of the question's verb in the passive, though another name stands nearer
        (
            "Who co-finances the INNAXE project?",
            "INNAXE, a Horizon Europe (EIE) project co-financed by the European Union",
            "European Union",
        ),
        # a place after "in" is not a person; a possessive loses its 's
        (
            "Who stopped Roussel?",
            "Roussel tried to carve out a state in Asia Minor, but was stopped by Alexius Komnenos.",
            "Alexius Komnenos",
        ),
        ("Who was Margaret's brother?", "He married Edgar's sister Margaret.", "Edgar"),
        # a demonym with its noun is the answer; a title alone is not new ("King Harold II")
        ("Who did the Normans join?", "Some Normans joined Turkish forces in Anatolia.", "Turkish forces"),
        # a spreadsheet row read as facts: its field names are not names
        ("Which partner is in the consortium?", "Partner: BIOCAT; Consortium: INNAXE", "BIOCAT"),
        # an acronym in brackets abbreviates the name before it
        (
            "Which programme is the European Union part of?",
            "INNAXE, a Horizon Europe (EIE) project co-financed by the European Union",
            "Horizon Europe",
        ),
        (
            "By whom was the Joint Programme developed?",
            "Result: Years of collaboration the Joint Programme ensures; Figure: 5",
            None,
        ),
    ],
)
def test_names(question, sentence, expected):
    assert short_answer(question, sentence) == expected


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("Where did the monks flee to?", "Several monks fled to southern Italy in 1061.", "southern Italy"),
        ("Where was the company founded?", FOUNDED, "London"),
        (
            "Where are backups kept?",
            "Database backups are kept for 35 days in the Frankfurt bucket.",
            "Frankfurt",
        ),
        ("Where is the Eiffel Tower?", "The Eiffel Tower stands in Paris, France.", "Paris"),
    ],
)
def test_places(question, sentence, expected):
    assert short_answer(question, sentence) == expected


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        # the question already has the only date / name / number
        ("When did the partners meet in June 2024?", "The partners met in June 2024."),
        ("Who did Ada Lovelace work with?", "Ada Lovelace worked on the engine for years."),
        ("How many of the 31 meetings were held?", "The 31 meetings were held online."),
        # the question asks for no date, number, name or place
        ("Why was the company founded?", FOUNDED),
        ("What is INNAXE?", "INNAXE is co-financed by the European Union."),
        # nothing of the asked kind in the sentence
        ("When did it happen?", "It happened a long time ago."),
        ("How many partners are there?", "The partners met in Sofia."),
        ("Who approves travel requests?", "Travel requests are approved by the line manager."),
        # a lone adjective is no name
        ("Who is the programme manager?", "The cluster received the highest European recognition."),
        # a demonym with its noun answers who, not where
        ("Where was the fortress?", "The fortress fell again to Byzantine hands."),
        # two names and none of the question's words to choose between them by
        ("Who won the final?", "In Paris, Alice Brown beat Bob Stone."),
        # a year is no count nor a duration
        (
            "How long will the partners continue?",
            "Although the project ends in June 2024, the partners continue.",
        ),
    ],
)
def test_none_when_unsure(question, sentence):
    assert short_answer(question, sentence) is None


@pytest.mark.parametrize(
    ("question", "sentence", "holds"),
    [
        # "how many responses": a number, and the thing counted
        ("How many responses did the survey get?", "The survey got 91 responses from SMEs.", True),
        ("How many responses did the consortium get?", "The consortium consists of six partners.", False),
        # people are counted under any name
        ("How many people took part?", "79 participants took part in co-creation.", True),
        ("When did the project end?", "The project ended in June 2024.", True),
        ("When did the project end?", "The project ended after the conference.", False),
        # who: a name, or an agent noun the question does not have
        (
            "By whom was the Joint Programme developed?",
            "The consortium has developed a Joint Programme.",
            True,
        ),
        ("Who developed the Joint Programme?", "The Joint Programme was developed over two years.", False),
        # a place: a month, a field's label or a role is none
        ("In which city was the summit held?", "The partners met at the summit in June 2024.", False),
        ("In which city was the summit held?", "The partners met at the summit in Sofia.", True),
        ("In which country is Acme based?", "Partner: Acme; Consortium: Orbit; City: Sofia", True),
        ("In which country is Acme based?", "Partner: Acme; Consortium: orbit", False),
        # a record's value is of the kind its field names; a field of prose is no record
        ("In which country is Acme based?", "Partner: Acme; Consortium: ORBIT", False),
        ("Where did the partners meet?", "Notes: The partners met in Sofia in June 2024.", True),
        ("Where is Acme based?", "Acme is a member of the consortium.", False),
    ],
)
def test_has_type(question, sentence, holds):
    assert has_type(sentence, expected_type(question), question) is holds


def test_country_and_city_questions_ask_for_places():
    assert expected_type("In which country is BioRN based?") == "place"
    assert expected_type("Which city hosted the conference?") == "place"
    assert expected_type("Which partners joined?") == "name"
