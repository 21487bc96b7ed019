"""The web app in headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright).

The app runs in openai mode against the fake model server on 127.0.0.1 (``tests/fake_openai.py``),
which can pause part-way through its stream: that makes the streamed state observable -- the
first words on screen, the rest and the sources not yet -- without any timing assertion.
Every step waits for an element; nothing waits for network idle (the queue's stream never idles).
Screenshots go to ``test-output/<test name>/``.
"""

from __future__ import annotations

import re

import pytest
from _helpers_app import STAFF, running_app
from _helpers_files import write_docx
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.fake_openai import model_env
from webapp.feedback import FeedbackStore
from webapp.staff import safe_filename

pytest_plugins = ["tests.fake_openai"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 60_000
STREAMED = "Which European partners does the INNAXE consortium consist of?"
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def app(tmp_path_factory, fake_openai_server):
    env = model_env(fake_openai_server)
    with running_app(tmp_path_factory.mktemp("browser-app"), extra_env=env) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Browser:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.outside_requests = []  # nothing may be fetched from anywhere but the app
    page.csp_violations = []  # the page works under its Content-Security-Policy
    page.on(
        "console",
        lambda m: page.csp_violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith((app.url, "data:", "blob:")) else page.outside_requests.append(r.url)
        ),
    )
    page.goto(app.url + "/")
    page.locator("#question textarea").wait_for()
    yield page
    context.close()


def ask(page: Page, question: str) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#ask").click()


def settle(page: Page) -> None:
    """Let an opening animation finish before a screenshot (the checks never depend on it)."""
    page.wait_for_timeout(600)


def last_answer(page: Page):
    return page.locator('[data-testid="bot"]:not(:has(.thought-group))').last


def test_chat_streams_the_answer_and_opens_its_sources(page, app, fake_openai, output_dir):
    expect(page.locator("#kb-status")).to_contain_text("fake-model")
    # the article, a scanned page, a slide deck and a spreadsheet
    expect(page.locator("#kb-status")).to_contain_text("4 documents, ")
    page.screenshot(path=output_dir / "01-chat.png")

    # the JSON answer's opening ('{"answerable":', 'true,', '"sentences":', '[{"text":'), three words, a pause
    fake_openai.hang_after_chunks, fake_openai.hang_s = 7, 8
    # the fake model quotes the article's long sentence, which names the partners after its first
    # words (for "Which partners make up ...?" it quotes the partner spreadsheet's short first row)
    ask(page, STREAMED)
    answer = last_answer(page)
    expect(answer).to_contain_text("The INNAXE consortium")
    # mid-stream: the start of the answer is on screen, its end and the sources are not
    assert "BIOCAT" not in answer.inner_text()
    assert page.get_by_text("Sources (").count() == 0
    page.screenshot(path=output_dir / "02-streaming.png")

    expect(answer).to_contain_text("BIOCAT")
    expect(answer).to_contain_text("[1]")
    sources_title = page.get_by_text(re.compile(r"Sources \(\d+ passages?\)"))
    sources_title.wait_for()
    link = page.locator(".kb-source a").first
    expect(link).to_be_hidden()  # the block starts closed
    sources_title.click()
    expect(link).to_be_visible()
    expect(page.locator(".kb-source mark").first).to_contain_text("BIOCAT")
    href = link.get_attribute("href")
    assert href == "/files/innaxe-cluster-collaboration-results.txt"
    served = page.request.get(app.url + href)
    assert served.ok and "INNAXE" in served.text()
    settle(page)
    page.screenshot(path=output_dir / "03-sources.png")

    page.locator('#chatbot button[aria-label="Like"]').last.click()
    expect(page.get_by_text("Thanks for the feedback.")).to_be_visible()
    votes = FeedbackStore.open(f"sqlite:///{app.data_dir / 'records.sqlite'}").items()
    assert [(v.question, v.vote) for v in votes] == [(STREAMED, "up")]
    assert votes[0].sources == ["[1] innaxe-cluster-collaboration-results.txt"]
    assert page.outside_requests == []
    assert page.csp_violations == []


def test_staff_signs_in_uploads_a_docx_and_the_chat_answers_from_it(page, app, output_dir, tmp_path):
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator("#staff-panel")).to_have_count(0)  # nothing staff-only before sign-in
    page.locator("#login-user").fill(STAFF[0])
    page.locator("#login-password").fill("wrong")
    page.locator("#sign-in").click()
    # a wrong password lands on the sign-in page, which says so and signs in from there
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    page.locator("#username").fill(STAFF[0])
    page.locator("#password").fill(STAFF[1])
    page.get_by_role("button", name="Sign in").click()
    panel = page.locator("#staff-panel").first
    panel.wait_for()
    expect(panel).to_contain_text(f"Signed in as {STAFF[0]} (staff)")
    page.screenshot(path=output_dir / "01-signed-in.png", full_page=True)

    docx = write_docx(
        tmp_path / "Otter survey 2023.docx",
        [("Results", "The otter survey counted 14 otters along the river in 2023.")],
        title="Otter survey",
    )
    page.locator("#upload-files input[type=file]").set_input_files(str(docx))
    expect(
        page.locator("#upload-files").first.get_by_role("cell", name="Otter survey 2023.docx")
    ).to_be_visible()
    page.locator("#upload").click()
    source = "uploads/" + safe_filename(docx.name)
    expect(page.locator("#ingest-summary")).to_contain_text("1 added")
    expect(page.locator("#ingest-report").first).to_contain_text(source)
    documents = page.locator("#documents-table").first
    expect(documents).to_contain_text("Otter survey")
    expect(documents).to_contain_text(source)
    expect(page.locator("#kb-status")).to_contain_text("5 documents")  # the shipped four and the upload
    page.screenshot(path=output_dir / "02-uploaded.png", full_page=True)

    page.get_by_role("tab", name="Chat").click()
    ask(page, "How many otters did the survey count in 2023?")
    answer = last_answer(page)
    expect(answer).to_contain_text("14 otters")
    page.get_by_text(re.compile(r"Sources \(\d+ passages?\)")).click()
    expect(page.locator(f'.kb-source a[href="/files/{source}"]')).to_be_visible()
    settle(page)
    page.screenshot(path=output_dir / "03-answer-from-upload.png")

    # delete asks to confirm, then the document is gone from the list
    page.get_by_role("tab", name="Documents").click()
    page.locator("#delete-choice input").click()
    page.get_by_role("option", name=source).click()
    page.locator("#delete").click()
    confirm = page.locator("#delete-confirm").first
    expect(confirm).to_contain_text("Otter survey")
    page.screenshot(path=output_dir / "04-confirm-delete.png", full_page=True)
    page.locator("#delete-yes").click()
    expect(page.locator("#delete-result")).to_contain_text("Deleted")
    expect(documents).not_to_contain_text(source)
    assert page.outside_requests == []
    assert page.csp_violations == []
    page.screenshot(path=output_dir / "05-deleted.png", full_page=True)


