"""Server mode: the same ingestion and retrieval against a real ``chroma run`` server and a real
PostgreSQL (started by the tests), with several processes sharing them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from assistant.core import Assistant
from ingest.pipeline import delete_document, ingest
from kb import ConfigError, IngestBusy, KnowledgeBase
from tests._helpers_files import write_text
from tests._helpers_servers import create_database, free_port

REPO = Path(__file__).resolve().parent.parent


def test_ingest_and_reingest_against_a_chroma_server(make_settings, tmp_path, chroma_port):
    settings = make_settings(
        chroma_host="127.0.0.1",
        chroma_port=chroma_port,
        record_db_url=f"sqlite:///{tmp_path / 'shared-records.sqlite'}",
    )
    write_text(
        settings.corpus_dir / "alpha.txt", "Project Alpha installs solar water pumps in Kenyan clinics."
    )
    write_text(settings.corpus_dir / "beta.txt", "Project Beta trains nurses in telemedicine in Finland.")

    first = ingest(None, settings)
    assert first.totals["added"] == 2
    assert not (settings.data_dir / "chroma").exists(), "server mode keeps no embedded Chroma files"

    write_text(settings.corpus_dir / "beta.txt", "Project Beta trains midwives in telemedicine in Estonia.")
    (settings.corpus_dir / "alpha.txt").unlink()
    second = ingest(None, settings)
    assert {f.source: f.status for f in second.files} == {"beta.txt": "updated", "alpha.txt": "removed"}

    kb = KnowledgeBase(settings)
    assert kb.count_chunks() == 1
    answer = Assistant(settings, kb).ask("Who does Project Beta train?")
    assert answer.passages and answer.passages[0].source == "beta.txt"
    assert "midwives" in answer.passages[0].text

    again = ingest(None, settings)
    assert [f.status for f in again.files] == ["unchanged"]


def test_unreachable_chroma_server_is_a_one_line_config_error(make_settings):
    settings = make_settings(chroma_host="127.0.0.1", chroma_port=free_port())
    with pytest.raises(ConfigError, match="ASSISTANT_CHROMA_HOST") as err:
        KnowledgeBase(settings)
    assert "\n" not in str(err.value)


def test_unreachable_postgres_is_a_one_line_config_error(make_settings):
    settings = make_settings(record_db_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/kb")
    with pytest.raises(ConfigError, match="ASSISTANT_RECORD_DB_URL") as err:
        KnowledgeBase(settings)
    assert "\n" not in str(err.value)


@pytest.fixture
def server_settings(make_settings, tmp_path, chroma_port, postgres_url):
    """Settings for the scaled-out mode: Chroma server + PostgreSQL; each "machine" (name) has its
    own data dir, so nothing is shared on disk but the corpus folder."""

    def make(name: str = "one", **overrides):
        return make_settings(
            chroma_host="127.0.0.1",
            chroma_port=chroma_port,
            record_db_url=postgres_url,
            data_dir=tmp_path / f"data-{name}",
            **overrides,
        )

    return make


def test_postgres_and_chroma_server_ingest_reingest_delete_and_ask(server_settings):
    settings = server_settings()
    corpus = settings.corpus_dir
    write_text(corpus / "alpha.txt", "Project Alpha installs QX-5150 solar water pumps in Kenyan clinics.")
    write_text(corpus / "beta.txt", "Project Beta trains nurses in telemedicine in Finland.")
    write_text(corpus / "gamma.txt", "Project Gamma audits the co-financing of rural schools.")
    assert ingest(None, settings).totals["added"] == 3

    kb = KnowledgeBase(settings)
    assert kb.engine.dialect.name == "postgresql"
    with kb.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"kb_documents", "upsertion_record", "kb_state"} <= tables
    assert any(t.startswith("kb_kw_") for t in tables), "keyword rows live in PostgreSQL"
    assert kb.keywords.count() == kb.count_chunks() == 3

    assistant = Assistant(settings, kb)
    top = assistant.retriever.retrieve("QX-5150 pumps")[0]
    assert top.source == "alpha.txt" and top.bm25_score, "the keyword side ranks in PostgreSQL"
    assert assistant.retriever.retrieve("co-financing audits")[0].source == "gamma.txt"

    write_text(corpus / "beta.txt", "Project Beta trains midwives in telemedicine in Estonia.")
    second = ingest(None, settings)
    assert second.outcome("beta.txt").status == "updated"
    assert "midwives" in assistant.ask("Who does Project Beta train?").passages[0].text
    assert not any("nurses" in p.text for p in assistant.retriever.retrieve("nurses telemedicine Finland")), (
        "the old version is gone from both engines"
    )

    assert delete_document(kb, "alpha.txt") == 1
    assert all(p.source != "alpha.txt" for p in assistant.retriever.retrieve("QX-5150 pumps"))
    assert [f.status for f in ingest([corpus / "beta.txt", corpus / "gamma.txt"], settings).files] == [
        "unchanged",
        "unchanged",
    ]
    check = kb.check()
    assert check.ok and check.chunks == check.keyword_rows == check.records == 2, check.to_dict()


def _env(settings) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")},
        "ASSISTANT_DATA_DIR": str(settings.data_dir),
        "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
        "ASSISTANT_CHROMA_HOST": "127.0.0.1",
        "ASSISTANT_CHROMA_PORT": str(settings.chroma_port),
        "ASSISTANT_RECORD_DB_URL": settings.record_db_url,
    }


def _ingest_process(settings, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ingest", "--json", *args],
        cwd=REPO,
        env={**_env(settings), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_ingest_lock_holds_across_machines(server_settings):
    """Another "machine" (own data dir, so no shared lock file) waits for the lock, then gives up."""
    mine, other = server_settings("one"), server_settings("two")
    write_text(other.corpus_dir / "alpha.txt", "Project Alpha installs solar pumps.")
    kb = KnowledgeBase(mine)
    with kb.lock():
        blocked = _ingest_process(other, ASSISTANT_LOCK_TIMEOUT_S="1")
        _, err = blocked.communicate(timeout=120)
    assert blocked.returncode != 0
    assert "another ingest is running" in err and "advisory lock" in err, err
    with pytest.raises(IngestBusy), KnowledgeBase(other).lock(timeout=0), kb.lock(timeout=0.5):
        pass


def test_two_processes_ingesting_at_once_leave_no_duplicate_or_lost_chunk(server_settings):
    one, two = server_settings("one"), server_settings("two")
    for n in range(6):
        write_text(
            one.corpus_dir / f"report-{n}.txt",
            "\n\n".join(
                f"Report {n}, section {s}: site {n}-{s} pumped {s * 10 + n} litres." for s in range(40)
            ),
        )
    files = sorted(one.corpus_dir.iterdir())
    # Both "machines" see the same files (a shared corpus); each ingests an overlapping half.
    first = _ingest_process(one, *map(str, files[:4]))
    second = _ingest_process(two, *map(str, files[2:]))
    for proc in (first, second):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    kb = KnowledgeBase(one)
    check = kb.check()
    assert check.ok, check.to_dict()
    registered = {d.source: d.chunks for d in kb.list_documents()}
    assert sorted(registered) == [f.name for f in files]
    assert check.chunks == check.keyword_rows == check.records == sum(registered.values())
    for source, chunks in registered.items():
        assert len(kb.chunk_ids(source)) == chunks


def test_machines_starting_together_on_a_new_database_all_open_it(server_settings, postgres_admin):
    """Machines that start at once on a new database create its tables together. PostgreSQL's
    CREATE TABLE IF NOT EXISTS is not safe against that (a duplicate pg_type row), so creating
    tables takes a lock: without it, 4 of 8 rounds of six processes had one fail to start."""
    for round_ in range(3):
        url = create_database(postgres_admin)
        machines = [
            server_settings(f"{round_}-{i}").model_copy(update={"record_db_url": url}) for i in range(6)
        ]
        procs = [_ingest_process(m) for m in machines]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
