"""Incremental ingestion: files -> documents -> chunks -> index, reporting every file's outcome.

Each file is judged on its own, so one bad or huge file never stops the others and never
touches what other files put in the index:

1. stat and size check, then the SHA-256 of its bytes;
2. same hash as the registry's row -> ``unchanged``: not parsed, not embedded;
3. otherwise the file is opened, cheap limits first (a PDF's page count, a DOCX's unzipped
   size), and its chunks stream out section by section (a PDF page by page). Chunks of one big
   file, or of several small ones, gather into windows of about ``embed_window_chunks``; each
   window goes through one ``langchain_core.indexing.index`` call without cleanup, written to
   Chroma in batches it accepts, so memory stays bounded whatever the file's size;
4. once a file's last chunk is in, its previous version goes: the record manager's keys of that
   source older than the moment the file was opened, then any chunk of that source the record
   manager does not know (left by a killed run). Until then the old version stays searchable;
5. a file that fails part-way (a page that cannot be read, ``max_file_seconds`` passed, a
   window that cannot be indexed) has its new chunks removed and keeps its previous version;
6. the registry row is written last, so a run killed mid-file simply redoes that file.

Files that vanished from a scanned folder leave the index; files elsewhere (other folders,
uploads) are untouched. Embeddings are cached by text hash, so duplicate or unchanged text is
never embedded twice. The reason a file was skipped or failed is kept in the record store
(``KnowledgeBase.file_problems``) until the file is indexed, found unchanged or removed.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.indexing import index

from ingest.chunking import iter_chunks, make_splitter
from ingest.loaders import NO_TEXT, Limits, LoadError, SkipFile, open_document, read_file
from ingest.report import FileOutcome, IngestReport
from kb.settings import Settings
from kb.store import DocumentRecord, FileProblem, KnowledgeBase, source_path, source_roots

# progress(done, total, current_source)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class _Candidate:
    path: Path  # as found (may be a link)
    source: str  # id in the index: path relative to its root, with the root's prefix
    root: str  # "corpus" | "uploads"


@dataclass(frozen=True)
class _Scope:
    """A folder that was scanned whole: its indexed files that no longer exist are removed."""

    root: str
    prefix: str  # source prefix of the folder ("" = the whole root)

    def holds(self, source: str) -> bool:
        root = "uploads" if source.startswith("uploads/") else "corpus"
        return root == self.root and source.startswith(self.prefix)


def _locate(path: Path, settings: Settings) -> tuple[str, str] | None:
    """(source, root name) of a path inside one of the roots, else None. ``..`` is resolved by
    name only (``abspath``), so a link inside a root keeps its own name."""
    resolved = Path(os.path.abspath(path))
    for root_dir, prefix in source_roots(settings):
        base = Path(os.path.abspath(root_dir))
        if resolved == base or resolved.is_relative_to(base):
            rel = resolved.relative_to(base).as_posix()
            return prefix + ("" if rel == "." else rel), ("uploads" if prefix else "corpus")
    return None


def _plan(
    paths: Iterable[Path | str] | None, settings: Settings, report: IngestReport
) -> tuple[list[_Candidate], list[_Scope], set[str]]:
    """Expand paths into candidate files; record paths outside the roots as skipped."""
    targets = [Path(p) for p in paths] if paths else [settings.corpus_dir]
    candidates: dict[str, _Candidate] = {}
    scopes: list[_Scope] = []
    gone: set[str] = set()  # named explicitly but missing: remove if indexed
    for target in targets:
        where = _locate(target, settings)
        if where is None:
            report.files.append(
                FileOutcome(str(target), "skipped", reason=f"outside the corpus root ({settings.corpus_dir})")
            )
            continue
        source, root = where
        if target.is_dir():
            scopes.append(_Scope(root, source + "/" if source and not source.endswith("/") else source))
            for dirpath, dirnames, filenames in os.walk(target, followlinks=False):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith((".", "~$")):
                        continue
                    file_path = Path(dirpath) / name
                    found = _locate(file_path, settings)
                    if found:
                        candidates[found[0]] = _Candidate(file_path, *found)
        elif target.exists() or target.is_symlink():
            candidates[source] = _Candidate(target, source, root)
        else:
            gone.add(source)
    return list(candidates.values()), scopes, gone


@dataclass
class _Open:
    """A file whose chunks are on their way into the index; registered once the last is in."""

    record: DocumentRecord  # ``chunks`` is filled in at the end
    status: str  # "added" | "updated"
    since: float  # record-manager time when it was opened: older keys of its source are the old version
    limits: Limits
    chunks: Iterator[Document]
    original: bytes | None  # an upload's bytes, stored with its registry row for every app process
    count: int = 0
    written: bool = False  # some of its chunks went to the index (to remove if it fails)

    @property
    def source(self) -> str:
        return self.record.source


class _FileFailed(Exception):
    """Reading or indexing one file failed; the file's outcome, not the run's."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _why(exc: Exception) -> tuple[str, str]:
    """(status, reason) of a file whose reading raised ``exc``."""
    if isinstance(exc, _FileFailed):
        return exc.status, exc.reason
    if isinstance(exc, SkipFile):
        return "skipped", str(exc)
    if isinstance(exc, LoadError):
        return "failed", str(exc)
    return "failed", f"could not parse: {type(exc).__name__}: {exc}"  # a parser bug stops one file only


