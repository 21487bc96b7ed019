"""Two app processes (two ports, two data dirs, as on two machines) on one PostgreSQL and one
Chroma server: what one does, the other sees on its next request."""

from __future__ import annotations

import httpx
import pytest
from _helpers_app import STAFF, VIEWER, call, chat, client, message_text, running_app, signed_in
from _helpers_files import write_docx
from gradio_client import handle_file

from webapp.staff import safe_filename


@pytest.fixture
def two_apps(tmp_path, chroma_port, postgres_url):
    shared = {
        "ASSISTANT_CHROMA_HOST": "127.0.0.1",
        "ASSISTANT_CHROMA_PORT": str(chroma_port),
        "ASSISTANT_RECORD_DB_URL": postgres_url,
    }
    with (
        running_app(tmp_path / "machine-a", extra_env=shared) as a,
        running_app(tmp_path / "machine-b", extra_env=shared) as b,
    ):
        yield a, b


def test_upload_on_one_answer_and_sign_in_on_the_other_delete_everywhere(two_apps, tmp_path):
    a, b = two_apps
    assert a.health()["ingest"]["state"] == b.health()["ingest"]["state"] == "done"
    shipped = a.health()["documents"]
    assert shipped > 0 and b.health()["documents"] == shipped
    docx = write_docx(
        tmp_path / "Heron rules.docx",
        [("Heron tariff", "The heron tariff for cluster members is 420 euros per year, payable each March.")],
        title="Heron membership rules",
    )
    source = f"uploads/{safe_filename(docx.name)}"
    summary, *_ = call(client(a.url, auth=STAFF), "staff_upload", [handle_file(str(docx))], "general")
    assert "1 added" in summary
    assert b.health()["documents"] == shipped + 1

    # B answers from it on its next question, and opens the uploaded original.
    messages = chat(client(b.url), "What is the heron tariff for cluster members?")
    assert "420 euros" in message_text(messages[1]), messages
    viewer_b = client(b.url, auth=VIEWER)  # a signed-in user's conversation is saved...
    chat(viewer_b, "What is the heron tariff for cluster members?")
    original = httpx.get(f"{b.url}/files/{source}", timeout=10)
    assert original.status_code == 200 and original.content == docx.read_bytes()

    # A staff sign-in made on A is accepted by B (sessions live in PostgreSQL), and only it.
    on_a = signed_in(a.url, STAFF)
    cookie = on_a.cookies["kb_session"]
    upload = {"files": ("x.txt", b"staff only", "text/plain")}
    assert httpx.post(f"{b.url}/gradio_api/upload", files=upload, timeout=10).status_code in (401, 403)
    as_staff = httpx.post(
        f"{b.url}/gradio_api/upload", files=upload, cookies={"kb_session": cookie}, timeout=10
    )
    assert as_staff.status_code == 200, as_staff.text

    # Deleting through B removes it everywhere: A no longer answers from it or serves it.
    staff_b = client(b.url, auth=STAFF)
    documents, *_ = call(staff_b, "staff_documents")  # B's staff page lists the upload made on A
    assert source in [row[1] for row in documents["data"]]
    done, *_ = call(staff_b, "staff_delete", source)
    assert "Deleted" in done
    after = chat(client(a.url), "What is the heron tariff for cluster members?")
    assert "420" not in "".join(message_text(m) for m in after)
    assert httpx.get(f"{a.url}/files/{source}", timeout=10).status_code == 404
    assert a.health()["documents"] == b.health()["documents"] == shipped

    # ...and continues on A, whose copy of the answer now says its document has left
    viewer_a = client(a.url, auth=VIEWER)
    listed = call(viewer_a, "search", "", None)
    [(title, cid)] = [tuple(c) for c in listed["choices"]]
    assert title == "What is the heron tariff for cluster members?"
    opened, *_ = call(viewer_a, "open", cid)
    assert "420 euros" in message_text(opened[1])
    assert "document no longer available" in message_text(
        opened[2]
    ) and f"/files/{source}" not in message_text(opened[2])
    assert call(client(a.url, auth=STAFF), "search", "", None)["choices"] == []  # not another user's

    # an API key made on A opens B; a read rule set on B holds on A's next question
    _, secret, *_ = call(client(a.url, auth=STAFF), "staff_create_key", VIEWER[0], "replicas")
    bearer = {"Authorization": f"Bearer {secret['value']}"}
    shipped_source = "innaxe-cluster-collaboration-results.txt"
    assert httpx.get(f"{b.url}/files/{shipped_source}", headers=bearer, timeout=10).status_code == 200
    call(client(b.url, auth=STAFF), "staff_set_collection_groups", "general", "board")
    assert httpx.get(f"{a.url}/files/{shipped_source}", headers=bearer, timeout=10).status_code == 404
    asked = httpx.post(
        f"{a.url}/api/ask",
        json={"question": "Which partners make up the INNAXE consortium?"},
        headers=bearer,
        timeout=60,
    ).json()
    assert asked["declined"] and not asked["passages"]
    # ...and a document put on B into a collection the viewer may read opens on A again
    call(client(b.url, auth=STAFF), "staff_set_document_collections", shipped_source, "partners")
    assert httpx.get(f"{a.url}/files/{shipped_source}", headers=bearer, timeout=10).status_code == 200
