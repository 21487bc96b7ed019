"""The web app end to end: ``python app.py`` in a subprocess, spoken to over real HTTP with
``gradio_client`` and ``httpx``; plus the small pieces (users, feedback, uploads, rendering)
on their own.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys

import httpx
import pytest
import sqlalchemy as sa
from _helpers_app import (
    REPO,
    STAFF,
    VIEWER,
    call,
    chat,
    client,
    fn_index,
    free_port,
    message_text,
    queue_call,
    queue_output,
    running_app,
    signed_in,
)
from _helpers_files import write_docx, write_text
from gradio_client import handle_file
from gradio_client.exceptions import AppError, AuthenticationError

from assistant.models import Answer, Citation, Passage
from kb.settings import ConfigError
from webapp.auth import (
    LoginThrottle,
    PermissionDenied,
    User,
    UserStore,
    hash_password,
    parse_inline_users,
    require_staff,
)
from webapp.chat import (
    NOT_FOUND_MARK,
    UNSURE_NOTE,
    UNVERIFIED_NOTE,
    Conversation,
    answer_display,
    display_text,
    file_url,
    highlight,
    sources_message,
)
from webapp.feedback import FeedbackItem, FeedbackStore
from webapp.staff import safe_filename, save_uploads
from webapp.ui import STAFF_ENDPOINTS

QUESTION = "Which partners make up the INNAXE consortium?"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on the shipped corpus, open chat, users 'sam' (staff) and 'vera' (viewer)."""
    with running_app(tmp_path_factory.mktemp("app")) as running:
        yield running


@pytest.fixture(scope="module")
def locked_app(tmp_path_factory):
    """Everyone must log in; nothing ingested; the language model's server is down."""
    env = {
        "ASSISTANT_REQUIRE_LOGIN": "true",
        "ASSISTANT_ANSWER_MODE": "openai",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
        "OPENAI_API_KEY": "test-key",
        "ASSISTANT_MAX_RETRIES": "0",
        "ASSISTANT_REQUEST_TIMEOUT_S": "5",
    }
    with running_app(tmp_path_factory.mktemp("locked"), corpus=None, extra_env=env) as running:
        yield running


def sources_of(messages: list[dict]) -> list[dict]:
    return [m for m in messages if (m.get("metadata") or {}).get("title", "").startswith("Sources")]


# --- chat --------------------------------------------------------------------------------------


def test_health_reports_the_ingested_corpus(app):
    health = app.health()
    assert health["ok"] is True
    # the article, its scanned page, the slide deck and the partner spreadsheet
    assert health["documents"] == 4 and health["chunks"] > 0
    assert health["answer_mode"] == "extractive"


def test_chat_answers_with_citations_and_a_sources_block(app):
    c = client(app.url)
    messages = chat(c, QUESTION)
    user, answer, *rest = messages
    assert message_text(user) == QUESTION
    markers = set(re.findall(r"\[(\d+)\]", message_text(answer)))
    assert "BIOCAT" in message_text(answer) and markers
    [sources] = sources_of(rest)
    html = message_text(sources)
    assert set(re.findall(r'data-n="(\d+)"', html)) == markers  # each cited passage, under its number
    assert 'href="/files/innaxe-cluster-collaboration-results.txt"' in html
    assert "Danish Life Science Cluster" in html

    # the conversation stays on the server: a follow-up in the same session resolves "the project"
    follow_up = chat(c, "And when did the project end?")
    assert follow_up[: len(messages)] == messages
    assert "June 2024" in message_text(follow_up[len(messages) + 1])


def test_api_ask_returns_the_answer_as_json(app):
    r = httpx.post(f"{app.url}/api/ask", json={"question": QUESTION}, timeout=60)
    assert r.status_code == 200
    answer = Answer.model_validate(r.json())
    assert not answer.declined and answer.citations
    assert answer.citations[0].passage.source == "innaxe-cluster-collaboration-results.txt"
    assert httpx.post(f"{app.url}/api/ask", json={"question": ""}, timeout=10).status_code == 422