def test_conversations_are_listed_after_a_reload_reopened_searched_and_deleted(page, app, output_dir):
    conversations = page.locator("#conversations")
    ask(page, "Which partners make up the INNAXE consortium?")
    expect(last_answer(page)).to_contain_text("BIOCAT")
    expect(conversations).to_contain_text("Which partners make up the INNAXE consortium?")
    page.locator("#new-chat").click()
    expect(page.locator('[data-testid="bot"]')).to_have_count(0)
    ask(page, "Where were the project results presented?")
    expect(last_answer(page)).to_contain_text("[1]")
    expect(conversations.locator("label")).to_have_count(2)

    page.reload()  # a new Gradio session: the chat starts empty, the list is still there
    expect(conversations.locator("label")).to_have_count(2)
    expect(page.locator('[data-testid="bot"]')).to_have_count(0)
    conversations.get_by_text("Which partners make up the INNAXE consortium?").click()
    expect(last_answer(page)).to_contain_text("BIOCAT")
    page.get_by_text("This chat").click()
    expect(page.locator("#chat-title textarea, #chat-title input").first).to_have_value(
        "Which partners make up the INNAXE consortium?"
    )
    settle(page)
    page.screenshot(path=output_dir / "01-conversation-reopened.png")

    page.locator("#chat-search textarea, #chat-search input").first.fill("where were")
    expect(conversations.locator("label")).to_have_count(1)
    expect(conversations).to_contain_text("Where were the project results presented?")
    page.locator("#chat-search textarea, #chat-search input").first.fill("")
    expect(conversations.locator("label")).to_have_count(2)

    page.locator("#chat-title textarea, #chat-title input").first.fill("INNAXE partners")
    page.locator("#rename-chat").click()
    expect(conversations).to_contain_text("INNAXE partners")
    settle(page)
    page.screenshot(path=output_dir / "02-conversation-list.png")
    page.locator("#delete-chat").click()
    expect(conversations.locator("label")).to_have_count(1)
    expect(conversations).not_to_contain_text("INNAXE partners")
    expect(page.locator('[data-testid="bot"]')).to_have_count(0)
    assert page.outside_requests == []
    assert page.csp_violations == []


def test_the_picker_narrows_a_question_and_the_answer_says_so(page, output_dir):
    page.locator("#scope-picker input").click()
    page.get_by_role("option", name="Collection: general").click()
    page.keyboard.press("Escape")
    ask(page, "Which partners make up the INNAXE consortium?")
    answer = last_answer(page)
    expect(answer).to_contain_text("BIOCAT")
    expect(answer).to_contain_text("Searched only in: general")
    settle(page)
    page.screenshot(path=output_dir / "01-narrowed.png")
    assert page.outside_requests == []
    assert page.csp_violations == []


def test_staff_set_who_reads_a_collection_and_put_a_document_in_another(page, app, output_dir):
    page.goto(app.url + "/login?next=documents")
    page.locator("#username").fill(STAFF[0])
    page.locator("#password").fill(STAFF[1])
    page.get_by_role("button", name="Sign in").click()
    page.locator("#staff-panel").first.wait_for()
    page.get_by_role("tab", name="Collections").click()
    collections = page.locator("#collections-table").first
    expect(collections).to_contain_text("general")

    page.locator("#rule-collection input").fill("reports")
    page.locator("#rule-groups").get_by_role("textbox").fill("board, finance")
    page.locator("#save-rule").click()
    expect(page.locator("#rule-note")).to_contain_text("reports may now be read by: board, finance")
    expect(collections).to_contain_text("board, finance")

    source = "innaxe-cluster-collaboration-results.txt"
    page.locator("#member-document input").click()
    page.get_by_role("option", name=source).click()
    page.locator("#member-collections").get_by_role("textbox").fill("projects")
    page.locator("#save-members").click()
    expect(page.locator("#rule-note")).to_contain_text("is now in general and projects")
    expect(page.locator("#members-table").first).to_contain_text("projects")
    expect(collections).to_contain_text("projects")
    settle(page)
    page.screenshot(path=output_dir / "01-collections.png", full_page=True)
    assert page.outside_requests == []
    assert page.csp_violations == []
