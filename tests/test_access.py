"""Collections and read rules (``kb.access``): each question searches only what its asker may
read, in Chroma and in the keyword index alike, on SQLite and on PostgreSQL; a rule change takes
effect on the next question with nothing re-embedded."""

from __future__ import annotations

import pytest

from assistant.core import Assistant
from ingest.pipeline import ingest, remove_source
from kb.access import GENERAL, CollectionRules, Scope, collection_of, valid_collection
from kb.terms import terms
from tests._helpers_files import write_text

MINUTES = "The board approved a confidential Kestrel bonus of 900 euros for the Kestrel project lead."
BUDGET = "The Kestrel project budget for 2025 is 40,000 euros, agreed by the finance team."
NEWS = "The Kestrel project newsletter appears every spring and lists public events."
UPLOADED = "Kestrel salary bands were revised by the board in a closed session in March."


def test_a_documents_collection_is_its_top_folder():
    assert collection_of("board/minutes.txt") == "board"
    assert collection_of("board/2024/minutes.txt") == "board"
    assert collection_of("uploads/board/salaries.txt") == "board"
    assert collection_of("news.txt") == collection_of("uploads/news.txt") == GENERAL
    assert valid_collection("board") and valid_collection("Project X_2")
    assert not any(valid_collection(n) for n in ("", "..", "a/b", "uploads", "x" * 70, "-x"))


def test_scopes_only_ever_narrow():
    mine = Scope(denied=frozenset({"board"}))
    assert mine.allows("finance/budget.txt") and not mine.allows("uploads/board/a.txt")
    chosen = mine.narrowed(collections=["board", "finance"])
    assert chosen.collections == {"board", "finance"} and chosen.denied == {"board"}
    assert not chosen.allows("board/minutes.txt") and chosen.allows("finance/budget.txt")
    assert not chosen.allows("news.txt")
    assert chosen.narrowed(collections=["news"]).collections == frozenset()  # nothing left
    one = Scope().narrowed(sources=["news.txt"])
    assert one.allows("news.txt") and not one.allows("finance/budget.txt")
    assert Scope().unlimited and not mine.unlimited and chosen.narrowed_by_choice
    assert chosen.chroma_where() == {
        "$and": [{"collection": {"$nin": ["board"]}}, {"collection": {"$in": ["board", "finance"]}}]
    }
    # a document staff also put in another collection: readable and chosen through either one
    also = Scope(denied=frozenset({"board"}), also=frozenset({("board/a.txt", "finance")}))
    assert also.allows("board/a.txt") and not also.allows("board/b.txt")
    assert also.narrowed(["finance"]).allows("board/a.txt") and not also.narrowed(["news"]).allows(
        "board/a.txt"
    )
    assert also.narrowed(["finance"]).chroma_where() == {
        "$and": [
            {"$or": [{"collection": {"$nin": ["board"]}}, {"source": {"$in": ["board/a.txt"]}}]},
            {"$or": [{"collection": {"$in": ["finance"]}}, {"source": {"$in": ["board/a.txt"]}}]},
        ]
    }


@pytest.fixture(params=["sqlite", "postgres"])
def assistant(request, make_settings):
    overrides = (
        {"record_db_url": request.getfixturevalue("postgres_url")} if request.param == "postgres" else {}
    )
    settings = make_settings(**overrides)
    write_text(settings.corpus_dir / "board" / "minutes.txt", MINUTES)
    write_text(settings.corpus_dir / "finance" / "budget.txt", BUDGET)
    write_text(settings.corpus_dir / "news.txt", NEWS)
    upload = settings.uploads_dir / "board" / "salaries.txt"
    write_text(upload, UPLOADED)
    ingest(None, settings)
    ingest([upload], settings)
    return Assistant.from_settings(settings)


def sources(passages) -> set[str]:
    return {p.source for p in passages}


