"""The chat tab: open to stakeholders (signed in when ``ASSISTANT_REQUIRE_LOGIN`` is on).

The conversation lives on the server (a ``gr.State`` holding a ``Conversation``); the public
``chat`` event takes only the question text, so no client value ever reaches a file-carrying
component's preprocessing (Gradio copies a "file" named in a Chatbot value into its cache). The
chatbot is an output only. Answers stream from a generator that holds one of the app's answering
slots (``webapp.gate``) while it runs.
"""

from __future__ import annotations

import logging

import gradio as gr

from assistant.models import Answer
from kb.access import Scope
from webapp.chat import MAX_QUESTION_CHARS, UNEXPECTED_ERROR, Conversation, answer_display, display_text
from webapp.conversations import TITLE_CHARS, title_from
from webapp.feedback import FeedbackItem
from webapp.gate import Busy
from webapp.pages import PRIVATE, caller, owner
from webapp.services import Services

PICK_COLLECTION, PICK_DOCUMENT = "c:", "d:"

log = logging.getLogger(__name__)

VOTES = {True: "up", False: "down"}
TOO_LONG = f"Questions are limited to {MAX_QUESTION_CHARS:,} characters; please shorten yours."


class ChatPage:
    def __init__(self, services: Services) -> None:
        self.services = services

    def scope(self, picks: list[str] | None, request: gr.Request) -> Scope:
        """What this question may read: the caller's rights, narrowed to what they picked (a
        picked name they may not read narrows to nothing, it never widens)."""
        picks = [p for p in picks or [] if isinstance(p, str)]
        collections = [p[2:] for p in picks if p.startswith(PICK_COLLECTION)]
        sources = [p[2:] for p in picks if p.startswith(PICK_DOCUMENT)]
        return self.services.scope_of(caller(self.services, request)).narrowed(collections, sources)

    def picker(self, request: gr.Request) -> gr.Dropdown:
        """The collections and documents the caller may read, as picker choices."""
        collections, documents = self.services.readable(caller(self.services, request))
        choices = [(f"Collection: {c}", PICK_COLLECTION + c) for c in collections]
        choices += [(f"Document: {d.title or d.source}", PICK_DOCUMENT + d.source) for d in documents]
        return gr.Dropdown(choices=choices)

    def respond(
        self, message: str | None, picks: list[str] | None, convo: Conversation | None, request: gr.Request
    ):
        """Stream the answer into the chat, then add the collapsible sources block and save the
        exchange in the asker's conversation list."""
        convo = convo or Conversation()
        question = message.strip() if isinstance(message, str) else ""
        if not question:
            yield convo.messages, "", convo, gr.skip(), gr.skip(), gr.skip()
            return
        if len(question) > MAX_QUESTION_CHARS:
            raise gr.Error(TOO_LONG)
        history = list(convo.turns)
        convo.messages.append({"role": "user", "content": display_text(question)})
        convo.messages.append({"role": "assistant", "content": ""})
        at = len(convo.messages) - 1
        yield convo.messages, "", convo, gr.skip(), gr.skip(), gr.skip()

        scope = self.scope(picks, request)
        try:
            with self.services.gate.slot():
                answer = yield from self._stream(question, history, scope, convo, at)
        except Busy as exc:
            convo.messages[at] = {"role": "assistant", "content": str(exc)}
            yield convo.messages, question, convo, gr.skip(), gr.skip(), gr.skip()  # the question stays
            return
        if answer is None:
            yield convo.messages, "", convo, self.services.status_line(), gr.skip(), gr.skip()
            return
        user = caller(self.services, request)
        convo.finish(question, answer, user.name if user else "anonymous")
        listing, title = self._save(convo, question, answer, request)
        yield convo.messages, "", convo, self.services.status_line(), listing, title

    def _save(self, convo: Conversation, question: str, answer: Answer, request: gr.Request):
        """File the exchange under its conversation (a new one on the first question, or when it
        was deleted meanwhile); the updated list and title, or skips when nothing was saved."""
        who = owner(self.services, request)
        if who is None or answer.error:
            return gr.skip(), gr.skip()
        store = self.services.conversations
        if convo.id is None or not store.add(who, convo.id, question, answer):
            convo.id, convo.title = store.create(who, question), title_from(question)
            store.add(who, convo.id, question, answer)
        return self._listing(who, convo.id), convo.title

    def _listing(self, who: str | None, selected: str | None = None, search: str = "") -> gr.Radio:
        found = self.services.conversations.list(who, search) if who else []
        return gr.Radio(choices=[(c.title, c.id) for c in found], value=selected)

    def on_load(self, request: gr.Request) -> tuple[gr.Radio, gr.Dropdown]:
        return self._listing(owner(self.services, request)), self.picker(request)

    def open(self, cid: str | None, request: gr.Request):
        """Continue a saved conversation: only the asker's own (the id from the page is a handle)."""
        who = owner(self.services, request)
        saved = self.services.conversations.get(who, cid) if who and isinstance(cid, str) else None
        if saved is None:
            gr.Warning("That conversation no longer exists.")
            return gr.skip(), gr.skip(), self._listing(who), gr.skip()
        user = caller(self.services, request)
        cited = {c.passage.source for e in saved.exchanges for c in e.answer.citations}
        cited |= {p.source for e in saved.exchanges for p in e.answer.passages}
        scope = self.services.scope_of(user)  # what the reader may no longer read is gone for them
        removed = {s for s in cited if not scope.allows(s) or self.services.kb.get_document(s) is None}
        convo = Conversation.restore(saved, user.name if user else "anonymous", removed)
        return convo.messages, convo, gr.skip(), convo.title

    def search(self, text: str | None, convo: Conversation | None, request: gr.Request) -> gr.Radio:
        query = text[:200] if isinstance(text, str) else ""
        return self._listing(owner(self.services, request), convo.id if convo else None, query)

    def rename(self, title: str | None, convo: Conversation | None, request: gr.Request):
        who = owner(self.services, request)
        if not (who and convo and convo.id and isinstance(title, str) and title.strip()):
            return gr.skip(), gr.skip()
        if self.services.conversations.rename(who, convo.id, title):
            convo.title = " ".join(title.split())[:TITLE_CHARS]
        return self._listing(who, convo.id), convo

    def delete(self, convo: Conversation | None, request: gr.Request):
        who = owner(self.services, request)
        if who and convo and convo.id:
            self.services.conversations.delete(who, convo.id)
        return [], "", Conversation(), self._listing(who), ""

    def new_chat(self, request: gr.Request):
        return [], "", Conversation(), self._listing(owner(self.services, request)), ""

    def _stream(self, question: str, history: list[dict], scope: Scope, convo: Conversation, at: int):
        """Yield the chat as the answer grows; return the final ``Answer`` (None on failure)."""
        text = ""
        try:
            for item in self.services.assistant.stream(question, history, scope):
                if isinstance(item, Answer):
                    shown = answer_display(item) if item.text else display_text(text)
                    convo.messages[at] = {"role": "assistant", "content": shown}
                    return item
                text += item
                convo.messages[at] = {"role": "assistant", "content": display_text(text)}
                yield convo.messages, "", convo, gr.skip(), gr.skip(), gr.skip()
        except Exception:
            log.exception("answering a question failed")
        # the stream broke, or ended without its final Answer
        convo.messages[at] = {"role": "assistant", "content": display_text(text) or UNEXPECTED_ERROR}
        return None

    def on_like(self, convo: Conversation | None, data: gr.LikeData, request: gr.Request) -> None:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        record = convo.records.get(index) if convo and isinstance(index, int) else None
        vote = VOTES.get(data.liked) if isinstance(data.liked, bool) else None
        if record is None or vote is None:
            return
        user = caller(self.services, request)
        item = FeedbackItem(**{**record, "vote": vote, "user": user.name if user else record["user"]})
        self.services.feedback.add(item)
        gr.Info("Thanks for the feedback.")

    @staticmethod
    def fill_example(data: gr.SelectData) -> str:
        value = data.value
        text = value.get("text", "") if isinstance(value, dict) else ""
        return text[:MAX_QUESTION_CHARS] if isinstance(text, str) else ""

    def build(self, status: gr.Markdown) -> list[gr.components.Component]:
        """The chat with its conversation list beside it; returns what the page load fills."""
        s = self.services.settings
        convo = gr.State(None)  # the Conversation, kept server-side per browser session
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=220, elem_id="conversation-list"):
                new = gr.Button("New chat", variant="secondary", elem_id="new-chat")
                search = gr.Textbox(
                    label="Search your chats",
                    placeholder="Search your chats…",
                    show_label=False,
                    elem_id="chat-search",
                    max_length=200,
                )
                listing = gr.Radio(
                    choices=[], label="Your conversations", elem_id="conversations", elem_classes="kb-list"
                )
                with gr.Accordion("This chat", open=False):
                    title = gr.Textbox(label="Title", elem_id="chat-title", max_length=TITLE_CHARS)
                    with gr.Row():
                        rename = gr.Button("Rename", size="sm", elem_id="rename-chat")
                        delete = gr.Button("Delete", size="sm", variant="stop", elem_id="delete-chat")
            with gr.Column(scale=4):
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
                        max_length=MAX_QUESTION_CHARS,
                    )
                    ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                picks = gr.Dropdown(
                    choices=[],
                    value=[],
                    multiselect=True,
                    allow_custom_value=True,  # (API callers name them; a name only ever narrows)
                    label="Ask only within (optional)",
                    info="Collections or documents; none chosen: everything you may read.",
                    elem_id="scope-picker",
                )

        chat_io = dict(
            fn=self.respond,
            inputs=[question, picks, convo],
            outputs=[chatbot, question, convo, status, listing, title],
            concurrency_limit=s.concurrency_limit,
            concurrency_id="chat",
            show_progress="minimal",
        )
        gr.on(
            [question.submit, ask.click],
            api_name="chat",
            api_description="Ask a question; returns the chat with the cited answer. Follow-ups in the "
            "same session see the earlier questions.",
            **chat_io,
        )
        chatbot.example_select(self.fill_example, None, question, queue=False, api_visibility=PRIVATE).then(
            api_visibility=PRIVATE, **chat_io
        )
        chatbot.like(self.on_like, [convo], None, api_visibility=PRIVATE)
        fresh = dict(inputs=None, outputs=[chatbot, question, convo, listing, title], api_visibility=PRIVATE)
        chatbot.clear(self.new_chat, **fresh)
        new.click(self.new_chat, **fresh)
        listing.input(self.open, [listing], [chatbot, convo, listing, title], api_visibility=PRIVATE)
        search.change(self.search, [search, convo], listing, api_visibility=PRIVATE, show_progress="hidden")
        rename.click(self.rename, [title, convo], [listing, convo], api_visibility=PRIVATE)
        title.submit(self.rename, [title, convo], [listing, convo], api_visibility=PRIVATE)
        delete.click(self.delete, [convo], [chatbot, question, convo, listing, title], api_visibility=PRIVATE)
        return [listing, picks]
