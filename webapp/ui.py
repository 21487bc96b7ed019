"""The Gradio page: assembles the tabs of ``webapp.pages`` under one status line.

Each tab is a module with its handlers and its ``build``; this file only lays them out and wires
the page load (which shows each tab what the signed-in user may see) and the status refresh
while the start-up ingest runs.
"""

from __future__ import annotations

import gradio as gr

from webapp.pages import PRIVATE, caller
from webapp.pages.chat import ChatPage
from webapp.pages.collections import CollectionsPage
from webapp.pages.documents import DocumentsPage
from webapp.pages.evaluation import EvaluationPage
from webapp.pages.keys import KeysPage
from webapp.services import Services

CSS = """
#kb-status { font-size: 0.9em; opacity: 0.85; }
.kb-source { margin: 0.2em 0 0.9em 0; }
.kb-source-head { font-size: 0.92em; margin-bottom: 0.25em; }
.kb-source-text { font-size: 0.88em; border-left: 3px solid var(--border-color-primary);
                  padding-left: 0.6em; opacity: 0.9; }
.kb-source mark { background: #fde68a; color: inherit; padding: 0 0.1em; border-radius: 2px; }
.kb-list label { width: 100%; }
.kb-removed { opacity: 0.75; }
.kb-form { display: flex; flex-direction: column; gap: 0.4em; max-width: 24em; }
.kb-form input[type=text], .kb-form input:not([type]), .kb-form input[type=password] {
    padding: 0.5em; border: 1px solid var(--border-color-primary); border-radius: 6px;
    background: var(--input-background-fill); color: var(--body-text-color); }
.kb-form.kb-inline { flex-direction: row; align-items: center; max-width: none; gap: 1em; }
.kb-button { padding: 0.45em 1.2em; border-radius: 6px; cursor: pointer;
             border: 1px solid var(--border-color-primary); background: var(--button-secondary-background-fill);
             color: var(--button-secondary-text-color); }
.kb-button.primary { background: var(--button-primary-background-fill);
                     color: var(--button-primary-text-color); border: 0; margin-top: 0.6em; }
"""
STAFF_ENDPOINTS = (
    "staff_upload",
    "staff_reingest",
    "staff_documents",
    "staff_watch",
    "staff_ask_delete",
    "staff_delete",
    "staff_feedback",
    "staff_feedback_csv",
    "staff_evaluation",
    "staff_create_key",
    "staff_revoke_key",
    "staff_keys",
    "staff_set_collection_groups",
    "staff_set_document_collections",
    "staff_collections",
)
STATUS_REFRESH_S = 3.0


def build_ui(services: Services) -> gr.Blocks:
    chat, documents, evaluation = ChatPage(services), DocumentsPage(services), EvaluationPage(services)
    keys, collections = KeysPage(services), CollectionsPage(services)

    def on_load(request: gr.Request):
        user = caller(services, request)
        # only after signing in or out (?view=documents): a slow page load must not pull a user
        # who has already clicked another tab back to the chat
        tab = gr.Tabs(selected="documents") if request.query_params.get("view") == "documents" else gr.skip()
        return (
            services.status_line(),
            tab,
            gr.Timer(active=services.startup.state == "running"),
            *chat.on_load(request),
            *documents.on_load(user),
            *evaluation.on_load(user),
            *collections.on_load(user),
            *keys.on_load(user),
        )

    def refresh_status():
        return services.status_line(), gr.Timer(active=services.startup.state == "running")

    with gr.Blocks(title="Documents assistant", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "## Documents assistant\nAnswers come only from the organisation's documents, "
            "with numbered citations you can open."
        )
        status = gr.Markdown(elem_id="kb-status")
        timer = gr.Timer(STATUS_REFRESH_S, active=False)
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat"):
                chat_outputs = chat.build(status)
            with gr.Tab("Documents", id="documents"):
                documents_outputs = documents.build(status)
            with gr.Tab("Evaluation", id="evaluation"):
                evaluation_outputs = evaluation.build()
            with gr.Tab("Collections", id="collections"):
                collections_outputs = collections.build()
            with gr.Tab("API keys", id="keys"):
                keys_outputs = keys.build()
        demo.load(
            on_load,
            None,
            [
                status,
                tabs,
                timer,
                *chat_outputs,
                *documents_outputs,
                *evaluation_outputs,
                *collections_outputs,
                *keys_outputs,
            ],
            api_visibility=PRIVATE,
        )
        timer.tick(refresh_status, None, [status, timer], api_visibility=PRIVATE, queue=False)
    return demo