def test_each_question_reads_only_what_its_asker_may_read(assistant):
    kb, retriever = assistant.kb, assistant.retriever
    rules = CollectionRules(kb.engine)
    question = "What did the Kestrel board approve, and what are the Kestrel salary bands?"
    everyone = sources(retriever.retrieve(question, k=10))
    assert {"board/minutes.txt", "uploads/board/salaries.txt"} <= everyone  # no rule yet: open

    assert rules.set("board", ["board-members"]) == ["board-members"]
    outsider, member = rules.scope_for([]), rules.scope_for(["board-members"])
    assert outsider.denied == {"board"} and member.unlimited and rules.scope_for(None).unlimited
    seen = sources(retriever.retrieve(question, k=10, scope=outsider))
    assert seen and not {s for s in seen if collection_of(s) == "board"}
    # neither engine hands over a denied chunk, even for its exact words
    board_ids = kb.keywords.ids("board/minutes.txt") | kb.keywords.ids("uploads/board/salaries.txt")
    words = terms("confidential bonus salary bands closed session Kestrel")
    assert board_ids <= {cid for cid, _ in kb.keywords.search(words, 30)}
    assert not board_ids & {cid for cid, _ in kb.keywords.search(words, 30, outsider)}
    dense = kb.collection.query(
        query_embeddings=[kb.embeddings.embed_query(MINUTES)], n_results=10, where=outsider.chroma_where()
    )
    assert all(m["collection"] != "board" for m in dense["metadatas"][0])
    answer = assistant.ask("How big was the confidential Kestrel bonus?", scope=outsider)
    assert "900" not in answer.text and not any(
        p.source.startswith(("board/", "uploads/board/")) for p in answer.passages
    )
    assert "900" in assistant.ask("How big was the confidential Kestrel bonus?", scope=member).text

    # narrowing by choice: within what may be read, and the answer says so
    finance = assistant.ask("What is the Kestrel budget?", scope=outsider.narrowed(collections=["finance"]))
    assert sources(finance.passages) == {"finance/budget.txt"} and finance.narrowed_to == ["finance"]
    assert retriever.retrieve(question, scope=outsider.narrowed(collections=["board"])) == []
    within = kb.keywords.search(words, 30, Scope().narrowed(collections=["board"]))
    assert within and {cid for cid, _ in within} <= board_ids
    only_news = retriever.retrieve("Kestrel", scope=Scope().narrowed(sources=["news.txt"]))
    assert sources(only_news) == {"news.txt"}

    # a rule change holds from the next question, with nothing re-embedded or rewritten
    chunks, records = kb.count_chunks(), kb.record_manager.list_keys()
    rules.set("board", ["board-members", "everyone"])
    assert rules.scope_for([]).unlimited
    assert (
        "900" in assistant.ask("How big was the confidential Kestrel bonus?", scope=rules.scope_for([])).text
    )
    assert kb.count_chunks() == chunks and kb.record_manager.list_keys() == records
    rules.set("board", [])  # staff only
    assert rules.scope_for(["board-members"]).denied == {"board"}


def test_a_document_in_more_collections_is_read_by_whoever_may_read_one_of_them(assistant):
    kb, retriever = assistant.kb, assistant.retriever
    rules = CollectionRules(kb.engine)
    rules.set("board", ["board-members"])
    rules.set("finance", ["finance-team"])
    # the minutes are the board's (their folder); staff put them in finance too
    assert rules.set_members("board/minutes.txt", ["finance", "board", " "]) == ["finance"]
    assert rules.members() == {"board/minutes.txt": ["finance"]}
    question = "How big was the confidential Kestrel bonus?"
    finance, outsider = rules.scope_for(["finance-team"]), rules.scope_for([])
    assert finance.collections_of("board/minutes.txt") == {"board", "finance"}
    assert finance.allows("board/minutes.txt") and not finance.allows("uploads/board/salaries.txt")
    assert not outsider.allows("board/minutes.txt")

    # in both engines: the minutes reach finance, the board's other document does not
    words = terms("confidential bonus salary bands closed session Kestrel")
    keyword_ids = {cid for cid, _ in kb.keywords.search(words, 30, finance)}
    assert kb.keywords.ids("board/minutes.txt") <= keyword_ids
    assert not kb.keywords.ids("uploads/board/salaries.txt") & keyword_ids
    dense = kb.collection.query(
        query_embeddings=[kb.embeddings.embed_query(MINUTES)], n_results=10, where=finance.chroma_where()
    )
    dense_sources = {m["source"] for m in dense["metadatas"][0]}
    assert "board/minutes.txt" in dense_sources and "uploads/board/salaries.txt" not in dense_sources
    assert "900" in assistant.ask(question, scope=finance).text
    assert "900" not in assistant.ask(question, scope=outsider).text

    # asking within finance (as finance, or as staff) meets it; so does the documents list
    for scope in (finance, rules.scope_for(None)):
        within = retriever.retrieve(question, scope=scope.narrowed(collections=["finance"]))
        assert "board/minutes.txt" in sources(within)
        assert sources(within) <= {"board/minutes.txt", "finance/budget.txt"}
    assert [d.source for d in kb.documents_page(scope=finance)] == [
        "board/minutes.txt",
        "finance/budget.txt",
        "news.txt",
    ]
    assert [d.source for d in kb.documents_page(scope=outsider)] == ["news.txt"]

    # taken out again: the next question follows; a removed document takes its memberships along
    assert rules.set_members("board/minutes.txt", []) == []
    assert not rules.scope_for(["finance-team"]).allows("board/minutes.txt")
    rules.set_members("board/minutes.txt", ["finance"])
    remove_source(kb, "board/minutes.txt")
    assert rules.members() == {}


