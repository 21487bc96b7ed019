"""Ingestion end to end with a real embedded Chroma: incremental runs, metadata, removal,
duplicates, bad input, a killed run, concurrent runs and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from assistant.retrieval import HybridRetriever
from ingest.pipeline import delete_document, ingest
from kb import ConfigError, IngestBusy, KnowledgeBase
from kb.embeddings import make_embeddings
from kb.keyword import KeywordRow
from tests._helpers_files import everything, write_corrupt_pdf, write_docx, write_pdf, write_text

REPO = Path(__file__).resolve().parent.parent

ALPHA = "Project Alpha builds a solar-powered water pump for rural clinics. The pilot runs in Kenya."
BETA = "Project Beta trains nurses in telemedicine. It is funded by the Nordic Health Fund until 2027."


class CountingEmbeddings:
    """The real model, counting the texts it is asked to embed (instrumentation, not a fake)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.embedded: list[str] = []

    def embed_documents(self, texts):
        self.embedded.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def _kb(settings, **kw) -> tuple[KnowledgeBase, CountingEmbeddings]:
    counting = CountingEmbeddings(make_embeddings(settings))
    return KnowledgeBase(settings, embeddings=counting, **kw), counting


def _sources(kb: KnowledgeBase) -> dict[str, int]:
    metas = everything(kb, ("metadatas",))["metadatas"]
    out: dict[str, int] = {}
    for m in metas:
        out[m["source"]] = out.get(m["source"], 0) + 1
    return out


def _search(kb: KnowledgeBase, query: str) -> str:
    hits = kb.vectorstore.similarity_search(query, k=1)
    return hits[0].metadata["source"] if hits else ""


def test_incremental_add_unchanged_update_remove(settings):
    corpus = settings.corpus_dir
    write_text(corpus / "alpha.txt", ALPHA)
    write_text(corpus / "notes" / "beta.md", "# Beta\n\n" + BETA)
    kb, emb = _kb(settings)

    first = ingest(None, settings, kb)
    assert {f.source: f.status for f in first.files} == {"alpha.txt": "added", "notes/beta.md": "added"}
    assert _sources(kb) == {"alpha.txt": 1, "notes/beta.md": 1}
    assert first.chunks_embedded == 2 and len(emb.embedded) == 2
    version = kb.version()

    again = ingest(None, settings, kb)
    assert [f.status for f in again.files] == ["unchanged", "unchanged"]
    assert len(emb.embedded) == 2, "unchanged files must not be embedded again"
    assert kb.version() == version, "a run that changed nothing must not invalidate readers"

    write_text(corpus / "alpha.txt", ALPHA.replace("Kenya", "Tanzania"))
    changed = ingest(None, settings, kb)
    assert changed.outcome("alpha.txt").status == "updated"
    assert changed.outcome("notes/beta.md").status == "unchanged"
    docs = kb.vectorstore.similarity_search("Where does the pilot run?", k=5)
    alpha_texts = [d.page_content for d in docs if d.metadata["source"] == "alpha.txt"]
    assert alpha_texts == [ALPHA.replace("Kenya", "Tanzania")], "old chunks must be replaced, not kept"

    (corpus / "notes" / "beta.md").unlink()
    removed = ingest(None, settings, kb)
    assert removed.outcome("notes/beta.md").status == "removed"
    assert _sources(kb) == {"alpha.txt": 1}
    assert [d.source for d in kb.list_documents()] == ["alpha.txt"]
    assert kb.version() > version


