"""The OpenAI-compatible API and API keys, end to end: the real ``openai`` client (streaming and
not) against the running app, where everyone must sign in; keys created on the staff page and
from the CLI, used, and revoked; ``/api/ask``'s Server-Sent Events."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import openai
import pytest
import sqlalchemy as sa
from _helpers_app import REPO, STAFF, VIEWER, app_env, call, client, running_app

from tests.fake_openai import conversation_in, followup_in, model_env

QUESTION = "Which partners make up the INNAXE consortium?"
# The fake model quotes the first sentence sharing the most words with QUESTION: the partner
# spreadsheet's row "Partner: BIOCAT; Consortium: INNAXE", whose sheet ranks first (the article's
# sentence shares as many words but comes later).
SOURCE = "innaxe-partners.xlsx"


pytest_plugins = ["tests.fake_openai"]


@pytest.fixture(scope="module")
def app(tmp_path_factory, fake_openai_server):
    """The shipped corpus, answers streamed by the fake model server, sign-in required for everything."""
    env = {**model_env(fake_openai_server), "ASSISTANT_REQUIRE_LOGIN": "true"}
    with running_app(tmp_path_factory.mktemp("api-app"), extra_env=env) as running:
        yield running


@pytest.fixture(scope="module")
def viewer_key(app) -> str:
    """A key for the viewer, made by staff on the staff page."""
    note, secret, keys, _choice = call(client(app.url, auth=STAFF), "staff_create_key", VIEWER[0], "tests")
    assert "Copy it now" in note and secret["value"].startswith("kb-")
    assert [row[2:4] for row in keys["data"]][0] == [VIEWER[0], "tests"]
    return secret["value"]


def openai_client(app, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, max_retries=0, timeout=60)


def test_the_openai_client_asks_with_a_key_streaming_and_not(app, viewer_key, fake_openai):
    ai = openai_client(app, viewer_key)
    assert [m.id for m in ai.models.list()] == ["assistant", "assistant/general"]

    done = ai.chat.completions.create(
        model="assistant",
        messages=[
            {"role": "system", "content": "Answer like a pirate."},
            {"role": "user", "content": QUESTION},
        ],
        temperature=0.2,  # accepted, and of no effect
    )
    text = done.choices[0].message.content
    assert "BIOCAT" in text and "[1]" in text and done.choices[0].finish_reason == "stop"
    assert done.model_extra["verdict"] == "supported" and done.model_extra["unsupported"] == []
    citations = done.model_extra["citations"]
    assert citations[0]["n"] == 1 and citations[0]["source"] == SOURCE
    assert citations[0]["quote"] in citations[0]["text"] and "BIOCAT" in citations[0]["quote"]
    assert citations[0]["url"] == f"{app.url}/files/{SOURCE}"
    assert done.model_extra["declined"] is False
    # a model cannot say how sure it is: only the offline answerer fills these
    assert (done.model_extra["confidence"], done.model_extra["uncertain"], done.model_extra["reason"]) == (
        None,
        False,
        None,
    )

    chunks = list(
        ai.chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
    )
    deltas = [c.choices[0].delta.content or "" for c in chunks]
    assert len([d for d in deltas if d]) > 1  # it really streamed
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert "".join(deltas) == last.model_extra["answer"] == text
    assert [c["source"] for c in last.model_extra["citations"]] == [c["source"] for c in citations]

    # the conversation travels in the messages, as with any OpenAI model
    follow = ai.chat.completions.create(
        model="assistant",
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": text},
            {"role": "user", "content": [{"type": "text", "text": "And when did the project end?"}]},
        ],
    )
    assert "BIOCAT" in follow.choices[0].message.content
    condensing = [b for b in fake_openai.chat_requests() if followup_in(b) == "And when did the project end?"]
    assert condensing and QUESTION in conversation_in(condensing[-1])  # the model saw the earlier turns

    # and it can say no
    no = ai.chat.completions.create(
        model="assistant",
        messages=[{"role": "user", "content": "What is the airspeed velocity of a swallow?"}],
    )
    assert no.model_extra["declined"] is True and no.model_extra["citations"] == []


def test_keys_are_required_checked_and_revocable(app, viewer_key):
    no_key = httpx.get(f"{app.url}/v1/models", timeout=10)  # sign-in required: no key, no answer
    assert no_key.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai_client(app, "kb-" + "x" * 43).models.list()
    ai = openai_client(app, viewer_key)
    with pytest.raises(openai.NotFoundError):
        ai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError):
        ai.chat.completions.create(model="assistant", messages=[{"role": "assistant", "content": "Hello"}])

    # the same key opens /files and /api/ask; a wrong one is refused even there
    bearer = {"Authorization": f"Bearer {viewer_key}"}
    assert httpx.get(f"{app.url}/files/{SOURCE}", headers=bearer, timeout=10).status_code == 200
    wrong = {"Authorization": "Bearer kb-wrong"}
    assert httpx.get(f"{app.url}/files/{SOURCE}", headers=wrong, timeout=10).status_code == 401
    assert httpx.get(f"{app.url}/files/{SOURCE}", timeout=10).status_code == 401

    # staff revoke a key: refused from the next request on; the others keep working
    staff = client(app.url, auth=STAFF)
    _, spare, *_ = call(staff, "staff_create_key", VIEWER[0], "spare")
    key_id = int(next(row[0] for row in call(staff, "staff_keys")[0]["data"] if row[3] == "spare"))
    note, *_ = call(staff, "staff_revoke_key", key_id)
    assert note == f"Key {key_id} revoked."
    with pytest.raises(openai.AuthenticationError):
        openai_client(app, spare["value"]).models.list()
    assert [m.id for m in ai.models.list()] == ["assistant", "assistant/general"]
    rows = call(staff, "staff_keys")[0]["data"]
    assert next(row[7] for row in rows if row[0] == key_id).startswith("revoked")

    # only hashes are stored
    engine = sa.create_engine(f"sqlite:///{app.data_dir / 'records.sqlite'}")
    with engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(sa.text("SELECT * FROM kb_api_keys")) for v in row)
    assert viewer_key not in stored and spare["value"] not in stored and viewer_key[:8] in stored


def test_a_key_made_from_the_cli_works_at_once_and_api_ask_streams_events(app):
    env = app_env(
        ASSISTANT_DATA_DIR=str(app.data_dir),
        ASSISTANT_CORPUS_DIR=str(app.corpus_dir),
        ASSISTANT_USERS_FILE=str(app.data_dir.parent / "users.json"),
    )
    made = subprocess.run(
        [sys.executable, "-m", "webapp.apikeys", "create", STAFF[0], "--label", "cli"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("kb-") and "not shown again" in made.stderr
    nobody = subprocess.run(
        [sys.executable, "-m", "webapp.apikeys", "create", "mallory"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert nobody.returncode == 2 and "no user named 'mallory'" in nobody.stderr

    events = []
    with httpx.stream(
        "POST",
        f"{app.url}/api/ask",
        json={"question": QUESTION, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"delta"} and len(kinds) > 2
    answer = events[-1][1]
    assert "".join(d["text"] for _, d in events[:-1]) == answer["text"]
    assert answer["citations"][0]["passage"]["source"] == SOURCE
    assert httpx.post(f"{app.url}/api/ask", json={"question": QUESTION}, timeout=60).status_code == 401