def _reading(f: _Open) -> Iterator[Document]:
    """The file's chunks, with its deadline checked after each (the caller may have just indexed
    a window); an error while reading it (page 500, the deadline) fails that file only."""
    try:
        for chunk in f.chunks:
            yield chunk
            f.limits.check_time()
    except Exception as exc:
        raise _FileFailed(*_why(exc)) from None


class _Ingestor:
    """One run over one knowledge base: files go in one at a time, their chunks in windows."""

    def __init__(self, kb: KnowledgeBase, settings: Settings, report: IngestReport, dry_run: bool) -> None:
        self.kb = kb
        self.settings = settings
        self.report = report
        self.dry_run = dry_run
        self.splitter = make_splitter(settings)
        self.max_bytes = int(settings.max_file_mb * 1_000_000)
        self.pending: list[Document] = []  # chunks for the next index() call
        self.complete: list[_Open] = []  # files whose last chunk is in ``pending``

    def add(self, cand: _Candidate) -> None:
        """Read one file and pass its chunks on; its last window may wait for the next files."""
        opened = self.open(cand)
        if isinstance(opened, FileOutcome):
            self.report.files.append(opened)
            return
        try:
            for chunk in _reading(opened):
                opened.count += 1
                if self.dry_run:
                    continue
                self.pending.append(chunk)
                if len(self.pending) >= self.settings.embed_window_chunks:
                    self.flush(streaming=opened)
        except _FileFailed as failed:
            self.fail(opened, failed.status, failed.reason)
            return
        if opened.count == 0:
            self.report.files.append(
                FileOutcome(opened.source, "skipped", reason=NO_TEXT, title=opened.record.title)
            )
        elif self.dry_run:
            self.report.files.append(
                FileOutcome(opened.source, opened.status, chunks=opened.count, title=opened.record.title)
            )
        else:
            self.complete.append(opened)

    def open(self, cand: _Candidate) -> FileOutcome | _Open:
        """Read and hash one file: an outcome now (unchanged, refused), or a file to stream in."""
        src = cand.source
        # Links may point anywhere: the target must lie inside a root too.
        if cand.path.is_symlink() and _locate(Path(os.path.realpath(cand.path)), self.settings) is None:
            return FileOutcome(src, "skipped", reason="link to a file outside the corpus root")
        limits = Limits(
            max_pdf_pages=self.settings.max_pdf_pages,
            max_unzipped_bytes=int(self.settings.max_unzipped_mb * 1_000_000),
            seconds=self.settings.max_file_seconds,
            ocr=self.settings.ocr,
        )
        try:
            raw = read_file(cand.path, self.max_bytes)
            sha = hashlib.sha256(raw).hexdigest()
            before = self.kb.get_document(src)
            if before and before.sha256 == sha:
                return FileOutcome(src, "unchanged", chunks=before.chunks, title=before.title)
            since = 0.0 if self.dry_run else self.kb.record_manager.get_time()
            doc = open_document(cand.path, raw, limits)
        except Exception as exc:
            status, reason = _why(exc)
            return FileOutcome(src, status, reason=reason)

        now = datetime.now(UTC)
        chunks = iter_chunks(
            doc,
            source=src,
            file_hash=sha,
            ingested_at=now.isoformat(timespec="seconds"),
            splitter=self.splitter,
        )
        record = DocumentRecord(
            source=src,
            root=cand.root,
            title=doc.title,
            sha256=sha,
            chunks=0,
            size_bytes=len(raw),
            ingested_at=now.timestamp(),
        )
        original = raw if cand.root == "uploads" else None
        return _Open(record, "updated" if before else "added", since, limits, chunks, original)

    def flush(self, streaming: _Open | None = None) -> None:
        """Index the waiting chunks in one ``index()`` call, then register the files now complete.

        One call per window, rather than per file, lets the model embed full batches of similar
        length. Chroma takes the window in writes of at most ``kb.max_batch``. If the call fails,
        every file with chunks in it fails (and is rolled back); ``streaming``, the file still
        being read, is stopped by ``_FileFailed``.
        """
        chunks, done = self.pending, self.complete
        self.pending, self.complete = [], []
        if chunks:
            for f in [*done, streaming]:
                if f is not None:
                    f.written = True
            try:
                result = index(
                    chunks,
                    self.kb.record_manager,
                    self.kb.vectorstore,
                    cleanup=None,  # per source, once a file is complete: see finish()
                    source_id_key="source",
                    key_encoder="sha256",
                    batch_size=min(len(chunks), self.kb.max_batch),
                )
            except Exception as exc:
                reason = f"could not index: {type(exc).__name__}: {str(exc)[:160]}"
                for f in done:
                    self.fail(f, "failed", reason)
                if streaming is not None:
                    raise _FileFailed("failed", reason) from None
                return
            self.report.chunks_embedded += result["num_added"] + result["num_updated"]
        for f in done:
            self.finish(f)

    def finish(self, f: _Open) -> None:
        """All of ``f`` is in: drop its previous version and orphans, then register it."""
        old = self.kb.record_manager.list_keys(group_ids=[f.source], before=f.since)
        self.kb.delete_chunks(old)
        self._drop_orphans(f.source)
        self.kb.put_document(replace(f.record, chunks=f.count), original=f.original)
        self.report.files.append(FileOutcome(f.source, f.status, chunks=f.count, title=f.record.title))

    def fail(self, f: _Open, status: str, reason: str) -> None:
        """``f`` could not be read or indexed whole: remove what it wrote, keep its old version."""
        self.pending = [c for c in self.pending if c.metadata["source"] != f.source]
        if f.written and not self.dry_run:
            old = set(self.kb.record_manager.list_keys(group_ids=[f.source], before=f.since))
            self.kb.delete_chunks(set(self.kb.record_manager.list_keys(group_ids=[f.source])) - old)
            self._drop_orphans(f.source)
        self.report.files.append(FileOutcome(f.source, status, reason=reason, title=f.record.title))

    def _drop_orphans(self, source: str) -> None:
        """Delete chunks of ``source`` in Chroma that the record manager does not list."""
        known = set(self.kb.record_manager.list_keys(group_ids=[source]))
        orphans = self.kb.chunk_ids(source) - known
        if orphans:
            self.kb.delete_chunks(orphans)

    def removals(self, scopes: list[_Scope], present: set[str], gone: set[str]) -> list[FileOutcome]:
        """Indexed files under a scanned folder (or named explicitly) that no longer exist."""
        outcomes = []
        for doc in self.kb.list_documents():
            in_scope = any(doc.root == s.root and doc.source.startswith(s.prefix) for s in scopes)
            if doc.source in present or not (in_scope or doc.source in gone):
                continue
            if not self.dry_run:
                remove_source(self.kb, doc.source)
            outcomes.append(FileOutcome(doc.source, "removed", chunks=doc.chunks, title=doc.title))
        return outcomes