def test_chunk_metadata_and_token_sizes(settings):
    pages = [("Budget and staffing. " * 60).strip(), "The steering committee meets quarterly in Lyon."]
    write_pdf(settings.corpus_dir / "report.pdf", pages, title="Annual Report")
    write_docx(
        settings.corpus_dir / "plan.docx", [("Scope", "We deliver three pumps."), ("Risks", "Supply delays.")]
    )
    kb, _ = _kb(settings)
    report = ingest(None, settings, kb)
    assert report.totals["added"] == 2, report.to_json()

    got = everything(kb)
    metas = got["metadatas"]
    pdf = [m for m in metas if m["source"] == "report.pdf"]
    assert {m["page"] for m in pdf} == {1, 2}
    assert all(m["title"] == "Annual Report" for m in pdf)
    assert len(pdf) > 2, "a long page is split into several chunks"
    docx = {m["section"] for m in metas if m["source"] == "plan.docx"}
    assert docx == {"Scope", "Risks"}
    for text, m in zip(got["documents"], metas):
        assert {"chunk", "start", "end", "file_hash", "ingested_at"} <= m.keys()
        assert m["end"] - m["start"] == len(text)
        assert len(m["file_hash"]) == 64
    from kb.embeddings import count_tokens

    assert max(count_tokens(t) for t in got["documents"]) <= settings.chunk_tokens


def test_duplicate_content_under_two_names_is_embedded_once(settings):
    write_text(settings.corpus_dir / "a.txt", ALPHA)
    write_text(settings.corpus_dir / "copy-of-a.txt", ALPHA)
    kb, emb = _kb(settings)
    ingest(None, settings, kb)
    assert emb.embedded == [ALPHA]
    assert _sources(kb) == {"a.txt": 1, "copy-of-a.txt": 1}


def test_corpus_cleanup_leaves_uploads_and_delete_document(settings):
    write_text(settings.corpus_dir / "alpha.txt", ALPHA)
    upload = write_text(settings.uploads_dir / "beta.txt", BETA)
    kb, _ = _kb(settings)
    ingest(None, settings, kb)
    assert ingest([upload], settings, kb).outcome("uploads/beta.txt").status == "added"

    (settings.corpus_dir / "alpha.txt").unlink()
    report = ingest(None, settings, kb)  # scans the corpus folder only
    assert report.outcome("alpha.txt").status == "removed"
    assert report.outcome("uploads/beta.txt") is None
    assert _sources(kb) == {"uploads/beta.txt": 1}

    assert delete_document(kb, "uploads/beta.txt", remove_file=True) == 1
    assert _sources(kb) == {} and kb.list_documents() == []
    assert not upload.exists()


