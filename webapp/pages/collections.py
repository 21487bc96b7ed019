"""The collections tab (staff only): each collection (a top folder of the corpus or of uploads),
its documents, and the groups that may read it; staff change who may read a collection here, and
the next question of every user on every replica follows the new rule (``kb.access``).
"""

from __future__ import annotations

import logging
from collections import Counter

import gradio as gr

from kb.access import EVERYONE, collection_of, valid_collection
from webapp.auth import User
from webapp.pages import PRIVATE, require_staff, table
from webapp.services import Services

log = logging.getLogger(__name__)

COLLECTION_HEADERS = ["collection", "documents", "chunks", "who may read it"]


class CollectionsPage:
    def __init__(self, services: Services) -> None:
        self.services = services

    def names(self) -> list[str]:
        """Every collection with documents or a rule."""
        docs = {collection_of(d.source) for d in self.services.kb.list_documents()}
        return sorted(docs | set(self.services.rules.rules()))

    def _listing(self) -> tuple[dict, dict]:
        documents = self.services.kb.list_documents()
        counts = Counter(collection_of(d.source) for d in documents)
        chunks = Counter()
        for d in documents:
            chunks[collection_of(d.source)] += d.chunks
        rules = self.services.rules.rules()
        rows = [
            [name, counts[name], chunks[name], ", ".join(rules.get(name, [EVERYONE])) or "staff only"]
            for name in self.names()
        ]
        return table(COLLECTION_HEADERS, rows), gr.update(choices=self.names())

    def on_load(self, user: User | None) -> tuple:
        is_staff = bool(user and user.is_staff)
        listing = self._listing() if is_staff else (table(COLLECTION_HEADERS), gr.update())
        return (gr.update(visible=is_staff), *listing)

    def save(self, collection: str | None, groups: str | None, request: gr.Request):
        staff = require_staff(self.services, request)
        name = (collection or "").strip()
        if not valid_collection(name):
            raise gr.Error("A collection name is letters, digits, spaces, '.', '_' or '-' (64 at most).")
        kept = self.services.rules.set(name, (groups or "").replace(";", ",").split(","))
        log.info("%s set who may read %s: %s", staff.name, name, kept or "staff only")
        who = ", ".join(kept) if kept else "staff only"
        return f"**{name}** may now be read by: {who}. This holds from the next question.", *self._listing()

    def refresh(self, request: gr.Request):
        require_staff(self.services, request)
        return self._listing()

    def build(self) -> list:
        """The tab's content; returns the components ``on_load`` updates, in its order."""
        gr.Markdown(
            "A document's collection is its top folder (in `corpus/`, or chosen at upload). "
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
            refresh = gr.Button("Refresh", elem_id="refresh-collections")
        save.click(
            self.save,
            [name, groups],
            [note, listing, name],
            api_name="staff_set_collection_groups",
            api_visibility=PRIVATE,
        )
        refresh.click(
            self.refresh, None, [listing, name], api_name="staff_collections", api_visibility=PRIVATE
        )
        return [panel, listing, name]