def _keep_problems(
    kb: KnowledgeBase, report: IngestReport, present: set[str], scopes: list[_Scope], gone: set[str]
) -> None:
    """Record each skipped or failed file's reason; forget those of files now indexed, unchanged
    or removed, and of files gone from a scanned folder (paths outside the roots are not kept)."""
    known = {p.source for p in kb.file_problems()}
    now = time.time()
    problems = [
        FileProblem(f.source, f.status, f.reason, now)
        for f in report.files
        if f.status in ("skipped", "failed") and f.source in present
    ]
    clear = {f.source for f in report.files if f.status not in ("skipped", "failed")}
    clear |= {s for s in known - present if s in gone or any(scope.holds(s) for scope in scopes)}
    kb.update_problems(problems, clear & known)


def remove_source(kb: KnowledgeBase, source: str) -> int:
    """Remove one source's chunks, records, registry row and problem; returns chunks deleted."""
    keys = kb.record_manager.list_keys(group_ids=[source])
    deleted = kb.delete_chunks(set(keys) | kb.chunk_ids(source))
    kb.forget_document(source)
    return deleted


def ingest(
    paths: Iterable[Path | str] | None,
    settings: Settings,
    kb: KnowledgeBase | None = None,
    *,
    progress: Progress | None = None,
    dry_run: bool = False,
    rebuild: bool = False,
) -> IngestReport:
    """Bring the index in line with ``paths`` (default: the corpus dir) and report each file.

    Raises ``kb.IngestBusy`` if another ingest holds the data dir's lock past the timeout and
    ``kb.ConfigError`` for bad settings; file problems never raise, they are in the report.
    """
    started = time.perf_counter()
    report = IngestReport(dry_run=dry_run)
    kb = kb or KnowledgeBase(settings, check_model=not rebuild)
    with kb.lock():
        if rebuild and not dry_run:
            kb.reset()
        candidates, scopes, gone = _plan(paths, settings, report)
        run = _Ingestor(kb, settings, report, dry_run)
        for done, cand in enumerate(candidates):
            if progress:
                progress(done, len(candidates), cand.source)
            run.add(cand)
        run.flush()
        if progress:
            progress(len(candidates), len(candidates), "")
        present = {c.source for c in candidates}
        report.files.extend(run.removals(scopes, present, gone))
        if not dry_run:
            _keep_problems(kb, report, present, scopes, gone)
        if report.changed and not dry_run:
            kb.bump_version()
    report.wall_s = time.perf_counter() - started
    return report


def delete_document(kb: KnowledgeBase, source: str, *, remove_file: bool = False) -> int:
    """Take one document out of the index (and, for uploads, off the disk); returns chunks deleted.

    A corpus file that is still on disk comes back at the next corpus ingest: delete the file
    to remove it for good.
    """
    with kb.lock():
        path = source_path(kb.settings, source)
        deleted = remove_source(kb, source)
        if remove_file and path is not None and source.startswith("uploads/"):
            path.unlink(missing_ok=True)
        kb.bump_version()
    return deleted


def find_source(kb: KnowledgeBase, name: str) -> str | None:
    """The indexed source that ``name`` means: a source id as ``--list`` shows it, or a path to
    a file in the corpus or uploads folder (as ingest takes files); None if nothing is indexed
    under either."""
    where = _locate(Path(name), kb.settings)
    for source in dict.fromkeys([name, *([where[0]] if where else [])]):
        if kb.get_document(source) or kb.collection.get(where={"source": source}, limit=1, include=[])["ids"]:
            return source
    return None
