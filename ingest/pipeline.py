"""Incremental ingestion: files -> documents -> chunks -> index, reporting every file's outcome.

Each file is judged on its own, so one bad file never stops the others and never touches what
other files put in the index:

1. stat and size check, then the SHA-256 of its bytes;
2. same hash as the registry's row -> ``unchanged``: not parsed, not embedded;
3. otherwise parse and chunk it. Files are gathered into windows of about
   ``embed_window_chunks`` chunks; each window goes through one ``langchain_core.indexing.index``
   call with ``scoped_full`` cleanup keyed by source (a file's old chunks go once its new ones
   are in), then any chunk of those sources the record manager does not know (left by an
   ingest killed mid-way) is deleted;
4. registry rows are written last, so a killed run simply redoes that window next time.

Files that vanished from a scanned folder leave the index; files elsewhere (other folders,
uploads) are untouched. Embeddings are cached by text hash, so duplicate or unchanged text is
never embedded twice.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.indexing import index

from ingest.chunking import chunk_document, make_splitter
from ingest.loaders import LoadError, SkipFile, parse, read_file
from ingest.report import FileOutcome, IngestReport
from kb.settings import Settings
from kb.store import DocumentRecord, KnowledgeBase, source_path, source_roots

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


def _locate(path: Path, settings: Settings) -> tuple[str, str] | None:
    """(source, root name) of a path inside one of the roots, else None."""
    resolved = path.absolute()
    for root_dir, prefix in source_roots(settings):
        base = root_dir.absolute()
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
class _Prepared:
    """A file read and chunked, waiting to be indexed."""

    record: DocumentRecord
    status: str  # "added" | "updated"
    chunks: list[Document]


class _Ingestor:
    """One run over one knowledge base; holds what every file needs."""

    def __init__(self, kb: KnowledgeBase, settings: Settings, report: IngestReport, dry_run: bool) -> None:
        self.kb = kb
        self.settings = settings
        self.report = report
        self.dry_run = dry_run
        self.splitter = make_splitter(settings)
        self.max_bytes = int(settings.max_file_mb * 1_000_000)

    def prepare(self, cand: _Candidate) -> FileOutcome | _Prepared:
        """Read, hash, parse and chunk one file: an outcome now, or chunks to index."""
        src = cand.source
        # Links may point anywhere: the target must lie inside a root too.
        if cand.path.is_symlink() and _locate(Path(os.path.realpath(cand.path)), self.settings) is None:
            return FileOutcome(src, "skipped", reason="link to a file outside the corpus root")
        try:
            raw = read_file(cand.path, self.max_bytes)
            sha = hashlib.sha256(raw).hexdigest()
            before = self.kb.get_document(src)
            if before and before.sha256 == sha:
                return FileOutcome(src, "unchanged", chunks=before.chunks, title=before.title)
            doc = parse(cand.path, raw)
        except SkipFile as exc:
            return FileOutcome(src, "skipped", reason=str(exc))
        except LoadError as exc:
            return FileOutcome(src, "failed", reason=str(exc))
        except Exception as exc:  # a parser bug must not stop the other files
            return FileOutcome(src, "failed", reason=f"could not parse: {type(exc).__name__}: {exc}")

        now = datetime.now(UTC)
        chunks = chunk_document(
            doc,
            source=src,
            file_hash=sha,
            ingested_at=now.isoformat(timespec="seconds"),
            splitter=self.splitter,
        )
        status = "updated" if before else "added"
        if not chunks:
            return FileOutcome(src, "skipped", reason="no text to index", title=doc.title)
        if self.dry_run:
            return FileOutcome(src, status, chunks=len(chunks), title=doc.title)
        record = DocumentRecord(
            source=src,
            root=cand.root,
            title=doc.title,
            sha256=sha,
            chunks=len(chunks),
            size_bytes=len(raw),
            ingested_at=now.timestamp(),
        )
        return _Prepared(record, status, chunks)

    def commit(self, window: list[_Prepared]) -> list[FileOutcome]:
        """Index a window of prepared files in one ``index()`` call, then record each file.

        ``scoped_full`` cleanup works per source: each file's old chunks go once its new ones
        are in, and other files are untouched. One call per window, rather than per file, lets
        the model embed full batches of similar length and Chroma take one write. The registry
        rows come last: a run killed mid-window redoes the whole window next time.
        """
        chunks = [c for prep in window for c in prep.chunks]
        if not chunks:
            return []
        result = index(
            chunks,
            self.kb.record_manager,
            self.kb.vectorstore,
            cleanup="scoped_full",
            source_id_key="source",
            key_encoder="sha256",
            batch_size=len(chunks),
        )
        self.report.chunks_embedded += result["num_added"] + result["num_updated"]
        outcomes = []
        for prep in window:
            self._drop_orphans(prep.record.source)
            self.kb.put_document(prep.record)
            outcomes.append(
                FileOutcome(
                    prep.record.source, prep.status, chunks=prep.record.chunks, title=prep.record.title
                )
            )
        return outcomes

    def _drop_orphans(self, source: str) -> None:
        """Delete chunks of ``source`` in Chroma that the record manager does not list."""
        known = set(self.kb.record_manager.list_keys(group_ids=[source]))
        orphans = self.kb.chunk_ids(source) - known
        if orphans:
            self.kb.collection.delete(ids=sorted(orphans))

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


def remove_source(kb: KnowledgeBase, source: str) -> int:
    """Remove one source's chunks, records and registry row; returns chunks deleted."""
    keys = kb.record_manager.list_keys(group_ids=[source])
    ids = sorted(set(keys) | kb.chunk_ids(source))
    if ids:
        kb.collection.delete(ids=ids)
    if keys:
        kb.record_manager.delete_keys(keys)
    kb.forget_document(source)
    return len(ids)


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
        waiting: list[_Prepared] = []

        def flush() -> None:
            report.files.extend(run.commit(waiting))
            waiting.clear()

        for done, cand in enumerate(candidates):
            if progress:
                progress(done, len(candidates), cand.source)
            outcome = run.prepare(cand)
            if isinstance(outcome, FileOutcome):
                report.files.append(outcome)
                continue
            waiting.append(outcome)
            if sum(len(p.chunks) for p in waiting) >= settings.embed_window_chunks:
                flush()
        flush()
        if progress:
            progress(len(candidates), len(candidates), "")
        present = {c.source for c in candidates}
        report.files.extend(run.removals(scopes, present, gone))
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
