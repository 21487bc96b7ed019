"""Folders that sync themselves (``ingest.watch``): the watcher in a thread on a temp corpus
follows files and folders added, changed, moved and deleted; ``python -m ingest --watch`` prints
the usual report lines and stops cleanly on Ctrl-C; the web app with ``ASSISTANT_WATCH=true``
does the same in the background and shows it on the staff page.

Every wait is for a condition, with timeouts generous enough for a loaded 2-core machine."""

from __future__ import annotations

import hashlib
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _helpers_app import STAFF, app_env, call, client, running_app
from _helpers_files import write_text

from ingest.pipeline import ingest
from ingest.report import IngestReport
from ingest.watch import FolderWatch, watch
from kb import KnowledgeBase

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 180


def wait_for(condition: Callable[[], object], what: str, timeout: float = WAIT_S) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Watching:
    """``watch`` in a thread, collecting its reports."""

    def __init__(self, paths, settings, kb) -> None:
        self.reports: list[IngestReport] = []
        self.ready, self.stop = threading.Event(), threading.Event()
        self.error: BaseException | None = None

        def run() -> None:
            try:
                watch(
                    paths,
                    settings,
                    kb,
                    on_report=self.reports.append,
                    on_ready=lambda _folders: self.ready.set(),
                    stop_event=self.stop,
                    quiet_s=0.3,
                )
            except BaseException as exc:  # noqa: BLE001  (shown by the test)
                self.error = exc
                self.ready.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.ready.wait(WAIT_S) and self.error is None, self.error

    def outcomes(self, source: str) -> list[str]:
        return [f.status for r in list(self.reports) for f in r.files if f.source == source]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the watcher stops when asked"
        assert self.error is None, self.error


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_index_follows_files_and_folders_as_they_change(make_settings, tmp_path):
    settings = make_settings()
    corpus = settings.corpus_dir
    kb = KnowledgeBase(settings)
    watcher = Watching(None, settings, kb)  # the corpus and uploads folders
    try:
        alpha = write_text(
            corpus / "alpha.txt", "Project Alpha builds a solar water pump for clinics in Kenya."
        )
        write_text(corpus / "notes" / "beta.md", "# Beta\n\nProject Beta trains nurses in telemedicine.")
        wait_for(lambda: kb.get_document("alpha.txt") and kb.get_document("notes/beta.md"), "two files added")
        # the report comes once the batch is done, a moment after the index has the file
        wait_for(lambda: watcher.outcomes("alpha.txt") == ["added"], "the added file reported")

        alpha.write_text("Project Alpha now builds wind pumps for clinics in Kenya and Uganda.")
        wait_for(lambda: kb.get_document("alpha.txt").sha256 == sha(alpha), "the changed file updated")
        wait_for(lambda: watcher.outcomes("alpha.txt")[-1:] == ["updated"], "the update reported")
        assert "wind pumps" in " ".join(
            kb.collection.get(where={"source": "alpha.txt"}, limit=10)["documents"]
        )

        alpha.unlink()
        wait_for(lambda: kb.get_document("alpha.txt") is None, "the deleted file removed")
        wait_for(lambda: watcher.outcomes("alpha.txt")[-1:] == ["removed"], "the removal reported")
        assert not kb.collection.get(where={"source": "alpha.txt"}, limit=1)["ids"]

        # a folder moved away takes its documents with it; one moved in is read whole
        (corpus / "notes").rename(tmp_path / "notes-archived")
        wait_for(lambda: kb.get_document("notes/beta.md") is None, "the moved-away folder's file removed")
        incoming = tmp_path / "incoming"
        write_text(incoming / "gamma.txt", "Project Gamma maps river otters.")
        write_text(incoming / "deep" / "delta.txt", "Project Delta counts bees.")
        incoming.rename(corpus / "projects")
        wait_for(
            lambda: kb.get_document("projects/gamma.txt") and kb.get_document("projects/deep/delta.txt"),
            "the moved-in folder's files added",
        )

        # hidden files and Office lock files are ignored, as a normal run ignores them; a later
        # real change shows the batch that held them has been handled
        write_text(corpus / ".draft.txt", "hidden draft")
        write_text(corpus / "~$report.docx", "lock file")
        write_text(corpus / "epsilon.txt", "Project Epsilon restores wetlands.")
        wait_for(lambda: kb.get_document("epsilon.txt"), "the file after the hidden ones")
        sources = {d.source for d in kb.list_documents()}
        assert sources == {"projects/gamma.txt", "projects/deep/delta.txt", "epsilon.txt"}
        wait_for(lambda: watcher.outcomes("epsilon.txt"), "the batch after the hidden ones reported")
        assert not watcher.outcomes(".draft.txt") and not watcher.outcomes("~$report.docx")
    finally:
        watcher.close()


