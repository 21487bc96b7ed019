"""The claim check on its own (``assistant.claims``): what makes a sentence held by its passage."""

from __future__ import annotations

from assistant.claims import check_claims, verdict_of
from assistant.models import Passage

ARTICLE = Passage(
    n=1,
    id="innaxe-1",
    source="innaxe.txt",
    text=(
        "The INNAXE consortium consists of six European partners: BIOCAT, Medicen Paris Region, BioRN, "
        "Health & Life Sciences Cluster Bulgaria, Council of European BioRegions and Danish Life Science "
        "Cluster. The six partners presented the results at the Spinoff Bulgaria conference in June 2024.\n"
        "2) Reflections on sustainable results: a Joint Programme based on nine selected topics."
    ),
)


def support(sentence: str):
    (s,) = check_claims(sentence, [ARTICLE], "")
    return s


def test_a_name_of_several_words_must_appear_whole():
    invented = support("The results were presented at the European Life Science Council [1].")
    assert not invented.supported and invented.missing == ["European Life Science Council"]
    held = support("The partners include Medicen Paris Region and Danish Life Science Cluster [1].")
    assert held.supported and held.missing == []
    assert support("They met at Spinoff Bulgaria's conference in June 2024 [1].").supported


def test_a_lists_numbering_is_no_fact_and_filler_claims_nothing():
    assert support("The Joint Programme is based on 2 topics [1].").missing == ["2"]
    assert support("The Joint Programme is based on nine topics [1].").supported
    # the list item quoted with its own numbering (an offline answer quoting a list) is held
    assert support("2) Reflections on sustainable results: a Joint Programme [1]").supported
    filler = check_claims(".. [1]. The consortium has six partners [1].", [ARTICLE])
    assert [s.claim for s in filler] == [False, True] and verdict_of(filler) == "supported"
    assert verdict_of(check_claims(".. [1]. It has 12 partners [1].", [ARTICLE])) == "unverified"


def test_a_bare_answer_must_be_said_where_the_question_is():
    passage = Passage(
        n=1,
        id="normans-20",
        source="normans-020.txt",
        text="King Malcolm III of Scotland married Edgar's sister Margaret. "
        "Rollo swore fealty to King Charles III in exchange for the lands.",
    )

    def held(answer: str, question: str) -> bool:
        (s,) = check_claims(answer, [passage], question)
        return s.supported

    assert not held("King Malcolm III of Scotland [1].", "Who did Rollo swear fealty to?")
    assert not held("The answer is: King Malcolm III of Scotland [1].", "Who did Rollo swear fealty to?")
    assert held("King Charles III [1].", "Who did Rollo swear fealty to?")
    assert held("Margaret [1].", "Whom did King Malcolm III of Scotland marry?")
    # the question's own name is who was asked about, not the answer (SmolLM2, SQuAD)
    assert not held("The answer is: King Charles III [1].", "Who swore fealty to King Charles the third?")
    assert not held("Rollo [1].", "Who did Rollo swear fealty to?")
    # a statement is judged as before: its own words, not the question's
    assert held("King Malcolm III of Scotland married Margaret [1].", "Who did Rollo swear fealty to?")


def test_a_claim_must_also_mean_something_its_passage_says():
    from kb.embeddings import MiniLMEmbeddings

    filler = "There are different theories on this topic and many ways to explain it [1]."
    true = "The INNAXE consortium consists of six European partners [1]."
    (by_terms,) = check_claims(filler, [ARTICLE])
    assert by_terms.supported and by_terms.similarity is None  # its few content words are there
    model = MiniLMEmbeddings()
    (by_meaning,) = check_claims(filler, [ARTICLE], embeddings=model)
    assert not by_meaning.supported and by_meaning.similarity < 0.2
    (held,) = check_claims(true, [ARTICLE], embeddings=model)
    assert held.supported and held.similarity > 0.5
