"""The API keys tab (staff only): create a key for a user (shown once), list keys, revoke one.

The keys themselves live in ``webapp.apikeys``; a request with a key acts as its user.
"""

from __future__ import annotations

import logging
import time

import gradio as gr

from webapp.apikeys import MAX_LABEL_CHARS, ApiKey
from webapp.auth import User
from webapp.pages import PRIVATE, require_staff, table
from webapp.services import Services

log = logging.getLogger(__name__)

KEY_HEADERS = ["id", "key", "user", "label", "created", "created by", "last used", "state"]


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) if t else ""


def key_rows(keys: list[ApiKey]) -> list[list]:
    return [
        [
            k.id,
            k.shown,
            k.user,
            k.label,
            _when(k.created_at),
            k.created_by,
            _when(k.last_used_at),
            "active" if k.active else f"revoked {_when(k.revoked_at)}",
        ]
        for k in keys
    ]


class KeysPage:
    def __init__(self, services: Services) -> None:
        self.services = services

    def _listing(self) -> tuple[dict, dict]:
        keys = self.services.api_keys.list()
        active = [(f"{k.id} · {k.shown} · {k.user} · {k.label}", k.id) for k in keys if k.active]
        return table(KEY_HEADERS, key_rows(keys)), gr.update(choices=active, value=None)

    def on_load(self, user: User | None) -> tuple:
        is_staff = bool(user and user.is_staff)
        return (
            gr.update(visible=is_staff),
            *(self._listing() if is_staff else (table(KEY_HEADERS), gr.update())),
        )

    def create(self, for_user: str | None, label: str | None, request: gr.Request):
        staff = require_staff(self.services, request)
        if self.services.users.get(for_user) is None:
            raise gr.Error("Choose a user from the users file.")
        key, secret = self.services.api_keys.create(for_user, label or "", created_by=staff.name)
        log.info("%s created API key %d for %s", staff.name, key.id, key.user)
        note = f"**Key {key.id} for {key.user}.** Copy it now: it is not shown again."
        return note, gr.update(value=secret, visible=True), *self._listing()

    def revoke(self, key_id: int | None, request: gr.Request):
        staff = require_staff(self.services, request)
        if not isinstance(key_id, int) or not self.services.api_keys.revoke(key_id):
            raise gr.Error("Choose an active key to revoke.")
        log.info("%s revoked API key %d", staff.name, key_id)
        return f"Key {key_id} revoked.", gr.update(value="", visible=False), *self._listing()

    def refresh(self, request: gr.Request):
        require_staff(self.services, request)
        return self._listing()

    def build(self) -> list:
        """The tab's content; returns the components ``on_load`` updates, in its order."""
        gr.Markdown(
            "API keys let scripts and OpenAI-compatible clients ask as a user "
            "(`Authorization: Bearer <key>` on `/v1/chat/completions`, `/api/ask`, `/files`). "
            "Staff only; sign in on the Documents tab."
        )
        with gr.Column(visible=False, elem_id="keys-panel") as panel:
            with gr.Row():
                for_user = gr.Dropdown(
                    choices=sorted(self.services.users.users), label="User", elem_id="key-user", scale=2
                )
                label = gr.Textbox(label="Label (what it is for)", max_length=MAX_LABEL_CHARS, scale=3)
                create = gr.Button("Create key", variant="primary", elem_id="create-key", scale=1)
            note = gr.Markdown(elem_id="key-note")
            secret = gr.Textbox(
                label="New key", visible=False, interactive=False, buttons=["copy"], elem_id="new-key"
            )
            keys = gr.Dataframe(
                value=table(KEY_HEADERS),
                type="array",
                interactive=False,
                label="Keys (only a prefix of each is stored in the clear)",
                elem_id="keys-table",
            )
            with gr.Row():
                choice = gr.Dropdown(label="Key to revoke", choices=[], elem_id="revoke-choice", scale=3)
                revoke = gr.Button("Revoke", variant="stop", elem_id="revoke-key", scale=1)
                refresh = gr.Button("Refresh", elem_id="refresh-keys", scale=1)
        create.click(
            self.create,
            [for_user, label],
            [note, secret, keys, choice],
            api_name="staff_create_key",
            api_visibility=PRIVATE,
        )
        revoke.click(
            self.revoke,
            [choice],
            [note, secret, keys, choice],
            api_name="staff_revoke_key",
            api_visibility=PRIVATE,
        )
        refresh.click(self.refresh, None, [keys, choice], api_name="staff_keys", api_visibility=PRIVATE)
        return [panel, keys, choice]
