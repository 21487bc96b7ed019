"""Big and hostile files with a real embedded Chroma: a file larger than one Chroma write, a file
that fails part-way, per-file limits (pages, unzipped size, time), the file problems kept for
staff, and ``--delete`` by path."""

from __future__ import annotations

import os
from pathlib import Path

from _helpers_files import everything, write_docx, write_docx_bomb, write_pdf, write_text
from test_ingest import _cli, _kb, _search, _sources

from assistant.retrieval import HybridRetriever
from ingest.pipeline import find_source, ingest
from kb import KnowledgeBase

REPO = Path(__file__).resolve().parent.parent

# One paragraph of about 190 tokens: repeated, it makes one chunk per paragraph, all the same
# text (embedded once), each a distinct record in Chroma.
FILLER = " ".join(
    f"Clause {i}: the supplier maintains the pumps, keeps spare parts and reports faults within a day."
    for i in range(10)
)
LAST = "The final clause names the zebra crossing on Abbey Road as the meeting point."


def test_file_larger_than_one_chroma_write_ingests_whole(settings):
    """One chunk more than Chroma takes in one write (5,461 embedded), all in one window: this
    passes only if the window is written in batches; reads then page through it."""
    settings = settings.model_copy(update={"embed_window_chunks": 10_000})
    kb, emb = _kb(settings)
    n = kb.max_batch + 1
    write_text(settings.corpus_dir / "contract.txt", "\n\n".join([FILLER] * (n - 1) + [LAST]))

    report = ingest(None, settings, kb)
    outcome = report.outcome("contract.txt")
    assert (outcome.status, outcome.chunks) == ("added", n), report.to_json()
    assert sorted(emb.embedded) == sorted([FILLER, LAST]), "the repeated paragraph is embedded once"
    assert kb.count_chunks() == n
    [last] = kb.collection.get(where={"chunk": n - 1}, limit=2, include=["documents"])["documents"]
    assert last == LAST

    kb.max_batch = 500  # reads page through the collection
    ids = [cid for page in kb.pages(include=[]) for cid in page["ids"]]
    assert len(ids) == len(set(ids)) == n
    assert kb.chunk_ids("contract.txt") == set(ids)
    assert kb.check().ok, "Chroma, keyword rows and records agree"
    top = HybridRetriever(kb).retrieve("Where is the meeting point, the zebra crossing?")[0]
    assert (top.source, top.text) == ("contract.txt", LAST), "the end of the big file is found"


def _state(kb: KnowledgeBase, source: str) -> tuple[set[str], set[str], str]:
    """(chunk ids in Chroma, keys in the record manager, registered hash) of one source."""
    doc = kb.get_document(source)
    return (
        kb.chunk_ids(source),
        set(kb.record_manager.list_keys(group_ids=[source])),
        doc.sha256 if doc else "",
    )


def test_changed_file_failing_part_way_keeps_its_previous_version(settings):
    corpus = settings.corpus_dir
    old_pages = ["The pump pilot runs in Kenya.", "Budget: 40,000 euros.", "Partners: two clinics."]
    write_pdf(corpus / "report.pdf", old_pages)
    settings = settings.model_copy(update={"embed_window_chunks": 2})  # pages 1-4 are indexed before 5 fails
    kb, _ = _kb(settings)
    kb.max_batch = 2  # every write, read and delete below crosses batch boundaries
    ingest(None, settings, kb)
    before = _state(kb, "report.pdf")
    assert len(before[0]) == 3

    new_pages = [f"Page {n}: the pilot moved to Tanzania in year {n}." for n in range(1, 7)]
    write_pdf(corpus / "report.pdf", new_pages, unreadable=[5])
    write_text(corpus / "a-notes.txt", "Alpha notes: the steering group meets in Lyon.")
    write_text(corpus / "z-notes.txt", "Zeta notes: the audit is due in March.")
    report = ingest(None, settings, kb)

    failed = report.outcome("report.pdf")
    assert failed.status == "failed" and failed.reason.startswith("corrupt PDF: page 5: "), failed
    assert _state(kb, "report.pdf") == before, "the old version's chunks, records and registry row stay"
    assert not any("Tanzania" in t for t in _docs(kb)[0]), "partial new chunks are removed"
    assert kb.check().ok
    assert _search(kb, "Where does the pump pilot run?") == "report.pdf"
    assert report.outcome("a-notes.txt").status == report.outcome("z-notes.txt").status == "added"
    assert _search(kb, "When is the audit due?") == "z-notes.txt"
    [problem] = kb.file_problems()
    assert (problem.source, problem.status, problem.reason) == ("report.pdf", "failed", failed.reason)

    write_pdf(corpus / "report.pdf", new_pages)  # fixed
    fixed = ingest(None, settings, kb)
    assert fixed.outcome("report.pdf").status == "updated"
    texts = [t for t, m in zip(*_docs(kb)) if m["source"] == "report.pdf"]
    assert len(texts) == 6 and all("Tanzania" in t for t in texts), "only the new version is left"
    assert kb.file_problems() == []


def _docs(kb: KnowledgeBase) -> tuple[list[str], list[dict]]:
    got = everything(kb)
    return got["documents"], got["metadatas"]