def test_bad_input_is_reported_and_loses_nothing(settings, tmp_path):
    corpus = settings.corpus_dir
    write_text(corpus / "good.txt", ALPHA)
    kb, _ = _kb(settings)
    ingest(None, settings, kb)
    assert _search(kb, "solar water pump") == "good.txt"

    write_corrupt_pdf(corpus / "corrupt.pdf")
    write_pdf(corpus / "secret.pdf", ["Top secret budget"], password="hunter2")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 20)
    write_text(corpus / "latin1.txt", "Le café du projet Gamma ouvre à Montréal.", encoding="latin-1")
    (corpus / "huge.txt").write_bytes(b"word " * 300_000)  # 1.5 MB > the 1 MB limit set below
    os.symlink(corpus / "loop-b.txt", corpus / "loop-a.txt")
    os.symlink(corpus / "loop-a.txt", corpus / "loop-b.txt")
    os.mkfifo(corpus / "unreadable.txt")  # root can read any file mode; a FIFO it cannot read as a file
    (corpus / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # a PNG's signature and nothing else
    (corpus / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    outside = write_text(tmp_path / "elsewhere" / "outside.txt", BETA)

    settings = settings.model_copy(update={"max_file_mb": 1.0})
    report = ingest([corpus, outside], settings, kb)
    by_source = {f.source: f for f in report.files}
    expected = {
        "corrupt.pdf": ("failed", "corrupt"),
        "secret.pdf": ("failed", "encrypted"),
        "empty.txt": ("skipped", "empty"),
        "binary.txt": ("failed", "binary"),
        "huge.txt": ("skipped", "too large"),
        "loop-a.txt": ("failed", "symlink loop"),
        "loop-b.txt": ("failed", "symlink loop"),
        "unreadable.txt": ("failed", "not a regular file"),
        "image.png": ("failed", "damaged"),
        "clip.mp4": ("skipped", "unsupported"),
        str(outside): ("skipped", "outside the corpus root"),
    }
    for source, (status, reason) in expected.items():
        assert by_source[source].status == status, by_source[source]
        assert reason in by_source[source].reason.lower(), by_source[source]
    assert by_source["good.txt"].status == "unchanged"
    assert by_source["latin1.txt"].status == "added"

    assert _sources(kb) == {"good.txt": 1, "latin1.txt": 1}, "no duplicates, nothing from bad files"
    assert _search(kb, "solar water pump") == "good.txt"
    hit = kb.vectorstore.similarity_search("café Montréal", k=1)[0]
    assert "café" in hit.page_content and "Montréal" in hit.page_content


def test_bad_file_does_not_remove_its_previous_version(settings):
    path = write_text(settings.corpus_dir / "alpha.txt", ALPHA)
    kb, _ = _kb(settings)
    ingest(None, settings, kb)
    path.write_bytes(bytes(range(256)) * 10)  # the file is overwritten with garbage
    report = ingest(None, settings, kb)
    assert report.outcome("alpha.txt").status == "failed"
    assert _search(kb, "solar water pump") == "alpha.txt", "the last good version stays searchable"


def test_embedding_model_mismatch_is_refused(settings):
    write_text(settings.corpus_dir / "alpha.txt", ALPHA)
    ingest(None, settings)
    other = settings.model_copy(update={"embeddings": "openai", "openai_api_key": "sk-test"})
    with pytest.raises(ConfigError, match="--rebuild"):
        KnowledgeBase(other)


def test_second_ingest_waits_then_fails_clearly(settings):
    write_text(settings.corpus_dir / "alpha.txt", ALPHA)
    kb, _ = _kb(settings)
    with kb.lock():
        with pytest.raises(IngestBusy, match="another ingest is running"):
            ingest(None, settings.model_copy(update={"lock_timeout_s": 0.5}))
        proc = _cli(settings, extra_env={"ASSISTANT_LOCK_TIMEOUT_S": "0.5"})
        assert proc.returncode == 2
        assert "another ingest is running" in proc.stderr
    assert ingest(None, settings, kb).totals["added"] == 1
    with pytest.raises(TimeoutError), kb.lock():  # a timeout while holding the lock is not "busy"
        raise TimeoutError("a slow server")


def _cli(settings, *args: str, extra_env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(settings.data_dir),
        "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def test_cli_reports_and_exit_codes(settings):
    write_text(settings.corpus_dir / "alpha.txt", ALPHA)
    dry = _cli(settings, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["files"][0]["status"] == "added"
    assert KnowledgeBase(settings).count_chunks() == 0, "a dry run writes nothing"

    ok = _cli(settings)
    assert ok.returncode == 0 and "added" in ok.stdout and "alpha.txt" in ok.stdout

    write_corrupt_pdf(settings.corpus_dir / "bad.pdf")
    failed = _cli(settings, "--json")
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["totals"] == {
        "added": 0,
        "updated": 0,
        "unchanged": 1,
        "removed": 0,
        "skipped": 0,
        "failed": 1,
    }

    listed = _cli(settings, "--list", "--json")
    assert [d["source"] for d in json.loads(listed.stdout)] == ["alpha.txt"]
    checked = _cli(settings, "--check")
    assert checked.returncode == 0 and "consistent" in checked.stdout, checked.stdout
    kb = KnowledgeBase(settings)
    kb.keywords.delete(kb.chunk_ids("alpha.txt"))  # as if a run died between the two engines
    broken = _cli(settings, "--check")
    assert broken.returncode == 1 and "in Chroma only" in broken.stdout, broken.stdout
    ingest(None, settings)  # unchanged files are not rewritten: the check is what finds this
    assert _cli(settings, "--check").returncode == 1
    repaired = _cli(settings, "--repair")
    assert repaired.returncode == 0 and "1 keyword rows filled" in repaired.stdout, repaired.stdout
    assert _cli(settings, "--check").returncode == 0
    assert kb.keywords.search(["kenya"], 5), "found by keywords again"

    bad = _cli(settings, extra_env={"ASSISTANT_CHUNK_TOKENS": "lots"})
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "ASSISTANT_CHUNK_TOKENS" in bad.stderr

    rebuilt = _cli(settings, "--rebuild", "--json")
    assert json.loads(rebuilt.stdout)["totals"]["added"] == 1
    assert KnowledgeBase(settings).count_chunks() == 1


def test_repair_brings_chroma_keywords_and_records_back_in_step(settings):
    write_text(settings.corpus_dir / "alpha.txt", ALPHA)
    write_text(settings.corpus_dir / "beta.txt", BETA)
    kb = KnowledgeBase(settings)
    ingest(None, settings, kb)
    [alpha] = kb.chunk_ids("alpha.txt")
    [beta] = kb.chunk_ids("beta.txt")
    # What crashes between the stores could leave: a stray keyword row, a chunk nobody records,
    # and a record whose chunk is gone.
    kb.keywords.add([KeywordRow("stray", "gone.txt", ["pump"])])
    kb.collection.add(
        ids=["orphan"],
        documents=["Orphan text."],
        embeddings=[[0.1] * 384],
        metadatas=[{"source": "alpha.txt"}],
    )
    kb.collection.delete(ids=[beta])
    kb.keywords.delete([beta])
    found = kb.check()
    assert (found.only_in_keywords, found.without_record, found.without_chunk) == (
        ["stray"],
        ["orphan"],
        [beta],
    )

    _, redo = kb.repair()
    assert redo == ["beta.txt"] and kb.check().ok
    assert kb.chunk_ids("alpha.txt") == {alpha}
    again = ingest(None, settings, kb)
    assert again.outcome("beta.txt").status == "added" and again.outcome("alpha.txt").status == "unchanged"
    assert HybridRetriever(kb).retrieve(BETA)[0].source == "beta.txt"
    assert kb.check().ok


def _chunk_state(settings) -> tuple[list[tuple[str, int]], set[str], set[str]]:
    kb = KnowledgeBase(settings)
    got = everything(kb, ("metadatas",))
    pairs = sorted((m["source"], m["chunk"]) for m in got["metadatas"])
    return pairs, set(got["ids"]), set(kb.record_manager.list_keys())


def test_killed_ingest_converges_on_rerun(settings, make_settings, tmp_path):
    for i in range(24):
        write_text(settings.corpus_dir / f"doc{i:02d}.txt", f"Document {i}. " + (BETA + " ") * 6)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingest"],
        cwd=REPO,
        env={
            **os.environ,
            "ASSISTANT_DATA_DIR": str(settings.data_dir),
            "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
            "ASSISTANT_EMBED_WINDOW_CHUNKS": "8",  # files are committed while later ones embed
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = sa.create_engine(settings.record_url)
    deadline = time.time() + 240
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with engine.connect() as conn:
                done = conn.execute(sa.text("select count(*) from kb_documents")).scalar()
        except sa.exc.OperationalError:
            done = 0  # tables not created yet
        if done >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    engine.dispose()
    assert 3 <= done < 24, "the kill must land mid-way"

    rerun = _cli(settings, "--json")
    assert rerun.returncode == 0, rerun.stderr
    pairs, ids, keys = _chunk_state(settings)
    assert len(pairs) == len(set(pairs)), "no duplicate chunks"
    assert ids == keys, "every chunk is known to the record manager (no orphans)"
    check = _cli(settings, "--check", "--json")
    assert check.returncode == 0 and json.loads(check.stdout)["keyword_rows"] == len(ids), check.stdout

    clean = make_settings(data_dir=tmp_path / "clean", corpus_dir=settings.corpus_dir)
    ingest(None, clean)
    assert pairs == _chunk_state(clean)[0], "the same chunks as one uninterrupted ingest"
