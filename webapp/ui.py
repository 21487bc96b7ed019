"""The Gradio page: a chat open to stakeholders, and staff-only Documents and Evaluation tabs.

Who may do what is decided on the server in every handler, never by what the page shows:

* staff sign in with the form on the Documents tab; the signed-in name lives in a ``gr.State``,
  which Gradio keeps on the server per browser session (a client cannot send or forge it);
* when ``ASSISTANT_REQUIRE_LOGIN`` is on, everyone signs in through Gradio's login page and
  ``gr.Request.username`` names them; a staff account there needs no second sign-in;
* every staff handler starts with ``self._staff(...)`` and raises ``gr.Error`` otherwise, and
  is registered with ``api_visibility="private"`` so it is not in the API page or the client
  libraries (that only hides it: the role check is what refuses a caller).

The chat is one ``chat`` API endpoint (a streaming generator run in Gradio's thread pool, with
``concurrency_limit`` from the settings) so scripts can use it through ``gradio_client``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.models import Answer
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.report import IngestReport
from kb.settings import PROJECT_ROOT
from kb.store import IngestBusy
from webapp import staff
from webapp.auth import PermissionDenied, User, require_staff
from webapp.chat import UNEXPECTED_ERROR, assistant_history, cited_sources, sources_message
from webapp.feedback import FeedbackItem
from webapp.services import Services

log = logging.getLogger(__name__)

PRIVATE = "private"
EVALS_DIR = PROJECT_ROOT / "evals"
CSS = """
#kb-status { font-size: 0.9em; opacity: 0.85; }
.kb-source { margin: 0.2em 0 0.9em 0; }
.kb-source-head { font-size: 0.92em; margin-bottom: 0.25em; }
.kb-source-text { font-size: 0.88em; border-left: 3px solid var(--border-color-primary);
                  padding-left: 0.6em; opacity: 0.9; }
