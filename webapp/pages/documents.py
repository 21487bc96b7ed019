"""The documents tab: sign in, and for staff upload, re-ingest, list, delete, file problems and
feedback.

Signing in is a plain HTML form posted to ``/login`` (in a ``gr.Markdown``: ``gr.HTML`` renders
through ``eval``, which the page's Content-Security-Policy forbids) (a session cookie, see ``webapp.sessions``),
not a Gradio event: an event cannot set an HttpOnly cookie, and tying the role to Gradio's
``session_hash`` would let any client that learns the hash act as staff.

Uploads arrive through Gradio's upload route (which ``webapp.security`` opens to staff only); the
handler accepts only files inside Gradio's upload folder, and Gradio's own path check (turned on
in ``webapp.server``) already refuses any other path a client names.
"""

from __future__ import annotations

import html
import logging
import time
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.report import IngestReport
from kb.access import GENERAL, valid_collection
from kb.store import IngestBusy
from webapp import staff
from webapp.auth import MAX_NAME_CHARS, User
from webapp.pages import BAD_COLLECTION_NAME, PRIVATE, progress_reporter, require_staff, table
from webapp.services import Services

log = logging.getLogger(__name__)

PROBLEM_HEADERS = ["file", "status", "reason", "when (UTC)"]


def read_only_table(headers: list[str], label: str, **layout: Any) -> gr.Dataframe:
    """A read-only table the staff page fills from the server (never from the browser)."""
    return gr.Dataframe(
        value=table(headers), type="array", interactive=False, label=label, wrap=True, **layout
    )


def sign_in_form() -> str:
    return (
        '<form method="post" action="login" class="kb-form" id="sign-in-form">'
        '<input type="hidden" name="next" value="documents">'
        '<label for="login-user">User name</label>'
        f'<input id="login-user" name="username" autocomplete="username" maxlength="{MAX_NAME_CHARS}" required>'
        '<label for="login-password">Password</label>'
        '<input id="login-password" name="password" type="password" autocomplete="current-password" required>'
        '<button type="submit" id="sign-in" class="kb-button primary">Sign in</button>'
        "</form>"
    )


def sign_out_form(user: User) -> str:
    return (
        '<form method="post" action="logout" class="kb-form kb-inline" id="sign-out-form">'
        '<input type="hidden" name="next" value="documents">'
        f"<span>Signed in as <strong>{html.escape(user.name)}</strong> ({user.role}).</span> "
        '<button type="submit" id="sign-out" class="kb-button">Sign out</button>'
        "</form>"
    )


def in_upload_folder(path: str | Path) -> bool:
    """Only a file Gradio's upload route wrote may be ingested, never another server path."""
    return Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve())