def test_a_watch_on_a_folder_never_removes_what_lies_outside_it(make_settings):
    settings = make_settings()
    corpus = settings.corpus_dir
    write_text(corpus / "other" / "keep.txt", "Kept: indexed before the watch, outside it.")
    write_text(corpus / "watched" / "old.txt", "The old note.")
    kb = KnowledgeBase(settings)
    assert not ingest(None, settings, kb).failed
    (corpus / "other" / "keep.txt").unlink()  # a change no watcher of watched/ can see

    watcher = Watching([corpus / "watched"], settings, kb)
    try:
        write_text(corpus / "watched" / "new" / "fresh.txt", "A fresh note.")
        (corpus / "watched" / "old.txt").unlink()
        wait_for(
            lambda: kb.get_document("watched/new/fresh.txt") and kb.get_document("watched/old.txt") is None,
            "the watched folder's changes",
        )
        wait_for(lambda: "removed" in watcher.outcomes("watched/old.txt"), "the batch reported (done)")
        assert kb.get_document("other/keep.txt") is not None, "outside the watched folder: left alone"
    finally:
        watcher.close()


def test_paths_outside_the_roots_or_missing_are_refused(make_settings, tmp_path):
    settings = make_settings()
    with pytest.raises(ValueError, match=r"is outside the corpus folder"):
        watch([tmp_path / "elsewhere"], settings)
    with pytest.raises(ValueError, match=r"does not exist$"):
        watch([settings.corpus_dir / "not-yet"], settings)


def test_folder_watch_keeps_the_latest_outcome_per_file(make_settings):
    settings = make_settings()
    kb = KnowledgeBase(settings)
    background = FolderWatch(settings, kb, quiet_s=0.3).start()
    try:
        assert background.wait_ready(WAIT_S) and background.state == "watching"
        assert [Path(f) for f in background.folders] == [settings.corpus_dir, settings.uploads_dir]
        note = write_text(settings.corpus_dir / "note.txt", "The board meets on Tuesdays.")
        wait_for(lambda: [s for s in background.latest() if s.outcome.status == "added"], "the note added")
        note.unlink()
        wait_for(lambda: background.latest()[0].outcome.status == "removed", "the note removed")
        assert [s.outcome.source for s in background.latest()] == ["note.txt"], "one row per file"
    finally:
        background.stop(WAIT_S)
    assert background.state == "stopped"


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)


def test_cli_prints_report_lines_and_stops_on_ctrl_c(make_settings):
    settings = make_settings()
    env = app_env(ASSISTANT_DATA_DIR=str(settings.data_dir), ASSISTANT_CORPUS_DIR=str(settings.corpus_dir))
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", "--watch"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, out), daemon=True).start()
    threading.Thread(target=_lines, args=(process.stderr, err), daemon=True).start()

    def next_line(lines: queue.Queue[str], containing: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, f"the watcher exited with {process.returncode}"
                continue
            if containing in line:
                return line
        raise AssertionError(f"no line with {containing!r}")

    try:
        assert next_line(err, "watching ").startswith(f"watching {settings.corpus_dir}, ")
        write_text(settings.corpus_dir / "minutes.txt", "The committee approved the budget.")
        assert next_line(out, "minutes.txt").split() == ["added", "minutes.txt", "1", "chunks"]
        assert next_line(out, "files:").startswith("1 files: 1 added;")
        process.send_signal(signal.SIGINT)
        assert process.wait(WAIT_S) == 0
        assert next_line(err, "stopped watching")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_app_watches_when_asked_and_shows_it_on_the_staff_page(tmp_path):
    with running_app(tmp_path / "app", corpus=None, extra_env={"ASSISTANT_WATCH": "true"}) as app:
        wait_for(lambda: app.health()["watch"]["state"] == "watching", "the app's watcher")
        write_text(app.corpus_dir / "minutes.txt", "The committee approved the otter survey budget.")
        wait_for(lambda: app.health()["documents"] == 1, "the new file indexed by the app")

        staff = client(app.url, auth=STAFF)
        # the watcher's report comes once its batch is done, a moment after the index has the file
        watch_line, watch_table = wait_for(
            lambda: (got := call(staff, "staff_watch"))[1]["data"] and got, "the staff page's watch report"
        )
        assert "Folder watcher" in watch_line and "watching" in watch_line
        [row] = watch_table["data"]
        assert row[:3] == ["minutes.txt", "added", 1]

        (app.corpus_dir / "minutes.txt").unlink()
        wait_for(lambda: app.health()["documents"] == 0, "the deleted file removed by the app")
        wait_for(
            lambda: [r[:2] for r in call(staff, "staff_watch")[1]["data"]] == [["minutes.txt", "removed"]],
            "the removal on the staff page",
        )