def test_source_files_are_served_read_only_from_the_index_only(app):
    ok = httpx.get(f"{app.url}/files/innaxe-cluster-collaboration-results.txt", timeout=10)
    assert ok.status_code == 200 and "INNAXE" in ok.text
    assert ok.headers["content-type"].startswith("text/plain")
    assert ok.headers["x-content-type-options"] == "nosniff"

    (app.corpus_dir / ".env").write_text("SECRET=1")  # inside the corpus folder, never indexed
    (app.corpus_dir / "later.txt").write_text("not ingested yet")
    for path in (".env", "later.txt", "../users.json", "..%2Fusers.json", "%2e%2e/users.json", "/etc/passwd"):
        r = httpx.get(f"{app.url}/files/{path}", timeout=10)
        assert r.status_code == 404, path
    # Gradio's own file route does not serve the data dir either
    r = httpx.get(f"{app.url}/gradio_api/file={app.data_dir.resolve() / 'records.sqlite'}", timeout=10)
    assert r.status_code in (403, 404)


# --- staff ---------------------------------------------------------------------------------------


def test_staff_upload_then_the_chat_answers_from_it_then_delete(app, tmp_path):
    docx = write_docx(
        tmp_path / "Heron rules (2024).docx",
        [("Heron tariff", "The heron tariff for cluster members is 420 euros per year, payable each March.")],
        title="Heron membership rules",
    )
    staff = client(app.url, auth=STAFF)
    name = safe_filename(docx.name)
    source = f"uploads/{name}"
    assert name.startswith("Heron_rules_2024-") and name.endswith(".docx")

    summary, report, documents, _choices, _problems, _status, _files = call(
        staff, "staff_upload", [handle_file(str(docx))], "general"
    )
    assert "1 added" in summary
    assert report["data"] == [[source, "added", report["data"][0][2], "Heron membership rules"]]
    assert source in [row[1] for row in documents["data"]]
    assert (app.data_dir / "uploads" / name).is_file()

    messages = chat(client(app.url), "What is the heron tariff for cluster members?")
    assert "420 euros" in message_text(messages[1])
    assert f'/files/{source}"' in message_text(sources_of(messages)[0])
    assert httpx.get(f"{app.url}/files/{source}", timeout=10).status_code == 200

    # delete asks first, then removes the chunks and the uploaded file
    question = call(staff, "staff_ask_delete", source)  # (layout outputs are skipped)
    assert "Heron membership rules" in question and "removed too" in question
    done, documents, _choices, _status = call(staff, "staff_delete", source)
    assert "Deleted" in done
    assert source not in [row[1] for row in documents["data"]]
    assert not (app.data_dir / "uploads" / name).exists()
    assert httpx.get(f"{app.url}/files/{source}", timeout=10).status_code == 404
    after = chat(client(app.url), "What is the heron tariff for cluster members?")
    assert "420" not in "".join(message_text(m) for m in after)


def test_the_chat_answers_while_an_ingest_is_running(app):
    """An ingest in progress (here: waiting on the data dir's ingest lock) never holds up questions."""
    from filelock import FileLock

    staff = client(app.url, auth=STAFF)
    with FileLock(str(app.data_dir / "ingest.lock")):
        job = staff.submit(fn_index=fn_index(staff, "staff_reingest"))
        messages = chat(client(app.url), QUESTION)
        assert "BIOCAT" in message_text(messages[1])
        assert not job.done()  # the re-ingest is still waiting for the lock we hold
    summary, *_ = job.result(timeout=120)
    assert "Ingest finished" in summary


def test_upload_of_a_disallowed_type_is_refused(app, tmp_path):
    staff = client(app.url, auth=STAFF)
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x90\x00")
    with pytest.raises(AppError):
        call(staff, "staff_upload", [handle_file(str(exe))], "general")
    assert not list((app.data_dir / "uploads").glob("tool*"))


