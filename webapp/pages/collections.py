"""The collections tab (staff only): each collection (a top folder of the corpus or of uploads,
or named by staff), its documents, and the groups that may read it. Staff change who may read a
collection, and put a document in more collections than its folder's, here; the next question of
every user on every replica follows (``kb.access``).
"""

from __future__ import annotations

import logging
from collections import Counter

import gradio as gr

from kb.access import EVERYONE, collection_of, valid_collection
from webapp.auth import User
from webapp.pages import BAD_COLLECTION_NAME, PRIVATE, require_staff, table
from webapp.services import Services

log = logging.getLogger(__name__)

COLLECTION_HEADERS = ["collection", "documents", "chunks", "who may read it"]
MEMBER_HEADERS = ["document", "home collection (its folder)", "also in"]


class CollectionsPage:
    def __init__(self, services: Services) -> None:
        self.services = services

    def _listing(self) -> tuple[dict, dict, dict, dict]:
        """The collections table, the collection choices, the memberships table, the documents."""
        rules_store = self.services.rules
        documents = self.services.kb.list_documents()
        members = rules_store.members()
        counts, chunks = Counter(), Counter()
        for d in documents:
            for name in {collection_of(d.source), *members.get(d.source, ())}:
                counts[name] += 1
                chunks[name] += d.chunks
        rules = rules_store.rules()
        names = sorted(set(counts) | set(rules) | {n for ns in members.values() for n in ns})
        rows = [
            [name, counts[name], chunks[name], ", ".join(rules.get(name, [EVERYONE])) or "staff only"]
            for name in names
        ]
        indexed = {d.source for d in documents}
        member_rows = [
            [source, collection_of(source), ", ".join(extra)]
            for source, extra in sorted(members.items())
            if source in indexed
        ]
        return (
            table(COLLECTION_HEADERS, rows),
            gr.update(choices=names),
            table(MEMBER_HEADERS, member_rows),
            gr.update(choices=sorted(indexed)),
        )

    def on_load(self, user: User | None) -> tuple:
        is_staff = bool(user and user.is_staff)
        listing = (
            self._listing()
            if is_staff
            else (table(COLLECTION_HEADERS), gr.update(), table(MEMBER_HEADERS), gr.update())
        )
        return (gr.update(visible=is_staff), *listing)

    def save(self, collection: str | None, groups: str | None, request: gr.Request):
        staff = require_staff(self.services, request)
        name = (collection or "").strip()
        if not valid_collection(name):
            raise gr.Error(BAD_COLLECTION_NAME)
        kept = self.services.rules.set(name, (groups or "").replace(";", ",").split(","))
        log.info("%s set who may read %s: %s", staff.name, name, kept or "staff only")
        who = ", ".join(kept) if kept else "staff only"
        return f"**{name}** may now be read by: {who}. This holds from the next question.", *self._listing()

    def save_members(self, source: str | None, collections: str | None, request: gr.Request):
        staff = require_staff(self.services, request)
        if not isinstance(source, str) or self.services.kb.get_document(source) is None:
            raise gr.Error("Choose an indexed document first.")
        try:
            kept = self.services.rules.set_members(source, (collections or "").replace(";", ",").split(","))
        except ValueError:
            raise gr.Error(BAD_COLLECTION_NAME) from None
        log.info("%s put %s in collections %s", staff.name, source, kept)
        home = collection_of(source)
        where = f"**{home}** and " + ", ".join(f"**{k}**" for k in kept) if kept else f"only **{home}**"
        return f"`{source}` is now in {where}. This holds from the next question.", *self._listing()

    def refresh(self, request: gr.Request):
        require_staff(self.services, request)
        return self._listing()

    def build(self) -> list:
        """The tab's content; returns the components ``on_load`` updates, in its order."""
        gr.Markdown(
            "A document's collection is its top folder (in `corpus/`, or chosen at upload); "
            "below, staff can put it in more. "
            f"Who may read a collection: groups from the users file, `{EVERYONE}` for every "
            "visitor (the default), none for staff only. Staff read everything. Staff only; "
            "sign in on the Documents tab."
        )
        with gr.Column(visible=False, elem_id="collections-panel") as panel:
            listing = gr.Dataframe(
                value=table(COLLECTION_HEADERS),
                type="array",
                interactive=False,
                label="Collections",
                elem_id="collections-table",
            )
            with gr.Row():
                name = gr.Dropdown(
                    choices=[],
                    label="Collection",
                    allow_custom_value=True,
                    elem_id="rule-collection",
                    scale=2,
                )
                groups = gr.Textbox(
                    label="Groups that may read it (comma-separated)",
                    placeholder=f"{EVERYONE}  ·  board, finance  ·  (empty: staff only)",
                    elem_id="rule-groups",
                    scale=3,
                )
                save = gr.Button("Save", variant="primary", elem_id="save-rule", scale=1)
            note = gr.Markdown(elem_id="rule-note")
            gr.Markdown(
                "**A document in more collections.** Besides its folder's collection, a document "
                "can be in others: whoever may read one of them may read it."
            )
            with gr.Row():
                document = gr.Dropdown(
                    choices=[],
                    label="Document",
                    allow_custom_value=True,  # the handler checks it names an indexed document
                    elem_id="member-document",
                    scale=3,
                )
                also = gr.Textbox(
                    label="Also in (comma-separated; empty: only its folder's)",
                    placeholder="board, finance",
                    elem_id="member-collections",
                    scale=3,
                )
                save_also = gr.Button("Save", variant="primary", elem_id="save-members", scale=1)
            members = gr.Dataframe(
                value=table(MEMBER_HEADERS),
                type="array",
                interactive=False,
                label="Documents in more than one collection",
                elem_id="members-table",
            )
            refresh = gr.Button("Refresh", elem_id="refresh-collections")
        shown = [listing, name, members, document]
        save.click(
            self.save,
            [name, groups],
            [note, *shown],
            api_name="staff_set_collection_groups",
            api_visibility=PRIVATE,
        )
        save_also.click(
            self.save_members,
            [document, also],
            [note, *shown],
            api_name="staff_set_document_collections",
            api_visibility=PRIVATE,
        )
        refresh.click(self.refresh, None, shown, api_name="staff_collections", api_visibility=PRIVATE)
        return [panel, *shown]
