"""Everything the web app shares between requests, opened once per process.

One ``KnowledgeBase`` serves both the assistant (reads) and staff ingests (writes): Chroma and
the record store are safe to use from Gradio's worker threads, ingests are serialised by the
data dir's lock, and the retriever notices a finished ingest through ``kb.version()`` -- so a
question asked while an ingest runs is answered from the last complete index.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from assistant.core import Assistant
from ingest.pipeline import ingest
from ingest.report import IngestReport
from kb.settings import Settings
from kb.store import IngestBusy, KnowledgeBase
from webapp.auth import UserStore
from webapp.feedback import FeedbackStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KBStats:
    documents: int
    chunks: int
    last_ingest: float | None

    @property
    def last_ingest_text(self) -> str:
        if not self.last_ingest:
            return "never"
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.last_ingest))


@dataclass
class Services:
    settings: Settings
    kb: KnowledgeBase
    assistant: Assistant
    users: UserStore
    feedback: FeedbackStore
    startup_report: IngestReport | None = None

    @classmethod
    def start(cls, settings: Settings, *, ingest_corpus: bool = True) -> Services:
        """Open the stores; bring the shipped corpus into the index first (cheap when unchanged)."""
        users = UserStore.from_settings(settings)  # bad user config fails before anything loads
        kb = KnowledgeBase(settings)
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        report = None
        if ingest_corpus and settings.corpus_dir.is_dir():
            try:
                report = ingest(None, settings, kb=kb)
                log.info("corpus %s: %s", settings.corpus_dir, report.summary())
                for outcome in report.failed:
                    log.warning("could not ingest %s: %s", outcome.source, outcome.reason)
            except IngestBusy as exc:
                log.warning("startup ingest skipped: %s", exc)
        return cls(
            settings=settings,
            kb=kb,
            assistant=Assistant(settings, kb),
            users=users,
            feedback=FeedbackStore.from_settings(settings),
            startup_report=report,
        )

    def stats(self) -> KBStats:
        return KBStats(len(self.kb.list_documents()), self.kb.count_chunks(), self.kb.last_updated())

    @property
    def mode_label(self) -> str:
        return self.assistant.mode_label

    def status_line(self) -> str:
        st = self.stats()
        return (
            f"**Answer mode:** {self.mode_label} &nbsp;·&nbsp; **Knowledge base:** "
            f"{st.documents} document{'s' if st.documents != 1 else ''}, {st.chunks} chunks, "
            f"last ingest {st.last_ingest_text}"
        )