def _staff_calls(tmp_path):
    upload = write_text(tmp_path / "intruder.txt", "The intruder says the tariff is zero.")
    source = "innaxe-cluster-collaboration-results.txt"
    return {
        "staff_upload": ([handle_file(str(upload))], "general"),
        "staff_reingest": (),
        "staff_documents": (),
        "staff_watch": (),
        "staff_ask_delete": (source,),
        "staff_delete": (source,),
        "staff_feedback": (),
        "staff_feedback_csv": (),
        "staff_evaluation": ("innaxe.yaml", 1),
        "staff_create_key": (STAFF[0], "stolen"),
        "staff_revoke_key": (1,),
        "staff_keys": (),
        "staff_set_collection_groups": ("general", "nobody"),
        "staff_set_document_collections": (source, "secret"),
        "staff_collections": (),
    }


@pytest.mark.parametrize("who", ["anonymous", "viewer", "wrong password"])
def test_every_staff_endpoint_refuses_non_staff(app, tmp_path, who):
    if who == "viewer":
        c = client(app.url, auth=VIEWER)
    else:
        if who == "wrong password":
            with pytest.raises(AuthenticationError):
                client(app.url, auth=(STAFF[0], "not-the-password"))
        c = client(app.url)
    calls = _staff_calls(tmp_path)
    assert set(calls) == set(STAFF_ENDPOINTS)
    before = app.health()
    for name, args in calls.items():
        # (an upload is refused already by Gradio's upload route, which serves staff only)
        with pytest.raises((AppError, httpx.HTTPStatusError)) as refused:
            call(c, name, *args)
        message = str(refused.value)
        if name == "staff_upload" and isinstance(refused.value, httpx.HTTPStatusError):
            assert refused.value.response.status_code == 403
        elif name not in (
            "staff_ask_delete",
            "staff_delete",
            "staff_revoke_key",
        ):  # may stop at an empty choice list
            assert ("viewer" in message) if who == "viewer" else ("Staff sign-in required" in message), name
    assert app.health()["documents"] == before["documents"]
    assert not (app.data_dir / "uploads" / "intruder.txt").exists()
    with sa.create_engine(f"sqlite:///{app.data_dir / 'records.sqlite'}").connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM kb_api_keys")).scalar() == 0
    assert (
        httpx.get(f"{app.url}/files/innaxe-cluster-collaboration-results.txt", timeout=10).status_code == 200
    )


def test_hidden_endpoints_are_not_in_the_api(app):
    from gradio_client import Client

    api = Client(app.url + "/", verbose=False).view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/chat"]
    assert not api["unnamed_endpoints"]


def test_staff_feedback_view_and_csv_export(app):
    FeedbackStore.open(f"sqlite:///{app.data_dir / 'records.sqlite'}").add(
        FeedbackItem(question="Q1?", answer="A1 [1]", vote="down", user="anonymous", sources=["[1] a.txt"])
    )
    staff = client(app.url, auth=STAFF)
    table = call(staff, "staff_feedback")
    assert ["anonymous", "down", "Q1?", "A1 [1]", "[1] a.txt"] in [row[1:] for row in table["data"]]
    export = call(staff, "staff_feedback_csv")
    # the export is served to staff only: a chat visitor cannot fetch it even with its URL
    assert httpx.get(export["value"]["url"], timeout=10).status_code == 403
    csv_text = signed_in(app.url, STAFF).get(export["value"]["url"]).text
    assert csv_text.splitlines()[0] == "id,time_utc,user,vote,question,answer,sources"
    assert "Q1?" in csv_text


def test_staff_runs_an_evaluation_question_set(app):
    staff = client(app.url, auth=STAFF)
    markdown, html_file = call(staff, "staff_evaluation", "innaxe.yaml", 2)
    assert markdown.startswith("# Evaluation: innaxe")
    assert "questions: 2" in markdown
    assert "<html" in signed_in(app.url, STAFF).get(html_file["value"]["url"]).text.lower()
    with pytest.raises(AppError, match="list of choices|question sets"):
        call(staff, "staff_evaluation", "../users.json", 0)


# --- require_login, nothing ingested, model down ---------------------------------------------------