def test_page_and_unzipped_limits_refuse_by_name_and_the_others_go_on(settings):
    corpus = settings.corpus_dir
    write_pdf(corpus / "manual.pdf", [f"Manual page {n}." for n in range(1, 6)])
    write_docx_bomb(corpus / "bomb.docx", 5_000_000)
    write_docx(corpus / "plan.docx", [("Scope", "We deliver three solar pumps to the clinics.")])
    write_text(corpus / "notes.txt", "The steering committee meets quarterly in Lyon.")
    limited = settings.model_copy(update={"max_pdf_pages": 3, "max_unzipped_mb": 2.0})
    kb, _ = _kb(limited)

    report = ingest(None, limited, kb)
    by_source = {f.source: f for f in report.files}
    assert (by_source["manual.pdf"].status, by_source["manual.pdf"].reason) == (
        "skipped",
        "too many pages: 5 > 3 limit (ASSISTANT_MAX_PDF_PAGES)",
    )
    assert (by_source["bomb.docx"].status, by_source["bomb.docx"].reason) == (
        "skipped",
        "inflates too much: 5.8 MB unzipped > 2 MB limit (ASSISTANT_MAX_UNZIPPED_MB)",
    )
    assert by_source["plan.docx"].status == by_source["notes.txt"].status == "added"
    assert set(_sources(kb)) == {"plan.docx", "notes.txt"}
    assert _search(kb, "How many solar pumps are delivered?") == "plan.docx"
    problems = {p.source: (p.status, p.reason) for p in kb.file_problems()}
    assert problems == {
        "manual.pdf": ("skipped", by_source["manual.pdf"].reason),
        "bomb.docx": ("skipped", by_source["bomb.docx"].reason),
    }
    assert all(p.at > 0 for p in kb.file_problems())

    (corpus / "bomb.docx").unlink()  # gone from the scanned folder: its problem goes too
    raised = limited.model_copy(update={"max_pdf_pages": 10})
    again = ingest(None, raised, kb)
    assert again.outcome("manual.pdf").status == "added"
    assert kb.file_problems() == []


def test_time_limit_fails_a_slow_file_by_name_and_keeps_its_old_version(settings):
    corpus = settings.corpus_dir
    write_pdf(corpus / "handbook.pdf", ["Holidays: staff get 25 days a year."])
    kb, _ = _kb(settings)
    ingest(None, settings, kb)
    before = _state(kb, "handbook.pdf")

    # 5,000 pages take well over a second to walk and read; a small text file a few milliseconds.
    write_pdf(corpus / "handbook.pdf", ["Holidays: staff now get 30 days a year."] * 5000)
    write_text(corpus / "notes.txt", "The steering committee meets quarterly in Lyon.")
    quick = settings.model_copy(update={"max_file_seconds": 0.25, "embed_window_chunks": 64})
    report = ingest(None, quick, kb)

    slow = report.outcome("handbook.pdf")
    assert (slow.status, slow.reason) == (
        "failed",
        "took too long: over the 0.25 s limit (ASSISTANT_MAX_FILE_SECONDS)",
    )
    assert report.outcome("notes.txt").status == "added"
    assert _state(kb, "handbook.pdf") == before
    assert _search(kb, "How many holiday days do staff get?") == "handbook.pdf"
    assert [(p.source, p.status) for p in kb.file_problems()] == [("handbook.pdf", "failed")]


def test_delete_by_path_or_source_and_unknown_names_fail(settings):
    corpus = settings.corpus_dir
    write_text(corpus / "guide.md", "# Guide\n\nThe pump manual lives in the shared drive.")
    write_text(corpus / "notes" / "beta.txt", "Beta notes: the audit is due in March.")
    write_text(settings.uploads_dir / "memo.txt", "Memo: the budget review is on Friday.")
    kb, _ = _kb(settings)
    ingest(None, settings, kb)
    ingest([settings.uploads_dir / "memo.txt"], settings, kb)
    assert set(_sources(kb)) == {"guide.md", "notes/beta.txt", "uploads/memo.txt"}
    assert find_source(kb, "notes/beta.txt") == "notes/beta.txt"  # a source id as --list shows it
    assert find_source(kb, str(corpus / "notes" / "beta.txt")) == "notes/beta.txt"
    assert find_source(kb, str(settings.uploads_dir / "memo.txt")) == "uploads/memo.txt"
    assert find_source(kb, str(corpus / "never.md")) is None
    kb.close()

    relative = os.path.relpath(corpus / "guide.md", REPO)  # as typed in a shell: ../../tmp/.../guide.md
    cli = _cli(settings, "--delete", relative, "--delete", "nothing-here.md")
    assert cli.returncode == 1, "a name that matches nothing indexed is an error"
    assert "removed guide.md: 1 chunks" in cli.stderr and "next ingest adds it again" in cli.stderr
    assert "error: nothing indexed under 'nothing-here.md'" in cli.stderr
    assert "removed nothing-here.md" not in cli.stderr
    assert set(_sources(KnowledgeBase(settings))) == {"notes/beta.txt", "uploads/memo.txt"}
