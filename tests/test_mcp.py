"""The MCP server through the SDK's own client: over stdio (spawned as a desktop client would)
and over streamable HTTP at ``/mcp`` in the running app, with API keys and permissions."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from _helpers_app import BOARD, REPO, STAFF, VIEWER, app_env, call, client, running_app
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from ingest.pipeline import ingest
from tests._helpers_files import write_text

QUESTION = "Which partners make up the INNAXE consortium?"
INNAXE = "innaxe-cluster-collaboration-results.txt"
PARTNERS = "innaxe-partners.xlsx"  # its partner sheet's rows rank first for QUESTION, the article next
MINUTES = "The board approved a confidential Kestrel bonus of 900 euros for the Kestrel project lead."
NOTES = 34  # small documents, so that paging takes several pages
SHIPPED = 4  # corpus/: the article, its scanned page, the slide deck and the partner spreadsheet
TOOLS = {"search", "ask", "list_documents", "get_passage"}


def run(session: Client, body: Callable[[Client], Awaitable[Any]]) -> Any:
    """``body(client)`` inside one connected MCP client session."""

    async def main() -> Any:
        async with session as client:
            return await body(client)

    return anyio.run(main)


async def tool(client: Client, name: str, **arguments: Any) -> dict:
    """A tool's structured result; fails the test on an error result."""
    result = await client.call_tool(name, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def tool_error(client: Client, name: str, **arguments: Any) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error, result.structured_content
    return " ".join(part.text for part in result.content)


def write_notes(corpus) -> None:
    for i in range(NOTES):
        write_text(
            corpus / "notes" / f"note-{i:02d}.txt", f"Weekly note {i}: the team met and planned sprint {i}."
        )


# --- stdio ------------------------------------------------------------------------------------


def test_the_stdio_server_serves_every_tool_and_the_documents(make_settings, shipped_corpus):
    write_notes(shipped_corpus)
    settings = make_settings(corpus_dir=shipped_corpus)
    report = ingest(None, settings)
    assert not report.failed
    env = app_env(ASSISTANT_DATA_DIR=str(settings.data_dir), ASSISTANT_CORPUS_DIR=str(shipped_corpus))
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "assistant.mcp"], cwd=str(REPO), env=env
    )

    async def session(client: Client) -> None:
        tools = (await client.list_tools()).tools
        assert {t.name for t in tools} == TOOLS
        assert all(t.description and t.input_schema["type"] == "object" for t in tools)
        search_schema = next(t for t in tools if t.name == "search").input_schema
        assert search_schema["required"] == ["query"] and search_schema["properties"]["k"]["maximum"] == 20

        found = await tool(client, "search", query=QUESTION, k=3)
        assert 1 <= len(found["passages"]) <= 3
        top = found["passages"][0]
        assert top["source"] == PARTNERS and "Partner: BIOCAT" in top["text"]
        assert top["location"].endswith(", sheet Partners, rows 2-7")
        assert top["uri"] == f"doc://{PARTNERS}" and top["url"] is None  # no public URL configured
        assert INNAXE in [p["source"] for p in found["passages"]]

        answer = await tool(client, "ask", question=QUESTION)
        assert not answer["declined"] and "BIOCAT" in answer["text"] and answer["confidence"] > 0.5
        assert answer["verdict"] == "supported" and answer["unsupported"] == []
        cited = answer["citations"][0]
        assert f"[{cited['n']}]" in answer["text"] and cited["source"] == INNAXE
        # a follow-up, with the conversation so far
        history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": answer["text"]}]
        followup = await tool(client, "ask", question="When did they present the results?", history=history)
        assert followup["text"]

        around = await tool(client, "get_passage", passage_id=cited["passage_id"])
        assert around["passage"]["id"] == cited["passage_id"] and around["passage"]["source"] == INNAXE
        neighbours = [p for p in (around["before"], around["after"]) if p]
        assert neighbours and all(
            p["source"] == INNAXE and p["id"] != cited["passage_id"] for p in neighbours
        )

        listed = await tool(client, "list_documents", limit=200)
        sources = [d["source"] for d in listed["documents"]]
        assert sources == sorted(sources) and INNAXE in sources and len(sources) == NOTES + SHIPPED
        assert listed["next_cursor"] is None
        notes = await tool(client, "list_documents", collection="notes", limit=200)
        assert {tuple(d["collections"]) for d in notes["documents"]} == {("notes",)} and len(
            notes["documents"]
        ) == NOTES

        resources = await client.list_resources()
        uris = [str(r.uri) for r in resources.resources]
        assert f"doc://{INNAXE}" in uris and "doc://notes/note-07.txt" in uris
        text = (await client.read_resource(f"doc://{INNAXE}")).contents[0].text
        assert "BIOCAT" in text and "Spinoff Bulgaria" in text
        note = (await client.read_resource("doc://notes/note-07.txt")).contents[0].text
        assert note == "Weekly note 7: the team met and planned sprint 7."

        # errors are messages, not tracebacks
        assert "No passage with that id" in await tool_error(client, "get_passage", passage_id="nope")
        assert "cursor" in await tool_error(client, "list_documents", cursor="%%%")
        assert "k" in await tool_error(client, "search", query="x", k=0)
        assert "not a collection name" in await tool_error(client, "search", query="x", collections=["../x"])

    run(Client(server), session)