def test_login_required_mode(locked_app):
    from gradio_client import Client

    with pytest.raises(Exception):  # noqa: B017  (the client fails in several ways without a login)
        Client(locked_app.url + "/", verbose=False)
    assert httpx.post(f"{locked_app.url}/api/ask", json={"question": "hi"}, timeout=10).status_code == 401
    assert httpx.get(f"{locked_app.url}/files/x.txt", timeout=10).status_code == 401
    assert httpx.get(f"{locked_app.url}/config", timeout=10).status_code == 401
    page = httpx.get(f"{locked_app.url}/", headers={"accept": "text/html"}, timeout=10)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert "<form" in httpx.get(f"{locked_app.url}/login", timeout=10).text

    viewer = client(locked_app.url, auth=VIEWER)
    messages = chat(viewer, "What is the heron tariff?")
    assert "knowledge base is empty" in message_text(messages[1])
    with pytest.raises(AppError, match="viewer"):
        call(viewer, "staff_documents")

    r = httpx.post(f"{locked_app.url}/api/ask", json={"question": "hi"}, auth=VIEWER, timeout=30)
    assert r.status_code == 200 and r.json()["declined"] is True
    # the sign-in form's cookie opens the page and the source files too
    with httpx.Client(base_url=locked_app.url, timeout=10) as browser_like:
        headers = {"accept": "text/html"}
        signed = browser_like.post(
            "/login", data={"username": VIEWER[0], "password": VIEWER[1]}, headers=headers
        )
        assert signed.status_code == 303 and signed.headers["location"] == "./"
        assert browser_like.get("/", headers=headers).status_code == 200
        assert browser_like.get("/files/x.txt").status_code == 404  # signed in; no such document
        browser_like.post("/logout")
        assert browser_like.get("/files/x.txt").status_code == 401


def test_gradio_login_staff_uploads_and_a_model_outage_reads_kindly(locked_app, tmp_path):
    staff = client(locked_app.url, auth=STAFF)  # one sign-in for the page and the staff actions
    doc = write_text(tmp_path / "otters.txt", "Otter survey: the river had 14 otters in 2023.")
    summary, *_ = call(staff, "staff_upload", [handle_file(str(doc))], "general")
    assert "1 added" in summary

    messages = chat(staff, "How many otters did the river have in 2023?")
    text = message_text(messages[1])
    assert text and "Traceback" not in text
    assert "model" in text.lower() or "reach" in text.lower()
    assert not sources_of(messages)


# --- the parts on their own ----------------------------------------------------------------------


def throttle(tmp_path) -> LoginThrottle:
    return LoginThrottle(sa.create_engine(f"sqlite:///{tmp_path / 'records.sqlite'}"))


def test_inline_users_keep_the_commas_of_argon2_hashes(tmp_path):
    h1, h2 = hash_password("one"), hash_password("two")
    assert "," in h1
    users = UserStore(parse_inline_users(f"ann:staff:{h1}, bob:viewer:{h2}"), throttle(tmp_path))
    assert users.verify("ann", "one") == User("ann", "staff", h1)
    assert users.verify("bob", "two").role == "viewer"
    assert users.verify("bob", "one") is None
    assert users.verify("nobody", "one") is None
    with pytest.raises(ConfigError, match="role"):
        parse_inline_users(f"eve:admin:{h1}")
    with pytest.raises(ConfigError, match="argon2"):
        parse_inline_users("eve:staff:plaintext")


def test_repeated_wrong_passwords_lock_the_name_out_in_every_process(tmp_path):
    parsed = parse_inline_users(f"ann:staff:{hash_password('right')}")
    users = UserStore(parsed, throttle(tmp_path))
    for _ in range(LoginThrottle.MAX_FAILURES):
        assert users.verify("ann", "wrong") is None
    assert users.locked_out("ann")
    assert users.verify("ann", "right") is None  # even the right password, until the window passes
    assert not users.locked_out("bob")
    # another process (or this one after a restart) on the same record store sees the lockout
    assert UserStore(parsed, throttle(tmp_path)).verify("ann", "right") is None
    # names are stored hashed: what someone typed into the name field is not in the database
    with sa.create_engine(f"sqlite:///{tmp_path / 'records.sqlite'}").connect() as conn:
        assert "ann" not in str(conn.execute(sa.text("SELECT * FROM auth_failures")).fetchall())


