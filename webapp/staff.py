"""What staff can do to the knowledge base, without any Gradio: the UI checks the role, then
calls these.

Uploads are copied under ``<data dir>/uploads`` with safe names (so their source ids are
``uploads/<name>``), refused when their type or size is not allowed, and ingested like corpus
files. Re-uploading a file with the same name replaces the document; another name never does.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

from ingest.loaders import SUPPORTED_SUFFIXES, human_size
from ingest.pipeline import delete_document, ingest
from ingest.report import FileOutcome, IngestReport
from ingest.watch import Seen
from kb.access import GENERAL, valid_collection
from kb.settings import Settings
from kb.store import DocumentRecord
from webapp.services import Services

Progress = Callable[[int, int, str], None]
REPORT_HEADERS = ["file", "status", "chunks", "detail"]
WATCH_HEADERS = [*REPORT_HEADERS, "when (UTC)"]
DOCUMENT_HEADERS = ["title", "source", "chunks", "size", "ingested at (UTC)"]
FEEDBACK_HEADERS = ["time (UTC)", "user", "vote", "question", "answer", "cited sources"]
_MAX_STEM_BYTES = 150  # file systems allow 255 bytes; leave room for the hash and the suffix
_MAX_SUFFIX = 12


def safe_filename(name: str) -> str:
    """A plain file name: no folders, no leading dots; letters of any script, digits and ``._-``.

    When cleaning changed the name, a short hash of the original is added, so two different
    names never become one ("a b.txt" and "a_b.txt" are both kept) while uploading the same
    name again still replaces that upload.
    """
    base = unicodedata.normalize("NFC", os.path.basename(name.replace("\\", "/")))
    stem, suffix = os.path.splitext(base)
    if not stem or len(suffix) > _MAX_SUFFIX:  # ".txt", "report.2024 final": no real suffix
        stem, suffix = base, ""
    clean_stem = re.sub(r"[^\w.-]+", "_", stem).strip("._-")
    clean_stem = clean_stem.encode()[:_MAX_STEM_BYTES].decode(errors="ignore") or "upload"
    clean_suffix = re.sub(r"[^A-Za-z0-9.]+", "", suffix).lower()
    if clean_stem + clean_suffix == base:
        return base
    tag = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{clean_stem}-{tag}{clean_suffix}"


def upload_limit_bytes(settings: Settings) -> int:
    """Decimal megabytes, as ingestion counts them ("50 MB" means 50,000,000 bytes)."""
    return int(settings.max_upload_mb * 1_000_000)


def save_uploads(
    paths: Iterable[str | Path], settings: Settings, collection: str = GENERAL
) -> tuple[list[Path], list[FileOutcome]]:
    """Copy allowed files into the uploads dir (its folder for ``collection``); the others come
    back as skipped outcomes."""
    if collection != GENERAL and not valid_collection(collection):
        raise ValueError(f"not a collection name: {collection!r}")
    limit = upload_limit_bytes(settings)
    uploads = settings.uploads_dir if collection == GENERAL else settings.uploads_dir / collection
    uploads.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    refused: list[FileOutcome] = []
    for raw in paths:
        src = Path(raw)
        name = safe_filename(src.name)
        suffix = Path(name).suffix
        if suffix not in SUPPORTED_SUFFIXES:
            allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
            refused.append(
                FileOutcome(
                    src.name, "skipped", reason=f"file type {suffix or '(none)'} not allowed ({allowed})"
                )
            )
            continue
        size = src.stat().st_size
        if size > limit:
            refused.append(
                FileOutcome(
                    src.name,
                    "skipped",
                    reason=f"too large: {human_size(size)} > {human_size(limit)} limit",
                )
            )
            continue
        dest = uploads / name
        # Copy then rename: a reader never sees half a file, a failed copy leaves nothing behind.
        fd, tmp = tempfile.mkstemp(dir=uploads, prefix=".upload-")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
        saved.append(dest)
    return saved, refused


def upload_and_ingest(
    paths: Iterable[str | Path],
    services: Services,
    progress: Progress | None = None,
    collection: str = GENERAL,
) -> IngestReport:
    started = time.perf_counter()
    saved, refused = save_uploads(paths, services.settings, collection)
    report = ingest(saved, services.settings, kb=services.kb, progress=progress) if saved else IngestReport()
    report.files = refused + report.files
    report.wall_s = time.perf_counter() - started
    return report


def reingest_corpus(services: Services, progress: Progress | None = None) -> IngestReport:
    return ingest(None, services.settings, kb=services.kb, progress=progress)


def delete(services: Services, source: str) -> int:
    """Take a document out of the index; an uploaded file is removed from disk too."""
    return delete_document(services.kb, source, remove_file=source.startswith("uploads/"))


def report_rows(report: IngestReport) -> list[list]:
    return [
        [f.source, f.status, f.chunks, f.reason if f.status in ("skipped", "failed") else f.title]
        for f in report.files
    ]


def watch_rows(seen: list[Seen]) -> list[list]:
    """The folder watcher's latest outcome per file, as the ingest report shows outcomes."""
    rows = report_rows(IngestReport(files=[s.outcome for s in seen]))
    return [[*row, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.at))] for row, s in zip(rows, seen)]


def document_rows(docs: list[DocumentRecord]) -> list[list]:
    return [
        [
            d.title,
            d.source,
            d.chunks,
            human_size(d.size_bytes),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(d.ingested_at)),
        ]
        for d in docs
    ]


def feedback_rows(services: Services, limit: int = 200) -> list[list]:
    return [
        [
            item.time_utc,
            item.user,
            item.vote,
            item.question,
            item.answer if len(item.answer) <= 300 else item.answer[:300] + " …",
            "; ".join(item.sources),
        ]
        for item in services.feedback.items(limit)
    ]


def export_feedback_csv(services: Services) -> Path:
    """The whole feedback log as a CSV file in a fresh temp folder (Gradio serves it from there)."""
    folder = Path(tempfile.mkdtemp(prefix="feedback-"))
    path = folder / time.strftime("feedback-%Y%m%d-%H%M%S.csv", time.gmtime())
    path.write_text(services.feedback.to_csv(), encoding="utf-8")
    return path