def test_a_server_limited_to_some_collections_serves_only_them(make_settings):
    from assistant.core import Assistant
    from assistant.mcp import build_server
    from kb.access import Scope

    settings = make_settings()
    write_text(settings.corpus_dir / "notes" / "otters.txt", "The otter survey counted 14 otters in 2023.")
    write_text(settings.corpus_dir / "board" / "otters.txt", "The board gave the otter survey 900 euros.")
    ingest(None, settings)
    limited = Scope().narrowed(collections=["notes"])  # what ``--collections notes`` serves
    server = build_server(Assistant.from_settings(settings), lambda ctx: limited)

    async def session(client: Client) -> None:
        found = await tool(client, "search", query="otter survey", k=10)
        assert {p["source"] for p in found["passages"]} == {"notes/otters.txt"}
        listed = await tool(client, "list_documents")
        assert [d["source"] for d in listed["documents"]] == ["notes/otters.txt"]
        within_board = await tool(client, "search", query="otter survey", collections=["board"])
        assert within_board["passages"] == []  # asking within another collection never widens
        with pytest.raises(Exception, match="No document"):
            await client.read_resource("doc://board/otters.txt")

    run(Client(server), session)


# --- streamable HTTP in the running app ---------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The shipped corpus, 34 notes and the board's minutes; sign-in required for everything."""
    root = tmp_path_factory.mktemp("mcp-app")
    corpus = root / "seed"
    subprocess.run(["cp", "-r", str(REPO / "corpus"), str(corpus)], check=True)
    write_notes(corpus)
    write_text(corpus / "board" / "minutes.txt", MINUTES)
    with running_app(root, corpus=corpus, extra_env={"ASSISTANT_REQUIRE_LOGIN": "true"}) as running:
        yield running


def app_cli(app, *args: str) -> subprocess.CompletedProcess:
    env = app_env(
        ASSISTANT_DATA_DIR=str(app.data_dir),
        ASSISTANT_CORPUS_DIR=str(app.corpus_dir),
        ASSISTANT_USERS_FILE=str(app.data_dir.parent / "users.json"),
    )
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def keys(app) -> dict[str, str]:
    """An API key for each user, made with the CLI."""
    return {
        name: app_cli(app, "webapp.apikeys", "create", name, "--label", "mcp").stdout.strip()
        for name in (STAFF[0], VIEWER[0], BOARD[0])
    }


def over_http(app, key: str | None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=120)
    return Client(streamable_http_client(f"{app.url}/mcp", http_client=http))


def test_http_needs_a_valid_api_key(app, keys):
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/list",
        "params": {},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    for authorization in (None, "Bearer kb-not-a-key"):
        sent = {**headers, **({"Authorization": authorization} if authorization else {})}
        refused = httpx.post(f"{app.url}/mcp", json=hello, headers=sent, timeout=30)
        assert refused.status_code == 401
    # a sign-in cookie is not enough: only a key
    with httpx.Client(base_url=app.url, timeout=30) as browser:
        assert browser.post("/login", data={"username": VIEWER[0], "password": VIEWER[1]}).status_code == 200
        assert browser.post("/mcp", json=hello, headers=headers).status_code == 401

    # a page whose domain was re-pointed at this machine (DNS rebinding) is refused, key or not
    keyed = {**headers, "Authorization": f"Bearer {keys[VIEWER[0]]}"}
    foreign = httpx.post(f"{app.url}/mcp", json=hello, headers={**keyed, "Host": "evil.example"}, timeout=30)
    assert foreign.status_code == 421
    cross = httpx.post(
        f"{app.url}/mcp", json=hello, headers={**keyed, "Origin": "http://evil.example"}, timeout=30
    )
    assert cross.status_code == 403

    async def listed(client: Client) -> set[str]:
        return {t.name for t in (await client.list_tools()).tools}

    assert run(over_http(app, keys[VIEWER[0]]), listed) == TOOLS