def test_role_check():
    assert require_staff(User("s", "staff")).name == "s"
    with pytest.raises(PermissionDenied, match="viewer"):
        require_staff(User("v", "viewer"))
    with pytest.raises(PermissionDenied, match="sign-in"):
        require_staff(None)


def test_hash_cli_prints_a_hash_that_verifies(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "webapp.auth", "hash"],
        input="correct horse\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    [line] = [x for x in out.stdout.splitlines() if x.startswith("$argon2")]
    assert UserStore(parse_inline_users(f"x:staff:{line}"), throttle(tmp_path)).verify("x", "correct horse")


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_feedback_store_lists_newest_first_and_exports_csv(database, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'records.sqlite'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = FeedbackStore.open(url)
    store.add(FeedbackItem(question="q1", answer="a1", vote="up", sources=["[1] x.pdf#page=2"]))
    store.add(FeedbackItem(question="q2, with comma", answer='say "hi"', vote="down", user="vera"))
    assert [i.question for i in store.items()] == ["q2, with comma", "q1"]
    assert store.counts() == {"up": 1, "down": 1}
    lines = store.to_csv().splitlines()
    assert lines[1].endswith(",anonymous,up,q1,a1,[1] x.pdf#page=2")
    assert lines[2].endswith(',vera,down,"q2, with comma","say ""hi""",')
    # spreadsheet formulas are written as text, and a vote is only up or down
    store.add(FeedbackItem(question='=HYPERLINK("http://evil","x")', answer="@SUM(A1)", vote="up", user="-x"))
    assert (
        store.to_csv().splitlines()[3].endswith(""",'-x,up,"'=HYPERLINK(""http://evil"",""x"")",'@SUM(A1),""")
    )
    with pytest.raises(ValueError, match="vote"):
        store.add(FeedbackItem(question="q", answer="a", vote="=cmd|' /C calc'!A0"))
    assert FeedbackStore.open(url).counts() == {"up": 2, "down": 1}, "votes live in the database"


def test_feedback_of_an_older_version_moves_into_the_record_store_once(tmp_path):
    legacy = tmp_path / "feedback.sqlite"
    with sqlite3.connect(legacy) as conn:
        conn.execute(
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, user TEXT"
            " NOT NULL, vote TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, sources TEXT NOT NULL)"
        )
        conn.execute("INSERT INTO feedback VALUES (1, 5.0, 'vera', 'down', 'q', 'a', '[\"x.pdf\"]')")
    conn.close()
    store = FeedbackStore.open(f"sqlite:///{tmp_path / 'records.sqlite'}")
    assert store.import_legacy(legacy) == 1
    [item] = store.items()
    assert (item.user, item.vote, item.sources, item.created_at) == ("vera", "down", ["x.pdf"], 5.0)
    assert not legacy.exists() and store.import_legacy(legacy) == 0, "imported once"


def test_uploads_get_safe_names_and_limits(make_settings, tmp_path):
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("notes_v2.md") == "notes_v2.md"  # a safe name is kept as it is
    assert safe_filename("文件.txt") == "文件.txt"  # letters of any script are safe
    assert re.fullmatch(r"Rapport_d_été-[0-9a-f]{8}\.pdf", safe_filename("..\\x\\Rapport d'été.PDF"))
    assert re.fullmatch(r"hidden-[0-9a-f]{8}\.txt", safe_filename(".hidden.txt"))
    assert re.fullmatch(r"upload-[0-9a-f]{8}\.docx", safe_filename("???.docx"))
    # two names that clean to the same text stay two files; the same name maps to the same file
    assert safe_filename("a b.txt") != safe_filename("a_b.txt") == "a_b.txt"
    assert safe_filename("a b.txt") == safe_filename("a b.txt")
    settings = make_settings(max_upload_mb=0.001)
    small = write_text(tmp_path / "small.md", "# Hi\nshort")
    big = write_text(tmp_path / "big.txt", "x" * 5000)
    exe = tmp_path / "run.exe"
    exe.write_bytes(b"MZ")
    saved, refused = save_uploads([small, big, exe], settings)
    assert saved == [settings.uploads_dir / "small.md"]
    assert {(f.source, f.status) for f in refused} == {("big.txt", "skipped"), ("run.exe", "skipped")}
    assert "too large" in next(f.reason for f in refused if f.source == "big.txt")


def test_sources_block_highlights_the_quote_and_links_pdf_pages():
    p = Passage(
        id="1",
        n=2,
        text="Intro line.\nThe fee is <b>420</b>  euros.\nEnd.",
        source="a b.pdf",
        title="A",
        page=3,
    )
    assert file_url(p) == "/files/a%20b.pdf#page=3"
    assert highlight(p.text, "the fee is <b>420</b> euros.") == (
        "Intro line.<br><mark>The fee is &lt;b&gt;420&lt;/b&gt;  euros.</mark><br>End."
    )
    assert highlight("plain", "") == "plain"
    msg = sources_message(
        Answer(question="q", text="It is 420 [2].", citations=[Citation(n=2, passage=p, quote="")])
    )
    assert msg.metadata["title"] == "Sources (1 passage)"
    assert 'href="/files/a%20b.pdf#page=3"' in msg.content and "A, p. 3" in msg.content
    assert sources_message(Answer(question="q", text="I don't know.", declined=True)) is None
    closest = sources_message(Answer(question="q", text="Not found.", declined=True, passages=[p]))
    assert closest.metadata["title"] == "Closest passages, not an answer (1 passage)"
    assert "<mark>" not in closest.content and "a%20b.pdf" in closest.content
    failed = Answer(question="q", text="The model is down.", declined=True, error="unreachable", passages=[p])
    assert sources_message(failed) is None


def test_claims_the_passages_do_not_hold_are_marked_in_the_chat():
    from assistant.models import SentenceSupport

    p = Passage(id="c1", text="The fee is 420 euros.", source="fees.txt", n=1)
    held = SentenceSupport(text="The fee is 420 euros [1].", cites=[1], supported=True, coverage=1.0)
    invented = SentenceSupport(text="It rose to 990 <b>euros</b> [1].", cites=[1], missing=["990"])
    partly = Answer(
        question="q",
        text="The fee is 420 euros [1]. It rose to 990 <b>euros</b> [1].",
        support=[held, invented],
        verdict="partly_supported",
        citations=[Citation(n=1, passage=p)],
        passages=[p],
    )
    shown = answer_display(partly)
    assert shown == (
        "The fee is 420 euros [1]. It rose to 990 &lt;b&gt;euros&lt;/b&gt; [1]." + NOT_FOUND_MARK
    )
    unverified = partly.model_copy(update={"support": [invented], "verdict": "unverified", "citations": []})
    assert answer_display(unverified).startswith(UNVERIFIED_NOTE)
    closest = sources_message(unverified)
    assert closest.metadata["title"].startswith("Closest passages")
    supported = partly.model_copy(update={"support": [held], "verdict": "supported"})
    assert answer_display(supported) == display_text(supported.text)


def test_an_unsure_offline_answer_is_marked_with_its_reason():
    p = Passage(id="c1", text="The fee is 420 euros.", source="fees.txt", n=1)
    unsure = Answer(
        question="What is the Zephyr fee?",
        text="I could not find a sure answer in the documents. The closest passage says: The fee is 420 euros. [1]",
        confidence=0.35,
        uncertain=True,
        reason="the passages do not mention “Zephyr” <b>",
        citations=[Citation(n=1, passage=p)],
        passages=[p],
    )
    shown = answer_display(unsure)
    assert shown.startswith(f"{UNSURE_NOTE} (the passages do not mention “Zephyr” &lt;b&gt;)\n\n")
    assert shown.endswith(display_text(unsure.text))
    assert sources_message(unsure).metadata["title"].startswith("Sources")
    sure = unsure.model_copy(update={"uncertain": False, "reason": None})
    assert answer_display(sure) == display_text(sure.text)


def test_chat_text_is_never_html_and_a_conversation_stays_bounded():
    shown = display_text('Fee <img src="http://evil/x.png"> & ![t](http://evil/y.png) <script>1</script>')
    assert "<img" not in shown and "<script" not in shown and "![" not in shown
    assert "&lt;img" in shown and "&amp;" in shown

    convo = Conversation()
    for i in range(150):
        convo.messages += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
        convo.records[len(convo.messages) - 1] = {"question": f"q{i}"}
        convo.turns += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    convo.trim()
    assert len(convo.messages) == 200 and convo.messages[-1]["content"] == "a149"
    assert convo.records[199] == {"question": "q149"} and min(convo.records) == 1  # indices follow the cut
    assert len(convo.turns) == 50


# --- saved conversations -------------------------------------------------------------------------


def choices(update: dict) -> list[tuple[str, str]]:
    """(title, id) of a conversation list update."""
    return [tuple(c) for c in update["choices"]]


def test_a_browser_keeps_its_conversations_across_reloads_and_no_other_browser_sees_them(app):
    ids = {name: fn_index(client(app.url), name) for name in ("chat", "open", "search", "rename", "delete")}
    a = httpx.Client(base_url=app.url, timeout=60)
    page = a.get("/")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("kb_browser=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "kb_browser" not in a.get("/").headers.get("set-cookie", "")  # given once

    first = queue_output(queue_call(a, ids["chat"], [QUESTION, [], None], session_hash="a-tab-1"))
    [(title, cid)] = choices(first[4])
    assert title == QUESTION and first[5] == QUESTION
    follow = queue_output(
        queue_call(a, ids["chat"], ["And when did the project end?", [], None], session_hash="a-tab-1")
    )
    assert [c for _, c in choices(follow[4])] == [cid]  # the same conversation, not a new one

    # a reload (a new Gradio session, the same browser): listed, opened whole, and continued
    listed = queue_output(queue_call(a, ids["search"], ["", None], session_hash="a-tab-2"))
    assert choices(listed[0]) == [(QUESTION, cid)]
    opened = queue_output(queue_call(a, ids["open"], [cid], session_hash="a-tab-2"))
    messages = opened[0]
    assert [message_text(m) for m in messages[:1]] == [QUESTION]
    assert "BIOCAT" in message_text(messages[1]) and sources_of(messages)
    assert any("June 2024" in message_text(m) for m in messages)
    more = queue_output(queue_call(a, ids["chat"], ["Who coordinated it?", [], None], session_hash="a-tab-2"))
    assert [c for _, c in choices(more[4])] == [cid]
    assert more[0][: len(messages)] == messages  # the reopened chat grew by the new exchange
    assert queue_output(queue_call(a, ids["search"], ["coordinated", None], session_hash="a-tab-3"))[0][
        "choices"
    ]
    assert not queue_output(queue_call(a, ids["search"], ["zebra", None], session_hash="a-tab-3"))[0][
        "choices"
    ]

    # another browser sees none of it, and naming the id opens nothing
    b = httpx.Client(base_url=app.url, timeout=60)
    b.get("/")
    assert b.cookies["kb_browser"] != a.cookies["kb_browser"]
    assert not queue_output(queue_call(b, ids["search"], ["", None], session_hash="b-tab"))[0]["choices"]
    stolen = queue_call(b, ids["open"], [cid], session_hash="b-tab")
    assert "BIOCAT" not in stolen and QUESTION not in stolen
    nobody = httpx.Client(base_url=app.url, timeout=60)  # no cookie at all: nothing listed or opened
    assert QUESTION not in queue_call(nobody, ids["open"], [cid], session_hash="c-tab")

    # rename and delete act on the open conversation only, for its owner
    renamed = queue_output(queue_call(a, ids["rename"], ["INNAXE partners", None], session_hash="a-tab-2"))
    assert choices(renamed[0]) == [("INNAXE partners", cid)]
    assert (
        queue_output(queue_call(b, ids["search"], ["INNAXE", None], session_hash="b-tab"))[0]["choices"] == []
    )
    gone = queue_output(queue_call(a, ids["delete"], [None], session_hash="a-tab-2"))
    assert gone[0] == [] and gone[3]["choices"] == []
    assert not queue_output(queue_call(a, ids["search"], ["", None], session_hash="a-tab-4"))[0]["choices"]