class DocumentsPage:
    def __init__(self, services: Services) -> None:
        self.services = services

    # --- what a staff member sees -----------------------------------------------------------------
    def _documents(self) -> tuple[dict, Any]:
        docs = self.services.kb.list_documents()
        return (
            table(staff.DOCUMENT_HEADERS, staff.document_rows(docs)),
            gr.update(choices=[d.source for d in docs], value=None),
        )

    def _problems(self) -> dict:
        rows = [
            [p.source, p.status, p.reason, time.strftime("%Y-%m-%d %H:%M", time.gmtime(p.at))]
            for p in self.services.kb.file_problems()
        ]
        return table(PROBLEM_HEADERS, rows)

    def _watch(self) -> tuple[str, dict]:
        """The folder watcher's line and the latest change it picked up per file."""
        watch = self.services.watch
        if watch is None:
            return "", table(staff.WATCH_HEADERS)
        state = {"watching": "watching", "starting": "starting", "failed": "stopped after an error"}
        folders = (
            ", ".join(f"`{html.escape(str(f))}`" for f in watch.folders) or "the corpus and uploads folders"
        )
        line = (
            f"**Folder watcher** ({state.get(watch.state, watch.state)}): {folders}. New, changed and "
            "removed files are ingested as they change; below, the latest outcome per file, newest first."
        )
        if watch.error:
            line += f" Error: {html.escape(watch.error)}"
        return line, table(staff.WATCH_HEADERS, staff.watch_rows(watch.latest()))

    def on_load(self, user: User | None) -> tuple:
        """Outputs of a page load: the sign-in form or the staff panel, and (staff only) data."""
        is_staff = bool(user and user.is_staff)
        if user is None:
            note = sign_in_form()
        elif not is_staff:
            note = sign_out_form(user) + "<p>The staff pages need a staff account.</p>"
        else:
            note = ""
        empty = (table(staff.DOCUMENT_HEADERS), gr.update(choices=[], value=None))
        return (
            gr.update(value=note, visible=not is_staff),
            gr.update(visible=is_staff),
            sign_out_form(user) if is_staff else "",
            *(self._documents() if is_staff else empty),
            self._problems() if is_staff else table(PROBLEM_HEADERS),
            table(staff.FEEDBACK_HEADERS, staff.feedback_rows(self.services) if is_staff else []),
            *(self._watch() if is_staff else ("", table(staff.WATCH_HEADERS))),
        )

    # --- handlers ---------------------------------------------------------------------------------
    def _after_ingest(self, report: IngestReport) -> tuple:
        summary = report.summary()
        if report.failed:
            summary += " — see the reasons below."
        return (
            f"**Ingest finished:** {summary}",
            table(staff.REPORT_HEADERS, staff.report_rows(report)),
            *self._documents(),
            self._problems(),
            self.services.status_line(),
        )

    def upload(
        self,
        files: list[Any] | None,
        collection: str | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ):
        user = require_staff(self.services, request)
        if not files:
            raise gr.Error("Choose one or more files to upload first.")
        collection = (collection or "").strip() or GENERAL
        if not valid_collection(collection):
            raise gr.Error(BAD_COLLECTION_NAME)
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in files]
        outside = [p for p in paths if not in_upload_folder(p)]
        if outside:
            log.warning("%s sent %d file path(s) outside the upload folder: refused", user.name, len(outside))
            raise gr.Error("Only files uploaded through this page can be added.", title="Not allowed")
        log.info("%s uploads %d file(s)", user.name, len(paths))
        progress(0, desc="Saving files")
        try:
            report = staff.upload_and_ingest(
                paths, self.services, progress=progress_reporter(progress), collection=collection
            )
        except IngestBusy as exc:
            raise gr.Error(str(exc)) from None
        return (*self._after_ingest(report), None)

    def reingest(self, request: gr.Request, progress: gr.Progress = gr.Progress()):
        user = require_staff(self.services, request)
        log.info("%s re-ingests the corpus", user.name)
        try:
            report = staff.reingest_corpus(self.services, progress=progress_reporter(progress))
        except IngestBusy as exc:
            raise gr.Error(str(exc)) from None
        return self._after_ingest(report)

    def refresh(self, request: gr.Request):
        require_staff(self.services, request)
        return (*self._documents(), self._problems(), self.services.status_line())

    def refresh_watch(self, request: gr.Request):
        require_staff(self.services, request)
        return self._watch()

    def ask_delete(self, source: str | None, request: gr.Request):
        """First step of a delete: say what will go and show the confirm buttons."""
        require_staff(self.services, request)
        doc = self.services.kb.get_document(source) if isinstance(source, str) else None
        if doc is None:
            return gr.update(visible=False), "Choose a document to delete."
        note = (
            "The uploaded file is removed too."
            if doc.source.startswith("uploads/")
            else "It is a corpus file: it comes back at the next corpus re-ingest unless the file "
            "is also removed from the corpus folder."
        )
        title, source_id = html.escape(doc.title), html.escape(doc.source)
        return gr.update(visible=True), f"Delete **{title}** (`{source_id}`, {doc.chunks} chunks)? {note}"

    def delete(self, source: str | None, request: gr.Request):
        user = require_staff(self.services, request)
        if not isinstance(source, str) or self.services.kb.get_document(source) is None:
            raise gr.Error("That document is not in the knowledge base.")
        chunks = staff.delete(self.services, source)
        log.info("%s deleted %s (%d chunks)", user.name, source, chunks)
        return (
            gr.update(visible=False),
            f"Deleted `{html.escape(source)}` ({chunks} chunks).",
            *self._documents(),
            self.services.status_line(),
        )

    @staticmethod
    def cancel_delete():
        return gr.update(visible=False), "Nothing deleted."

    def refresh_feedback(self, request: gr.Request):
        require_staff(self.services, request)
        return table(staff.FEEDBACK_HEADERS, staff.feedback_rows(self.services))

    def export_feedback(self, request: gr.Request):
        require_staff(self.services, request)
        return gr.update(value=str(staff.export_feedback_csv(self.services)), visible=True)

    # --- layout -----------------------------------------------------------------------------------
    def build(self, status: gr.Markdown) -> list:
        """The tab's content; returns the components ``on_load`` updates, in its order."""
        s = self.services.settings
        login_box = gr.Markdown(sign_in_form(), elem_id="login-box", sanitize_html=False)
        with gr.Column(visible=False, elem_id="staff-panel") as staff_panel:
            signed_in = gr.Markdown(elem_id="signed-in", sanitize_html=False)
            gr.Markdown(
                f"### Add documents\nTypes: {', '.join(sorted(SUPPORTED_SUFFIXES))}; "
                f"up to {s.max_upload_mb:g} MB each. A file with the same name as an earlier upload "
                "replaces it."
            )
            files = gr.File(
                file_count="multiple",
                file_types=sorted(SUPPORTED_SUFFIXES),
                label="Files",
                elem_id="upload-files",
            )
            collection = gr.Dropdown(
                choices=[GENERAL],
                value=GENERAL,
                allow_custom_value=True,
                label="Collection (who may read it is set on the Collections tab)",
                elem_id="upload-collection",
            )
            with gr.Row():
                upload_btn = gr.Button("Upload and ingest", variant="primary", elem_id="upload")
                reingest_btn = gr.Button("Re-ingest corpus", elem_id="reingest")
            report_md = gr.Markdown(elem_id="ingest-summary")
            report_table = read_only_table(
                staff.REPORT_HEADERS,
                "Ingest report",
                column_widths=["40%", "12%", "8%", "40%"],
                elem_id="ingest-report",
            )
            gr.Markdown("### Documents")
            docs_table = read_only_table(
                staff.DOCUMENT_HEADERS,
                "Indexed documents",
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
            problems_table = read_only_table(
                PROBLEM_HEADERS,
                "Files that are not indexed (failed or skipped at their last ingest)",
                column_widths=["34%", "10%", "40%", "16%"],
                elem_id="file-problems",
            )
            with gr.Group(visible=self.services.watch is not None, elem_id="watch"):
                watch_md = gr.Markdown(elem_id="watch-status")
                watch_table = read_only_table(
                    staff.WATCH_HEADERS,
                    "Picked up by the folder watcher (Refresh to update)",
                    column_widths=["34%", "10%", "8%", "34%", "14%"],
                    elem_id="watch-report",
                )
            with gr.Accordion("Feedback on answers", open=False, elem_id="feedback"):
                feedback_table = read_only_table(
                    staff.FEEDBACK_HEADERS,
                    "Votes, newest first",
                )
                with gr.Row():
                    feedback_refresh = gr.Button("Refresh", elem_id="feedback-refresh")
                    feedback_export = gr.Button("Export CSV", elem_id="feedback-export")
                feedback_file = gr.File(label="CSV export", visible=False, interactive=False)

        # every event private and role-checked inside
        ingest_outputs = [report_md, report_table, docs_table, delete_choice, problems_table, status]
        upload_btn.click(
            self.upload,
            [files, collection],
            [*ingest_outputs, files],
            api_name="staff_upload",
            api_visibility=PRIVATE,
            concurrency_id="ingest",
            concurrency_limit=1,
        )
        reingest_btn.click(
            self.reingest,
            None,
            ingest_outputs,
            api_name="staff_reingest",
            api_visibility=PRIVATE,
            concurrency_id="ingest",
            concurrency_limit=1,
        )
        refresh_btn.click(
            self.refresh,
            None,
            [docs_table, delete_choice, problems_table, status],
            api_name="staff_documents",
            api_visibility=PRIVATE,
        )
        refresh_btn.click(
            self.refresh_watch, None, [watch_md, watch_table], api_name="staff_watch", api_visibility=PRIVATE
        )
        delete_btn.click(
            self.ask_delete,
            [delete_choice],
            [confirm_box, confirm_md],
            api_name="staff_ask_delete",
            api_visibility=PRIVATE,
        )
        confirm_yes.click(
            self.delete,
            [delete_choice],
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
            self.refresh_feedback, None, feedback_table, api_name="staff_feedback", api_visibility=PRIVATE
        )
        feedback_export.click(
            self.export_feedback, None, feedback_file, api_name="staff_feedback_csv", api_visibility=PRIVATE
        )
        return [
            login_box,
            staff_panel,
            signed_in,
            docs_table,
            delete_choice,
            problems_table,
            feedback_table,
            watch_md,
            watch_table,
        ]
