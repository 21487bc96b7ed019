"""Saved conversations (``webapp.conversations``) on both record stores, and their rendering.

The app-level tests (a browser's chats across reloads, another browser's refusal, a user's chats
on another replica) live with the running apps in ``test_app.py`` and ``test_scale_out.py``.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from assistant.models import Answer, Citation, Passage
from webapp.chat import Conversation
from webapp.conversations import TITLE_CHARS, ConversationStore, title_from


@pytest.fixture(params=["sqlite", "postgres"])
def record_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.sqlite'}"
    return request.getfixturevalue("postgres_url")


def answer(text: str, source: str = "plan.md", quote: str = "") -> Answer:
    p = Passage(n=1, id="c1", text=f"{quote or text} More text.", source=source, title="Plan", page=3)
    return Answer(
        question="q", text=text, citations=[Citation(n=1, passage=p, quote=quote or text)], passages=[p]
    )


def test_conversations_are_kept_per_owner_and_continue_in_another_process(record_url):
    mine = ConversationStore(sa.create_engine(record_url))
    cid = mine.create("user:ana", "When does the pilot start in Valencia?")
    assert mine.add("user:ana", cid, "When does the pilot start in Valencia?", answer("In May 2025 [1]."))
    other = mine.create("user:ana", "Who pays for the 100% solar roof_panels?")
    mine.add("user:ana", other, "Who pays for the 100% solar roof_panels?", answer("The city [1]."))

    # another app process (its own engine) sees and continues the same conversation
    theirs = ConversationStore(sa.create_engine(record_url))
    assert theirs.add("user:ana", cid, "And where?", answer("At the port [1]."))
    listed = theirs.list("user:ana")
    assert [c.id for c in listed] == [cid, other]  # the one answered last comes first
    assert listed[0].title == "When does the pilot start in Valencia?"
    saved = mine.get("user:ana", cid)
    assert [e.question for e in saved.exchanges] == ["When does the pilot start in Valencia?", "And where?"]
    assert saved.exchanges[1].answer.citations[0].passage.page == 3  # citations kept whole

    # search: title or any question/answer text, case-insensitive; LIKE wildcards are literal
    assert [c.id for c in mine.list("user:ana", "PORT")] == [cid]
    assert [c.id for c in mine.list("user:ana", "valencia may")] == [cid]
    assert [c.id for c in mine.list("user:ana", "100%")] == [other]
    assert [c.id for c in mine.list("user:ana", "roof_panels")] == [other]
    assert mine.list("user:ana", "roof%panels") == [] and mine.list("user:ana", "pilot_start") == []

    # another owner can neither see, read, continue, rename nor delete them
    assert mine.list("user:bob") == [] and mine.list("browser:x", "Valencia") == []
    assert mine.get("user:bob", cid) is None
    assert not mine.add("user:bob", cid, "Mine now?", answer("No."))
    assert not mine.rename("user:bob", cid, "stolen") and not mine.delete("user:bob", cid)
    assert len(mine.get("user:ana", cid).exchanges) == 2

    assert mine.rename("user:ana", cid, "  Valencia   pilot ")
    assert theirs.list("user:ana")[0].title == "Valencia pilot"
    assert not mine.rename("user:ana", cid, "   ")  # a blank title is refused, the old one stays
    assert theirs.delete("user:ana", cid)
    assert mine.get("user:ana", cid) is None and [c.id for c in mine.list("user:ana")] == [other]
    assert not mine.add("user:ana", cid, "Still there?", answer("No."))  # the app then starts a new one
    with mine.engine.connect() as conn:  # its exchanges went with it
        assert conn.execute(sa.text("SELECT count(*) FROM kb_conversation_turns")).scalar() == 1


def test_titles_come_from_the_first_question():
    assert title_from("  What is\nthe budget?  ") == "What is the budget?"
    long = "Which of the partners " + "really " * 30 + "paid?"
    title = title_from(long)
    assert len(title) <= TITLE_CHARS and title.endswith("…") and long.startswith(title[:-1])
    assert title_from("   ") == "New chat"


def test_a_restored_conversation_shows_its_sources_and_says_when_a_document_left():
    from webapp.conversations import Exchange, SavedConversation

    saved = SavedConversation(
        "c1",
        "Pilot",
        [
            Exchange("When does it start?", answer("In May [1].", "plan.md", "starts in May")),
            Exchange(
                "Who runs it?", answer("The port <b>authority</b> [1].", "gone.md", "the port authority")
            ),
        ],
    )
    convo = Conversation.restore(saved, "ana", removed={"gone.md"})
    assert convo.id == "c1" and convo.title == "Pilot"
    roles = [m["role"] if isinstance(m, dict) else m.role for m in convo.messages]
    assert roles == ["user", "assistant", "assistant"] * 2  # question, answer, sources block
    first, second = convo.messages[2].content, convo.messages[5].content
    assert 'href="/files/plan.md#page=3"' not in first  # not a PDF: no page anchor
    assert 'href="/files/plan.md"' in first and "<mark>starts in May</mark>" in first
    assert "document no longer available" in second and "/files/gone.md" not in second
    assert "&lt;b&gt;authority" in convo.messages[4]["content"]  # answer text stays text
    # follow-ups read the restored turns; votes on either answer refer to their exchange
    assert [t["content"] for t in convo.turns] == [
        "When does it start?",
        "In May [1].",
        "Who runs it?",
        "The port <b>authority</b> [1].",
    ]
    assert convo.records[4]["question"] == "Who runs it?" and convo.records[5] is convo.records[4]