def test_http_tools_link_into_the_app_and_page_without_gaps_while_documents_arrive(app, keys):
    def add(name: str) -> None:
        write_text(app.corpus_dir / "notes" / name, f"Late note {name}: added while a client paged.")
        app_cli(app, "ingest", str(app.corpus_dir / "notes" / name))

    async def session(client: Client) -> None:
        found = await tool(client, "search", query=QUESTION)
        top = found["passages"][0]
        assert top["source"] == PARTNERS and top["url"] == f"{app.url}/files/{PARTNERS}"
        assert httpx.get(top["url"], headers={"Authorization": f"Bearer {keys[STAFF[0]]}"}).status_code == 200
        answer = await tool(client, "ask", question=QUESTION)
        assert answer["citations"] and answer["citations"][0]["url"].startswith(f"{app.url}/files/")

        before = [d["source"] for d in (await tool(client, "list_documents", limit=200))["documents"]]
        assert len(before) == NOTES + 1 + SHIPPED  # the notes, the minutes, the shipped corpus
        seen: list[str] = []
        page = await tool(client, "list_documents", limit=7)
        pages = 1
        while True:
            seen += [d["source"] for d in page["documents"]]
            if pages == 2:  # documents arrive mid-way: one before the cursor, one after it
                await anyio.to_thread.run_sync(add, "aaa-early.txt")
                await anyio.to_thread.run_sync(add, "zzz-late.txt")
            if not page["next_cursor"]:
                break
            page = await tool(client, "list_documents", limit=7, cursor=page["next_cursor"])
            pages += 1
        assert pages >= 5
        assert len(seen) == len(set(seen))  # no repeats
        assert set(before) <= set(seen)  # no gaps
        assert "notes/zzz-late.txt" in seen  # a document added ahead of the cursor is met

    run(over_http(app, keys[STAFF[0]]), session)


def test_a_key_never_gets_a_passage_its_user_may_not_read(app, keys):
    question = "How big was the confidential Kestrel bonus the board approved?"

    async def as_staff(client: Client) -> str:
        found = await tool(client, "search", query=question)
        minutes = [p for p in found["passages"] if p["source"] == "board/minutes.txt"]
        assert minutes, found
        return minutes[0]["id"]

    async def as_viewer(client: Client) -> None:
        found = await tool(client, "search", query=question, k=20)
        assert all(not p["source"].startswith("board/") for p in found["passages"])
        answer = await tool(client, "ask", question=question)
        assert "900" not in answer["text"] and all(
            c["source"] != "board/minutes.txt" for c in answer["citations"]
        )
        assert "No passage" in await tool_error(client, "get_passage", passage_id=minutes_id)
        listed = await tool(client, "list_documents", limit=200)
        assert all(not d["source"].startswith("board/") for d in listed["documents"])
        assert (await tool(client, "list_documents", collection="board"))["documents"] == []
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
        assert "doc://board/minutes.txt" not in uris
        with pytest.raises(Exception, match="No document"):
            await client.read_resource("doc://board/minutes.txt")

    async def as_board(client: Client) -> None:
        found = await tool(client, "search", query=question)
        assert found["passages"][0]["source"] == "board/minutes.txt"
        assert (await tool(client, "get_passage", passage_id=minutes_id))["passage"]["text"] == MINUTES

    minutes_id = run(over_http(app, keys[STAFF[0]]), as_staff)
    note, *_ = call(client(app.url, auth=STAFF), "staff_set_collection_groups", "board", "board")
    assert "board" in note
    run(over_http(app, keys[VIEWER[0]]), as_viewer)
    run(over_http(app, keys[BOARD[0]]), as_board)