# --- through the running app: chat, /api/ask, /files, the OpenAI API, as three different users ---


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from _helpers_app import running_app

    root = tmp_path_factory.mktemp("access-app")
    corpus = root / "seed"
    write_text(corpus / "board" / "minutes.txt", MINUTES)
    write_text(corpus / "finance" / "budget.txt", BUDGET)
    write_text(corpus / "news.txt", NEWS)
    with running_app(root, corpus=corpus) as running:
        yield running


def test_a_document_only_the_board_may_read_never_reaches_anyone_else(app):
    import httpx
    import openai
    from _helpers_app import BOARD, STAFF, VIEWER, call, chat, client, message_text

    question = "How big was the confidential Kestrel bonus the board approved?"
    staff = client(app.url, auth=STAFF)
    note, listing, *_ = call(staff, "staff_set_collection_groups", "board", "board")
    assert "board" in note and ["board", 1, 1, "board"] in listing["data"]

    def everything(messages) -> str:
        return "\n".join(message_text(m) for m in messages)

    for who in (None, VIEWER):  # anonymous visitors and a viewer outside the group
        seen = everything(chat(client(app.url, auth=who), question))
        assert "900" not in seen and "board/minutes.txt" not in seen and "project lead" not in seen
        api = httpx.post(f"{app.url}/api/ask", json={"question": question}, auth=who, timeout=60).json()
        assert "900" not in api["text"] and all("900" not in p["text"] for p in api["passages"])
        assert all(p["source"] != "board/minutes.txt" for p in api["passages"])
        # asking within the board's collection by name narrows to nothing; it never widens
        narrowed = httpx.post(
            f"{app.url}/api/ask", json={"question": question, "collections": ["board"]}, auth=who, timeout=60
        ).json()
        assert narrowed["declined"] and not narrowed["passages"]
        assert httpx.get(f"{app.url}/files/board/minutes.txt", auth=who, timeout=10).status_code == 404
    assert "900" in everything(chat(client(app.url, auth=BOARD), question))
    assert "900" in everything(chat(staff, question))  # staff read everything
    assert httpx.get(f"{app.url}/files/board/minutes.txt", auth=BOARD, timeout=10).status_code == 200

    # the OpenAI API with each user's key: the same rights
    _, secret, *_ = call(staff, "staff_create_key", VIEWER[0], "access test")
    _, board_secret, *_ = call(staff, "staff_create_key", BOARD[0], "access test")
    viewer_ai = openai.OpenAI(base_url=f"{app.url}/v1", api_key=secret["value"], max_retries=0)
    board_ai = openai.OpenAI(base_url=f"{app.url}/v1", api_key=board_secret["value"], max_retries=0)
    assert [m.id for m in viewer_ai.models.list()] == ["assistant", "assistant/finance", "assistant/general"]
    assert "assistant/board" in [m.id for m in board_ai.models.list()]
    ask = [{"role": "user", "content": question}]
    reply = viewer_ai.chat.completions.create(model="assistant", messages=ask)
    assert "900" not in reply.choices[0].message.content
    assert all(c["source"] != "board/minutes.txt" for c in reply.model_extra["citations"])
    with pytest.raises(openai.NotFoundError):
        viewer_ai.chat.completions.create(model="assistant/board", messages=ask)
    assert (
        "900"
        in board_ai.chat.completions.create(model="assistant/board", messages=ask).choices[0].message.content
    )
    budget = viewer_ai.chat.completions.create(
        model="assistant/finance", messages=[{"role": "user", "content": "What is the Kestrel budget?"}]
    )
    assert {c["source"] for c in budget.model_extra["citations"]} == {"finance/budget.txt"}

    # the chat's picker narrows, and the answer says so
    picked, *_ = client(app.url, auth=VIEWER).predict(
        "What is the Kestrel budget?", ["c:finance"], api_name="/chat"
    )
    assert "Searched only in: finance" in message_text(picked[1]) and "40,000" in message_text(picked[1])

    # staff put the minutes in finance too: the viewer (who may read finance) now reads them
    note, *_ = call(staff, "staff_set_document_collections", "board/minutes.txt", "finance")
    assert "**finance**" in note
    api = httpx.post(f"{app.url}/api/ask", json={"question": question}, auth=VIEWER, timeout=60).json()
    assert "900" in api["text"]
    assert httpx.get(f"{app.url}/files/board/minutes.txt", auth=VIEWER, timeout=10).status_code == 200
    call(staff, "staff_set_document_collections", "board/minutes.txt", "")
    api = httpx.post(f"{app.url}/api/ask", json={"question": question}, auth=VIEWER, timeout=60).json()
    assert "900" not in api["text"]

    # opening the board to everyone holds from the next question, with nothing re-ingested
    chunks = app.health()["chunks"]
    call(staff, "staff_set_collection_groups", "board", "board, everyone")
    assert "900" in everything(chat(client(app.url, auth=VIEWER), question))
    assert httpx.get(f"{app.url}/files/board/minutes.txt", timeout=10).status_code == 200
    assert app.health()["chunks"] == chunks


