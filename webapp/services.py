"""Everything the web app shares between requests, opened once per process.

One ``KnowledgeBase`` serves both the assistant (reads) and staff ingests (writes): Chroma and
the record store are safe to use from worker threads, ingests are serialised by the data dir's
lock, and the retriever notices a finished ingest through ``kb.version()`` -- so a question asked
while an ingest runs is answered from the last complete index.

The start-up ingest of ``corpus/`` runs in a background thread: the app serves at once, from
whatever the index already holds, and ``/healthz`` and the page say that indexing is under way.
Nothing it meets (a huge file, a broken one, a busy lock) can stop the process.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from assistant.core import Assistant
from ingest import ocr
from ingest.pipeline import ingest
from ingest.report import IngestReport
from ingest.watch import FolderWatch
from kb.access import CollectionRules, Scope
from kb.settings import Settings
from kb.store import DocumentRecord, KnowledgeBase
from webapp.apikeys import ApiKeyStore, bearer_token
from webapp.auth import User, UserStore
from webapp.conversations import ConversationStore
from webapp.feedback import FeedbackStore
from webapp.gate import AnswerGate
from webapp.security import basic_credentials
from webapp.sessions import SessionStore

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
class IngestProgress:
    """The start-up ingest as /healthz and the page show it."""

    state: str = "idle"  # idle | running | done | failed
    done: int = 0
    total: int = 0
    current: str = ""
    error: str = ""
    report: IngestReport | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, done: int, total: int, current: str) -> None:
        with self._lock:
            self.done, self.total, self.current = done, total, current

    def end(self, state: str, *, report: IngestReport | None = None, error: str = "") -> None:
        with self._lock:
            self.state, self.report, self.error = state, report, error

    def to_dict(self) -> dict:
        with self._lock:
            out = {"state": self.state, "done": self.done, "total": self.total, "current": self.current}
            if self.error:
                out["error"] = self.error
            if self.report is not None:
                out["summary"] = self.report.summary()
                out["failed"] = [f.source for f in self.report.failed]
                out["skipped"] = [f.source for f in self.report.files if f.status == "skipped"]
            return out


@dataclass
class Services:
    settings: Settings
    kb: KnowledgeBase
    assistant: Assistant
    users: UserStore
    sessions: SessionStore
    feedback: FeedbackStore
    conversations: ConversationStore
    api_keys: ApiKeyStore
    rules: CollectionRules
    gate: AnswerGate
    startup: IngestProgress = field(default_factory=IngestProgress)
    watch: FolderWatch | None = None  # ASSISTANT_WATCH: started and stopped with the app (webapp.server)

    @classmethod
    def start(cls, settings: Settings, *, ingest_corpus: bool = True) -> Services:
        """Open the stores, then bring the shipped corpus into the index in the background."""
        kb = KnowledgeBase(settings)
        users = UserStore.from_settings(settings, kb.engine)  # bad user config fails before serving
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        feedback = FeedbackStore(kb.engine)
        feedback.import_legacy(settings.data_dir / "feedback.sqlite")
        services = cls(
            settings=settings,
            kb=kb,
            assistant=Assistant(settings, kb),
            users=users,
            sessions=SessionStore(kb.engine, settings),
            feedback=feedback,
            conversations=ConversationStore(kb.engine),
            api_keys=ApiKeyStore(kb.engine),
            rules=CollectionRules(kb.engine),
            gate=AnswerGate.from_settings(settings),
            watch=FolderWatch(settings, kb) if settings.watch else None,
        )
        if settings.ocr and (no_ocr := ocr.available()):
            log.warning("scanned PDF pages and images will be skipped: %s", no_ocr)
        if not settings.corpus_dir.is_dir():
            log.warning(
                "the corpus folder %s does not exist: nothing to ingest at start", settings.corpus_dir
            )
        elif ingest_corpus:
            services.startup.state = "running"
            threading.Thread(target=services._ingest_corpus, name="startup-ingest", daemon=True).start()
        return services

    def _ingest_corpus(self) -> None:
        progress = self.startup
        try:
            report = ingest(None, self.settings, kb=self.kb, progress=progress.update)
        except Exception as exc:  # a busy lock, a broken store: log it, keep serving
            log.exception("start-up ingest of %s failed", self.settings.corpus_dir)
            progress.end("failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        log.info("corpus %s: %s", self.settings.corpus_dir, report.summary())
        for outcome in report.failed:
            log.warning("could not ingest %s: %s", outcome.source, outcome.reason)
        progress.end("done", report=report)

    # --- who is asking ------------------------------------------------------------------------
    def user_of(self, conn: HTTPConnection) -> User | None:
        """The caller: the session cookie, else an API key (``Authorization: Bearer``), else
        HTTP Basic credentials (scripts). ``conn`` may also be a ``gr.Request``, which carries
        the same cookies and headers. A user who has left the users file is nobody."""
        name = self.sessions.from_request(conn)
        if name:
            return self.users.get(name)
        authorization = conn.headers.get("authorization", "")
        token = bearer_token(authorization)
        if token is not None:
            return self.users.get(self.api_keys.user(token))
        credentials = basic_credentials(authorization)
        return self.users.verify(*credentials) if credentials else None

    # --- what they may read -------------------------------------------------------------------
    def scope_of(self, user: User | None) -> Scope:
        """What ``user`` (None: anonymous) may read: staff everything, others the collections
        whose rules name ``everyone`` or one of their groups. Read per question, so a rule
        change holds from the next one."""
        if user is not None and user.is_staff:
            return Scope()
        return self.rules.scope_for(user.groups if user else ())

    def readable(self, user: User | None) -> tuple[list[str], list[DocumentRecord]]:
        """The collections and documents ``user`` may read (for pickers and ``/v1/models``)."""
        scope = self.scope_of(user)
        documents = [d for d in self.kb.list_documents() if scope.allows(d.source)]
        collections = {c for d in documents for c in scope.collections_of(d.source) - scope.denied}
        return sorted(collections), documents

    # --- what the page and /healthz show ------------------------------------------------------
    def stats(self) -> KBStats:
        return KBStats(len(self.kb.list_documents()), self.kb.count_chunks(), self.kb.last_updated())

    @property
    def mode_label(self) -> str:
        return self.assistant.mode_label

    def status_line(self) -> str:
        st = self.stats()
        line = (
            f"**Answer mode:** {self.mode_label} &nbsp;·&nbsp; **Knowledge base:** "
            f"{st.documents} document{'s' if st.documents != 1 else ''}, {st.chunks} chunks, "
            f"last ingest {st.last_ingest_text}"
        )
        startup = self.startup.to_dict()
        if startup["state"] == "running":
            line += (
                f" &nbsp;·&nbsp; **Indexing the corpus:** {startup['done']} of {startup['total'] or '?'} "
                "files; answers come from the documents indexed so far"
            )
        return line
