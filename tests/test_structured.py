"""Structured answers read as they stream (``assistant.structured``): whatever way the server cuts
its JSON into deltas, the user sees the same text, words first and markers once known."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.prompts import DECLINE_TEXT
from assistant.structured import PARTIAL_PREFIX, RESPONSE_FORMAT, StructuredReader, render


def read(reply: str, cuts: list[int] | None = None) -> tuple[list[str], str, StructuredReader]:
    """Feed ``reply`` cut at ``cuts``; the pieces shown and the whole text."""
    reader, shown, last = StructuredReader(), [], 0
    for cut in [*sorted(set(cuts or [])), len(reply)]:
        if (piece := reader.feed(reply[last:cut])) != "":
            shown.append(piece)
        last = cut
    if rest := reader.finish():
        shown.append(rest)
    return shown, "".join(shown), reader


def reply(answerable: bool, *sentences: tuple[str, list[int]]) -> str:
    items = [{"text": t, "passages": p} for t, p in sentences]
    return json.dumps({"answerable": answerable, "sentences": items}, ensure_ascii=False)


TWO = reply(True, ('Employees get 25 "vacation" days per year.', [1]), ("They carry 5 over, é\n ok!", [1, 2]))


def test_sentences_become_text_with_markers_before_the_stop():
    assert (
        render({"text": "They met in June 2024.", "passages": [2, 2, 3]}) == "They met in June 2024 [2][3]."
    )
    assert render({"text": "No source", "passages": []}) == "No source"
    assert render({"text": 5}) == render("x") == render({"text": " .. ", "passages": [1]}) == ""
    _, text, reader = read(TWO)
    assert text == 'Employees get 25 "vacation" days per year [1]. They carry 5 over, é\n ok [1][2]!'
    assert reader.valid and reader.answerable is True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(TWO)), max_size=40))
def test_any_cutting_of_the_stream_shows_the_same_text(cuts):
    shown, text, _ = read(TWO, cuts)
    assert text == read(TWO)[1]
    # what was shown is never taken back: every piece extends the text
    assert "".join(shown) == text


def test_words_come_before_the_sentence_is_complete():
    shown, _, _ = read(TWO, list(range(0, len(TWO), 4)))
    first_marker = next(i for i, piece in enumerate(shown) if "[1]" in piece)
    assert "".join(shown[:first_marker]).startswith("Employees get 25")
    assert "." not in "".join(shown[:first_marker])  # the stop waits for the markers


def test_refusals_and_partial_answers():
    assert read(reply(False))[1] == DECLINE_TEXT
    assert read(reply(True))[1] == DECLINE_TEXT  # nothing to say is no answer
    partial = read(reply(False, ("The budget is not given, but there are six partners.", [2])))[1]
    assert partial == PARTIAL_PREFIX + "The budget is not given, but there are six partners [2]."


def test_plain_text_from_a_server_that_ignores_the_format_passes_through():
    shown, text, reader = read("  The office opens at 8:00 [2].", [3, 10])
    assert text == "  The office opens at 8:00 [2]." and len(shown) == 3
    assert reader.answerable is None and not reader.valid


def test_a_reply_cut_short_keeps_what_was_said():
    whole = reply(True, ("One.", [1]), ("Two is longer than this", [2]))
    _, text, reader = read(whole[: whole.index("longer")])
    assert text == "One [1]. Two is" and not reader.valid
    assert read('{"answerable": true, "sen')[1] == DECLINE_TEXT


def test_the_schema_is_strict_for_openai():
    schema = RESPONSE_FORMAT["json_schema"]["schema"]
    assert RESPONSE_FORMAT["json_schema"]["strict"] is True
    for obj in (schema, schema["properties"]["sentences"]["items"]):
        assert obj["additionalProperties"] is False and set(obj["required"]) == set(obj["properties"])