.kb-source mark { background: #fde68a; color: inherit; padding: 0 0.1em; border-radius: 2px; }
"""


def _table(headers: list[str], rows: list[list] | None = None) -> dict:
    return {"headers": headers, "data": rows or []}


class AppUI:
    """Builds the Blocks and holds the handlers, which all close over one ``Services``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings

    # --- who is asking ------------------------------------------------------------------------
    def _user(self, session: str | None, request: gr.Request | None) -> User | None:
        """The signed-in user: the staff form's session first, then Gradio's own login."""
        users = self.services.users
        if session:
            return users.get(session)
        username = getattr(request, "username", None) if request is not None else None
        return users.get(username)

    def _staff(self, session: str | None, request: gr.Request | None) -> User:
        try:
            return require_staff(self._user(session, request))
        except PermissionDenied as exc:
            log.warning("refused staff action: %s", exc)
            raise gr.Error(str(exc), title="Not allowed") from None

    # --- chat ---------------------------------------------------------------------------------
    def respond(
        self,
        message: str,
        history: list[dict] | None,
        records: dict | None,
        session: str | None,
        request: gr.Request,
    ):
        """Stream the answer into the chat, then add the collapsible sources block."""
        question = (message or "").strip()
        history = list(history or [])
        records = dict(records or {})
        if not question:
            yield history, "", records, gr.skip()
            return
        convo = assistant_history(history)
        history.append({"role": "user", "content": question})
        history.append({"role": "assistant", "content": ""})
        answer_index = len(history) - 1
        yield history, "", records, gr.skip()

        text, answer = "", None
        try:
            for item in self.services.assistant.stream(question, convo):
                if isinstance(item, Answer):
                    answer = item
                    break
                text += item
                history[answer_index] = {"role": "assistant", "content": text}
                yield history, "", records, gr.skip()
        except Exception:
            log.exception("answering %r failed", question)
            history[answer_index] = {"role": "assistant", "content": UNEXPECTED_ERROR}
            yield history, "", records, self.services.status_line()
            return

        if answer is None:  # the stream ended without its final Answer: treat as an error
            history[answer_index] = {"role": "assistant", "content": text or UNEXPECTED_ERROR}
            yield history, "", records, gr.skip()
            return
        history[answer_index] = {"role": "assistant", "content": answer.text or text}
        user = self._user(session, request)
        record = FeedbackItem(
            question=question,
            answer=answer.text,
            vote="",
            user=user.name if user else "anonymous",
            sources=cited_sources(answer),
        ).__dict__
        records[answer_index] = record
        block = sources_message(answer)
        if block is not None:
            history.append(block)
            records[len(history) - 1] = record
        yield history, "", records, self.services.status_line()

    def on_like(
        self, records: dict | None, session: str | None, data: gr.LikeData, request: gr.Request
    ) -> None:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        record = (records or {}).get(index)
        if record is None or data.liked is None:
            return
        vote = {True: "up", False: "down"}.get(data.liked, str(data.liked))  # type: ignore[call-overload]
        user = self._user(session, request)
        item = FeedbackItem(**{**record, "vote": vote, "user": user.name if user else record["user"]})
        self.services.feedback.add(item)
        gr.Info("Thanks for the feedback.")

    @staticmethod
    def fill_example(data: gr.SelectData) -> str:
        value = data.value
        return value.get("text", "") if isinstance(value, dict) else str(value)

    # --- sign in / out ------------------------------------------------------------------------
    def _staff_view(self, user: User | None, note: str = "") -> tuple:
        """Outputs of sign-in, sign-out and page load: panels, messages and (staff only) data."""
        is_staff = bool(user and user.is_staff)
        docs = (
            self._documents()
            if is_staff
            else (_table(staff.DOCUMENT_HEADERS), gr.update(choices=[], value=None))
        )
        signed_in = f"Signed in as **{user.name}** ({user.role})." if user else ""
        return (
            gr.update(visible=not is_staff),  # login box
            gr.update(visible=is_staff),  # staff panel
            note or ("" if is_staff else signed_in),  # login box note
            signed_in,
            *docs,
            _table(staff.FEEDBACK_HEADERS, staff.feedback_rows(self.services) if is_staff else []),
            gr.update(visible=is_staff),  # evaluation panel
        )

    def login(self, username: str, password: str):
        user = self.services.users.verify(username, password)
        if user is None:
            log.warning("failed staff sign-in for %r", username)
            note = "Wrong user name or password."
            if self.services.users.locked_out((username or "").strip()):
                note = "Too many failed sign-ins for this name: wait a few minutes and try again."
            return (None, "", *self._staff_view(None, note))
        if not user.is_staff:
            return (
                user.name,
                "",
                *self._staff_view(
                    user, f"Signed in as **{user.name}**, a viewer: the staff pages need a staff account."
                ),
            )
        log.info("staff sign-in: %s", user.name)
        return (user.name, "", *self._staff_view(user))

    def logout(self):
        return (None, *self._staff_view(None, "Signed out."))

    def on_load(self, session: str | None, request: gr.Request):
        return (self.services.status_line(), *self._staff_view(self._user(session, request)))

    # --- documents (staff) --------------------------------------------------------------------
    def _documents(self) -> tuple[dict, Any]:
        docs = self.services.kb.list_documents()
        return (
            _table(staff.DOCUMENT_HEADERS, staff.document_rows(docs)),
            gr.update(choices=[d.source for d in docs], value=None),
        )

    def _after_ingest(self, report: IngestReport) -> tuple:
        summary = report.summary()
        if report.failed:
            summary += " — see the reasons below."
        return (
            f"**Ingest finished:** {summary}",
            _table(staff.REPORT_HEADERS, staff.report_rows(report)),
            *self._documents(),
            self.services.status_line(),
        )

    def upload(
        self,
        files: list[str] | None,
        session: str | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ):
        user = self._staff(session, request)
        if not files:
            raise gr.Error("Choose one or more files to upload first.")
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files]
        log.info("%s uploads %d file(s)", user.name, len(paths))
        progress(0, desc="Saving files")
        try:
            report = staff.upload_and_ingest(paths, self.services, progress=_ingest_progress(progress))
        except IngestBusy as exc:
            raise gr.Error(str(exc)) from None
        return (*self._after_ingest(report), None)

    def reingest(self, session: str | None, request: gr.Request, progress: gr.Progress = gr.Progress()):
        user = self._staff(session, request)
        log.info("%s re-ingests the corpus", user.name)
        try:
            report = staff.reingest_corpus(self.services, progress=_ingest_progress(progress))
        except IngestBusy as exc:
            raise gr.Error(str(exc)) from None
        return self._after_ingest(report)

    def refresh_documents(self, session: str | None, request: gr.Request):
        self._staff(session, request)
        return (*self._documents(), self.services.status_line())

    def ask_delete(self, source: str | None, session: str | None, request: gr.Request):
        """First step of a delete: say what will go and show the confirm buttons."""
        self._staff(session, request)
        doc = self.services.kb.get_document(source) if source else None
        if doc is None:
            return gr.update(visible=False), "Choose a document to delete."
        note = (
            "The uploaded file is removed too."
            if doc.source.startswith("uploads/")
            else "It is a corpus file: it comes back at the next corpus re-ingest unless the file "
            "is also removed from the corpus folder."
        )
        return gr.update(
            visible=True
        ), f"Delete **{doc.title}** (`{doc.source}`, {doc.chunks} chunks)? {note}"

    def delete(self, source: str | None, session: str | None, request: gr.Request):
        user = self._staff(session, request)
        if not source or self.services.kb.get_document(source) is None:
            raise gr.Error("That document is not in the knowledge base.")
        chunks = staff.delete(self.services, source)
        log.info("%s deleted %s (%d chunks)", user.name, source, chunks)
        return (
            gr.update(visible=False),
            f"Deleted `{source}` ({chunks} chunks).",
            *self._documents(),
            self.services.status_line(),
        )

    @staticmethod
    def cancel_delete():
        return gr.update(visible=False), "Nothing deleted."

    # --- feedback (staff) ---------------------------------------------------------------------
    def refresh_feedback(self, session: str | None, request: gr.Request):
        self._staff(session, request)
        return _table(staff.FEEDBACK_HEADERS, staff.feedback_rows(self.services))

    def export_feedback(self, session: str | None, request: gr.Request):
        self._staff(session, request)
        return gr.update(value=str(staff.export_feedback_csv(self.services)), visible=True)

    # --- evaluation (staff) -------------------------------------------------------------------
    def run_evaluation(
        self,
        question_set: str | None,
        limit: float | None,
        session: str | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ):
        """Run a question set from ``evals/`` (only those: no path comes from the browser)."""
        user = self._staff(session, request)
        sets = question_sets()
        if question_set not in sets:
            raise gr.Error("Choose one of the question sets in evals/.")
        from assistant.evaluation import QuestionFileError, run_evaluation
        from assistant.evaluation.report import to_markdown

        out_dir = (
            self.settings.data_dir
            / "reports"
            / time.strftime(f"{Path(question_set).stem}-%Y%m%d-%H%M%S", time.gmtime())
        )
        log.info("%s runs the evaluation %s", user.name, question_set)
        progress(0, desc="Evaluating")
        try:
            report = run_evaluation(
                sets[question_set],
                self.settings,
                out_dir=out_dir,
                limit=int(limit) if limit else None,
                progress=_ingest_progress(progress, "Question"),
            )
        except (QuestionFileError, FileNotFoundError) as exc:
            raise gr.Error(str(exc)) from None
        return to_markdown(report), gr.update(value=report.paths["html"], visible=True)

    # --- layout -------------------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        s = self.settings
        with gr.Blocks(title="Documents assistant") as demo:
            session = gr.State(None)  # signed-in user name, kept server-side per browser session
            records = gr.State({})  # chat message index -> what a like/dislike refers to
            gr.Markdown(
                "## Documents assistant\nAnswers come only from the organisation's documents, "
                "with numbered citations you can open."
            )
            status = gr.Markdown(elem_id="kb-status")

            with gr.Tabs():
                with gr.Tab("Chat", id="chat"):
                    chatbot = gr.Chatbot(
                        elem_id="chatbot",
                        height=560,
                        buttons=["copy", "copy_all"],
                        latex_delimiters=[],
                        examples=[{"text": q} for q in s.example_questions] or None,
                        placeholder="Ask about the documents in the knowledge base, or pick an example.",
                        feedback_options=("Like", "Dislike"),
                        label="Chat",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Ask a question about the documents…",
                            show_label=False,
                            scale=8,
                            elem_id="question",
                            autofocus=True,
                            max_length=2000,
                        )
                        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                        clear = gr.Button("New chat", scale=1, elem_id="new-chat")

                with gr.Tab("Documents", id="documents"):
                    login_note = gr.Markdown(elem_id="login-note")
                    with gr.Group(visible=True, elem_id="login-box") as login_box:
                        username = gr.Textbox(label="User name", elem_id="login-user")
                        password = gr.Textbox(label="Password", type="password", elem_id="login-password")
                        sign_in = gr.Button("Sign in", variant="primary", elem_id="sign-in")
                    with gr.Column(visible=False, elem_id="staff-panel") as staff_panel:
                        with gr.Row():
                            signed_in = gr.Markdown()
                            sign_out = gr.Button("Sign out", size="sm", scale=0, elem_id="sign-out")
                        gr.Markdown(
                            f"### Add documents\nTypes: {', '.join(sorted(SUPPORTED_SUFFIXES))}; "
                            f"up to {s.max_upload_mb:g} MB each. A file with the same name as an "
                            "earlier upload replaces it."
                        )
                        files = gr.File(
                            file_count="multiple",
                            file_types=sorted(SUPPORTED_SUFFIXES),
                            label="Files",
                            elem_id="upload-files",
                        )
                        with gr.Row():
                            upload_btn = gr.Button("Upload and ingest", variant="primary", elem_id="upload")
                            reingest_btn = gr.Button("Re-ingest corpus", elem_id="reingest")
                        report_md = gr.Markdown(elem_id="ingest-summary")
                        report_table = gr.Dataframe(
                            value=_table(staff.REPORT_HEADERS),
                            type="array",
                            interactive=False,
                            label="Ingest report",
                            wrap=True,
                            column_widths=["40%", "12%", "8%", "40%"],
                            elem_id="ingest-report",
                        )
                        gr.Markdown("### Documents")
                        docs_table = gr.Dataframe(
                            value=_table(staff.DOCUMENT_HEADERS),
                            type="array",
                            interactive=False,
                            label="Indexed documents",
                            wrap=True,
                            column_widths=["34%", "34%", "8%", "10%", "14%"],
                            elem_id="documents-table",
                        )
                        with gr.Row():
                            delete_choice = gr.Dropdown(
                                label="Document to delete", choices=[], scale=3, elem_id="delete-choice"
                            )
                            delete_btn = gr.Button("Delete…", variant="stop", scale=1, elem_id="delete")
                            refresh_btn = gr.Button("Refresh", scale=1, elem_id="refresh-documents")
                        with gr.Group(visible=False, elem_id="delete-confirm") as confirm_box:
                            confirm_md = gr.Markdown()
                            with gr.Row():
                                confirm_yes = gr.Button("Yes, delete", variant="stop", elem_id="delete-yes")
                                confirm_no = gr.Button("Cancel", elem_id="delete-no")
                        delete_md = gr.Markdown(elem_id="delete-result")
                        with gr.Accordion("Feedback on answers", open=False, elem_id="feedback"):
                            feedback_table = gr.Dataframe(
                                value=_table(staff.FEEDBACK_HEADERS),
                                type="array",
                                interactive=False,
                                wrap=True,
                                label="Votes, newest first",
                            )
                            with gr.Row():
                                feedback_refresh = gr.Button("Refresh", elem_id="feedback-refresh")
                                feedback_export = gr.Button("Export CSV", elem_id="feedback-export")
                            feedback_file = gr.File(label="CSV export", visible=False, interactive=False)

                with gr.Tab("Evaluation", id="evaluation"):
                    gr.Markdown(
                        "Runs a question set from `evals/` against the assistant as configured and "
                        "reports retrieval, answer and refusal metrics (staff only; sign in on the "
                        "Documents tab). See `python -m assistant.evaluation --help` for more options."
                    )
                    with gr.Column(visible=False) as eval_panel:
                        with gr.Row():
                            eval_set = gr.Dropdown(
                                choices=list(question_sets()),
                                label="Question set",
                                elem_id="eval-set",
                                scale=3,
                            )
                            eval_limit = gr.Number(
                                value=0, precision=0, minimum=0, label="First N questions (0 = all)", scale=1
                            )
                        eval_btn = gr.Button("Run evaluation", variant="primary", elem_id="run-evaluation")
                        eval_out = gr.Markdown(elem_id="evaluation-report")
                        eval_file = gr.File(label="HTML report", visible=False, interactive=False)

            # chat: one public endpoint; example clicks reuse the same handler privately
            chat_io = dict(
                fn=self.respond,
                inputs=[question, chatbot, records, session],
                outputs=[chatbot, question, records, status],
                concurrency_limit=s.concurrency_limit,
                concurrency_id="chat",
                show_progress="minimal",
            )
            gr.on(
                [question.submit, ask.click],
                api_name="chat",
                api_description="Ask a question; returns the chat with the cited answer.",
                **chat_io,
            )
            chatbot.example_select(
                self.fill_example, None, question, queue=False, api_visibility=PRIVATE
            ).then(api_visibility=PRIVATE, **chat_io)
            chatbot.like(self.on_like, [records, session], None, api_visibility=PRIVATE)
            chatbot.clear(lambda: {}, None, records, queue=False, api_visibility=PRIVATE)
            clear.click(
                lambda: ([], "", {}), None, [chatbot, question, records], queue=False, api_visibility=PRIVATE
            )

            # staff: every one private and role-checked inside
            view_outputs = [
                login_box,
                staff_panel,
                login_note,
                signed_in,
                docs_table,
                delete_choice,
                feedback_table,
                eval_panel,
            ]
            gr.on(
                [sign_in.click, password.submit],
                self.login,
                [username, password],
                [session, password, *view_outputs],
                api_name="staff_login",
                api_visibility=PRIVATE,
            )
            sign_out.click(
                self.logout, None, [session, *view_outputs], api_name="staff_logout", api_visibility=PRIVATE
            )
            demo.load(self.on_load, [session], [status, *view_outputs], api_visibility=PRIVATE)

            ingest_outputs = [report_md, report_table, docs_table, delete_choice, status]
            upload_btn.click(
                self.upload,
                [files, session],
                [*ingest_outputs, files],
                api_name="staff_upload",
                api_visibility=PRIVATE,
                concurrency_id="ingest",
                concurrency_limit=1,
            )
            reingest_btn.click(
                self.reingest,
                [session],
                ingest_outputs,
                api_name="staff_reingest",
                api_visibility=PRIVATE,
                concurrency_id="ingest",
                concurrency_limit=1,
            )
            refresh_btn.click(
                self.refresh_documents,
                [session],
                [docs_table, delete_choice, status],
                api_name="staff_documents",
                api_visibility=PRIVATE,
            )
            delete_btn.click(
                self.ask_delete,
                [delete_choice, session],
                [confirm_box, confirm_md],
                api_name="staff_ask_delete",
                api_visibility=PRIVATE,
            )
            confirm_yes.click(
                self.delete,
                [delete_choice, session],
                [confirm_box, delete_md, docs_table, delete_choice, status],
                api_name="staff_delete",
                api_visibility=PRIVATE,
                concurrency_id="ingest",
                concurrency_limit=1,
            )
            confirm_no.click(
                self.cancel_delete, None, [confirm_box, delete_md], queue=False, api_visibility=PRIVATE
            )
            feedback_refresh.click(
                self.refresh_feedback,
                [session],
                feedback_table,
                api_name="staff_feedback",
                api_visibility=PRIVATE,
            )
            feedback_export.click(
                self.export_feedback,
                [session],
                feedback_file,
                api_name="staff_feedback_csv",
                api_visibility=PRIVATE,
            )
            eval_btn.click(
                self.run_evaluation,
                [eval_set, eval_limit, session],
                [eval_out, eval_file],
                api_name="staff_evaluation",
                api_visibility=PRIVATE,
                concurrency_id="evaluation",
                concurrency_limit=1,
            )
        return demo


def _ingest_progress(progress: gr.Progress, what: str = "Ingesting"):
    """Adapts ``progress(done, total, name)`` callbacks (ingest, evaluation) to ``gr.Progress``."""

    def report(done: int, total: int, name: str) -> None:
        progress((done, total or None), desc=f"{what} {name}" if name else "Finishing", unit="steps")

    return report


STAFF_ENDPOINTS = (
    "staff_upload",
    "staff_reingest",
    "staff_documents",
    "staff_ask_delete",
    "staff_delete",
    "staff_feedback",
    "staff_feedback_csv",
    "staff_evaluation",
)


def question_sets() -> dict[str, Path]:
    """The evaluation question sets shipped in ``evals/``, by file name."""
    if not EVALS_DIR.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(EVALS_DIR.iterdir())
        if p.suffix.lower() in (".yaml", ".yml", ".json", ".jsonl") and p.is_file()
    }


def build_ui(services: Services) -> gr.Blocks:
    return AppUI(services).build()