def test_an_index_from_before_collections_gets_them_once_at_start(make_settings):
    import sqlalchemy as sa

    from kb.store import COLLECTIONS_UPGRADE, KnowledgeBase, upgrades_table

    settings = make_settings()
    write_text(settings.corpus_dir / "board" / "minutes.txt", MINUTES)
    write_text(settings.corpus_dir / "news.txt", NEWS)
    ingest(None, settings)
    kb = KnowledgeBase(settings)
    ids = kb.collection.get(limit=10, include=[])["ids"]
    # as an older version wrote them: no collection in the metadata, no upgrade recorded
    kb.collection.update(ids=ids, metadatas=[{"collection": None}] * len(ids))
    assert all("collection" not in m for m in kb.collection.get(ids=ids, include=["metadatas"])["metadatas"])
    with kb.engine.begin() as conn:
        conn.execute(upgrades_table.delete().where(upgrades_table.c.name == COLLECTIONS_UPGRADE))
    outsider = Scope(denied=frozenset({"board"}))
    # even so, a denied chunk is dropped (the retriever checks every passage's source again)
    before = Assistant(settings, kb).retriever.retrieve("confidential Kestrel bonus board", scope=outsider)
    assert "board/minutes.txt" not in {p.source for p in before}

    def dense_sources(store: KnowledgeBase) -> set[str]:
        found = store.collection.query(
            query_embeddings=[store.embeddings.embed_query(MINUTES)],
            n_results=5,
            where=outsider.chroma_where(),
        )
        return {m["source"] for m in found["metadatas"][0]}

    assert "board/minutes.txt" in dense_sources(kb)  # Chroma alone would not have filtered it

    reopened = KnowledgeBase(settings)
    got = reopened.collection.get(ids=ids, include=["metadatas"])["metadatas"]
    assert sorted(m["collection"] for m in got) == ["board", GENERAL]
    with reopened.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(upgrades_table)).scalar() >= 2
    assert dense_sources(reopened) == {"news.txt"}  # now Chroma's own filter does
