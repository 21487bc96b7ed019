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
from webapp.chat import (
    MAX_QUESTION_CHARS,
    UNEXPECTED_ERROR,
    Conversation,
    cited_sources,
    display_text,
    sources_message,
)
from webapp.feedback import FeedbackItem
from webapp.gate import Busy
from webapp.pages import PRIVATE, caller
from webapp.services import Services

log = logging.getLogger(__name__)

VOTES = {True: "up", False: "down"}
TOO_LONG = f"Questions are limited to {MAX_QUESTION_CHARS:,} characters; please shorten yours."


class ChatPage:
    def __init__(self, services: Services) -> None:
        self.services = services

    def respond(self, message: str | None, convo: Conversation | None, request: gr.Request):
        """Stream the answer into the chat, then add the collapsible sources block."""
        convo = convo or Conversation()
        question = message.strip() if isinstance(message, str) else ""
        if not question:
            yield convo.messages, "", convo, gr.skip()
            return
        if len(question) > MAX_QUESTION_CHARS:
            raise gr.Error(TOO_LONG)
        history = list(convo.turns)
        convo.messages.append({"role": "user", "content": display_text(question)})
        convo.messages.append({"role": "assistant", "content": ""})
        at = len(convo.messages) - 1
        yield convo.messages, "", convo, gr.skip()

        try:
            with self.services.gate.slot():
                answer = yield from self._stream(question, history, convo, at)
        except Busy as exc:
            convo.messages[at] = {"role": "assistant", "content": str(exc)}
            yield convo.messages, question, convo, gr.skip()  # the question stays in the box
            return
        if answer is None:
            yield convo.messages, "", convo, self.services.status_line()
            return
        convo.turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
        user = caller(self.services, request)
        record = FeedbackItem(
            question=question,
            answer=answer.text,
            vote="",
            user=user.name if user else "anonymous",
            sources=cited_sources(answer),
        ).__dict__
        convo.records[at] = record
        block = sources_message(answer)
        if block is not None:
            convo.messages.append(block)
            convo.records[len(convo.messages) - 1] = record
        convo.trim()
        yield convo.messages, "", convo, self.services.status_line()

    def _stream(self, question: str, history: list[dict], convo: Conversation, at: int):
        """Yield the chat as the answer grows; return the final ``Answer`` (None on failure)."""
        text = ""
        try:
            for item in self.services.assistant.stream(question, history):
                if isinstance(item, Answer):
                    convo.messages[at] = {"role": "assistant", "content": display_text(item.text or text)}
                    return item
                text += item
                convo.messages[at] = {"role": "assistant", "content": display_text(text)}
                yield convo.messages, "", convo, gr.skip()
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

    def build(self, status: gr.Markdown) -> None:
        s = self.services.settings
        convo = gr.State(None)  # the Conversation, kept server-side per browser session
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
            clear = gr.Button("New chat", scale=1, elem_id="new-chat")

        chat_io = dict(
            fn=self.respond,
            inputs=[question, convo],
            outputs=[chatbot, question, convo, status],
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
        chatbot.clear(Conversation, None, convo, queue=False, api_visibility=PRIVATE)
        clear.click(
            lambda: ([], "", Conversation()),
            None,
            [chatbot, question, convo],
            queue=False,
            api_visibility=PRIVATE,
        )
