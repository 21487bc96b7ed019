"""Folders that sync themselves: what changes under the corpus and uploads folders is ingested
as it changes.

    watch(paths, settings, kb=None, *, on_report=..., on_ready=..., stop_event=...)

``watchfiles`` (the Rust ``notify`` library: inotify on Linux) reports changes; once no new
change has come for ``quiet_s`` (a file being copied is taken whole), the batch goes through
``ingest.pipeline.ingest`` as explicit paths, so only those files are read:

- a file that is there is ingested (``unchanged`` when its bytes are the same);
- a path that is gone leaves the index, and so does everything indexed under it (a folder
  deleted or moved away);
- a folder that appears (moved or copied in) is scanned whole, and removals stay inside it.

Nothing else is scanned, so a watcher never removes a document it did not see go (an upload
another app machine received, a corpus file changed while no watcher ran: a plain
``python -m ingest`` catches those). Hidden files and folders (``.name``), Office lock files
(``~$name``) and editors' temporary files are ignored, as a normal run ignores them. A batch
that finds the ingest lock held by a long ingest waits for it (``ASSISTANT_LOCK_TIMEOUT_S``) and
is tried again later if it times out.

``FolderWatch`` runs ``watch`` in a background thread and keeps the latest outcome per file
(the web app's ``ASSISTANT_WATCH``); the CLI (``python -m ingest --watch``) calls ``watch``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.pipeline import _locate, ingest
from ingest.report import FileOutcome, IngestReport
from kb.settings import Settings
from kb.store import IngestBusy, KnowledgeBase, source_roots

log = logging.getLogger(__name__)

QUIET_S = 1.0  # a batch is ingested once no new change has come for this long
MAX_GROUP_S = 10.0  # ... or once it has gathered changes for this long (a file written for ever)
TICK_S = 1.0  # how often the watcher looks at the stop event and at batches waiting for a retry
RETRY_S = (5.0, 300.0)  # first and longest wait before a failed batch is tried again


def default_paths(settings: Settings) -> list[Path]:
    """What ``python -m ingest`` brings in: the corpus folder, and the uploads folder."""
    return [settings.corpus_dir, settings.uploads_dir]


def check_paths(paths: Iterable[Path | str], settings: Settings) -> list[Path]:
    """The folders or files to watch, or ``ValueError`` naming one that is missing or outside
    the corpus and uploads folders."""
    checked = []
    for p in paths:
        path = Path(p)
        if _locate(path, settings) is None:
            raise ValueError(
                f"{path} is outside the corpus folder ({settings.corpus_dir}) and the uploads folder "
                f"({settings.uploads_dir})"
            )
        if not path.exists():
            raise ValueError(f"{path} does not exist")
        checked.append(path)
    return checked


def watch(
    paths: Iterable[Path | str] | None,
    settings: Settings,
    kb: KnowledgeBase | None = None,
    *,
    on_report: Callable[[IngestReport], None] | None = None,
    on_ready: Callable[[list[Path]], None] | None = None,
    stop_event: threading.Event | None = None,
    quiet_s: float = QUIET_S,
) -> None:
    """Ingest changes under ``paths`` (default: ``default_paths``) until ``stop_event`` is set.

    ``on_ready(paths)`` is called once the watch is in place (a change after it is seen);
    ``on_report`` gets each batch's ``IngestReport`` that has any file in it. Raises
    ``ValueError`` for a path that is missing or outside the roots, and ``kb.ConfigError`` for
    bad settings; a batch that cannot be ingested is logged and tried again later."""
    from watchfiles import watch as changes_under

    if paths is None:
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        paths = [p for p in default_paths(settings) if p.exists()]
    folders = check_paths(paths, settings)
    kb = kb or KnowledgeBase(settings)
    stop_event = stop_event or threading.Event()
    waiting: dict[str, Path] = {}  # a batch that failed, kept for the next try
    failures, retry_at = 0, 0.0
    ready = False
    for changes in changes_under(
        *folders,
        watch_filter=_ignored_names_filter(),
        debounce=int(MAX_GROUP_S * 1000),
        step=int(quiet_s * 1000),
        stop_event=stop_event,
        rust_timeout=int(TICK_S * 1000),
        yield_on_timeout=True,
        raise_interrupt=False,
    ):
        if not ready:  # the first tick: the watch has been in place since before it
            ready = True
            if on_ready:
                on_ready(folders)
        waiting.update(_targets(changes, settings, kb))
        if not waiting or (not changes and time.monotonic() < retry_at):
            continue
        batch, waiting = waiting, {}
        try:
            report = ingest(list(batch.values()), settings, kb)
        except Exception as exc:  # a lock held past the timeout, a store that is down: try later
            waiting = {**batch, **waiting}
            failures += 1
            wait = min(RETRY_S[0] * 2 ** (failures - 1), RETRY_S[1])
            retry_at = time.monotonic() + wait
            level = logging.WARNING if isinstance(exc, IngestBusy) else logging.ERROR
            log.log(
                level,
                "could not ingest %d changed path(s), trying again in %.0f s: %s",
                len(batch),
                wait,
                exc,
            )
            continue
        failures = 0
        if report.files and on_report:
            on_report(report)


def _ignored_names_filter():
    """``watchfiles``' default filter (version control, caches, editor swap and backup files),
    plus hidden names and Office lock files."""
    from watchfiles import DefaultFilter

    class Filter(DefaultFilter):
        def __call__(self, change, path: str) -> bool:
            return super().__call__(change, path) and not os.path.basename(path).startswith((".", "~$"))

    return Filter()


def _targets(changes: set, settings: Settings, kb: KnowledgeBase) -> dict[str, Path]:
    """Source id -> path to ingest for a batch of ``(Change, path)``. The file system is looked
    at now, not the events: a file added then deleted in one batch is simply gone."""
    from watchfiles import Change

    targets: dict[str, Path] = {}
    gone: list[str] = []
    for change, raw in changes:
        path = Path(raw)
        where = _locate(path, settings)
        if where is None:
            continue
        source = where[0]
        if source in ("", "uploads/") or any(part.startswith((".", "~$")) for part in source.split("/")):
            continue  # a root itself (never removed whole), or inside a hidden folder
        if path.is_dir():
            if change == Change.added:  # moved or copied in: scan it (removals stay inside it)
                targets[source] = path
        elif path.exists() or path.is_symlink():
            targets[source] = path
        else:
            targets[source] = path
            gone.append(source)
    if gone:  # a deleted folder: whatever was indexed, or refused, under it goes too
        prefixes = tuple(s.rstrip("/") + "/" for s in gone)
        known = [d.source for d in kb.list_documents()] + [p.source for p in kb.file_problems()]
        for source in known:
            if source.startswith(prefixes):
                targets[source] = _path_of(settings, source)
    return targets


def _path_of(settings: Settings, source: str) -> Path:
    for root_dir, prefix in source_roots(settings):
        if source.startswith(prefix):
            return root_dir / source[len(prefix) :]
    raise AssertionError("the corpus root takes every source")


# --- in the background -----------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """The latest outcome of one file the watcher ingested, and when (Unix time)."""

    outcome: FileOutcome
    at: float


class FolderWatch:
    """``watch`` in a daemon thread, with what it did: ``state`` ("off", "starting",
    "watching", "stopped", "failed"), the folders, and the latest outcome per file (the most
    recent ``keep`` files)."""

    def __init__(
        self,
        settings: Settings,
        kb: KnowledgeBase,
        paths: Iterable[Path | str] | None = None,
        *,
        keep: int = 500,
        quiet_s: float = QUIET_S,
    ) -> None:
        self.settings, self.kb, self.paths, self.keep, self.quiet_s = settings, kb, paths, keep, quiet_s
        self.state = "off"
        self.error = ""
        self.folders: list[Path] = []
        self.batches = 0
        self._seen: OrderedDict[str, Seen] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> FolderWatch:
        if self._thread is None:
            self.state = "starting"
            self._thread = threading.Thread(target=self._run, name="folder-watch", daemon=True)
            self._thread.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the watch is in place (or it has failed: see ``state``)."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for it (a batch being ingested finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            watch(
                self.paths,
                self.settings,
                self.kb,
                on_report=self.record,
                on_ready=self._on_ready,
                stop_event=self._stop,
                quiet_s=self.quiet_s,
            )
        except Exception as exc:
            log.exception("the folder watcher stopped")
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
        else:
            self.state = "stopped"
        finally:
            self._ready.set()

    def _on_ready(self, folders: list[Path]) -> None:
        self.folders, self.state = folders, "watching"
        log.info("watching %s for changes", ", ".join(map(str, folders)))
        self._ready.set()

    def record(self, report: IngestReport) -> None:
        now = time.time()
        with self._lock:
            self.batches += 1
            for outcome in report.files:
                self._seen.pop(outcome.source, None)
                self._seen[outcome.source] = Seen(outcome, now)
            while len(self._seen) > self.keep:
                self._seen.popitem(last=False)
        for outcome in report.files:
            if outcome.status in ("skipped", "failed"):
                log.warning("watch: %s %s: %s", outcome.status, outcome.source, outcome.reason)
            else:
                log.info("watch: %s %s (%d chunks)", outcome.status, outcome.source, outcome.chunks)

    def latest(self) -> list[Seen]:
        """The latest outcome per file, newest first."""
        with self._lock:
            return list(reversed(self._seen.values()))

    def to_dict(self) -> dict:
        out = {"state": self.state, "folders": [str(f) for f in self.folders], "batches": self.batches}
        if self.error:
            out["error"] = self.error
        return out
