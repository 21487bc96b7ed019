"""Users, roles and password checks for the web app.

Users come from ``ASSISTANT_USERS_FILE`` (JSON) and/or ``ASSISTANT_USERS`` (``name:role:hash,...``);
passwords are stored only as argon2 hashes. Roles: ``staff`` (manages documents, sees feedback)
and ``viewer`` (may chat when ``ASSISTANT_REQUIRE_LOGIN`` is on). Every staff handler calls
``require_staff`` on the server: hiding a tab in the page is not a permission check.

``python -m webapp.auth hash`` prints the hash of a password typed at a prompt.

users file::

    {"users": [{"name": "alice", "role": "staff", "hash": "$argon2id$v=19$..."}]}
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kb.settings import ConfigError, Settings

Role = Literal["staff", "viewer"]
ROLES: tuple[Role, ...] = ("staff", "viewer")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# An inline entry starts with "name:role:$argon2"; commas inside a hash ("m=65536,t=3,p=4") are kept.
_ENTRY_START = re.compile(r"^\s*[A-Za-z0-9_.@-]+:(staff|viewer):\$argon2")

_hasher = PasswordHasher()


class PermissionDenied(Exception):
    """The current user may not do this; the message is shown to them."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str = ""

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _user(name: str, role: str, password_hash: str, where: str) -> User:
    if not _NAME.match(name):
        raise ConfigError(f"{where}: bad user name {name!r} (letters, digits, _ . @ - only)")
    if role not in ROLES:
        raise ConfigError(f"{where}: user {name!r} has role {role!r}; use one of {', '.join(ROLES)}")
    if not password_hash.startswith("$argon2"):
        raise ConfigError(
            f"{where}: user {name!r} needs an argon2 hash (make one with `python -m webapp.auth hash`)"
        )
    return User(name, role, password_hash)  # type: ignore[arg-type]


def parse_inline_users(text: str) -> list[User]:
    """Parse ``name:role:hash,...`` where each argon2 hash itself contains commas."""
    entries: list[str] = []
    for piece in text.split(","):
        if _ENTRY_START.match(piece) or not entries:
            entries.append(piece.strip())
        else:
            entries[-1] += "," + piece.strip()
    users = []
    for entry in filter(None, entries):
        name, sep, rest = entry.partition(":")
        role, sep2, password_hash = rest.partition(":")
        if not (sep and sep2):
            raise ConfigError("invalid setting ASSISTANT_USERS: entries look like name:role:argon2hash")
        users.append(_user(name, role, password_hash, "ASSISTANT_USERS"))
    return users


def load_users_file(path: Path) -> list[User]:
    where = f"ASSISTANT_USERS_FILE ({path})"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON: {exc}") from None
    rows = data.get("users") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise ConfigError(f'{where}: expected {{"users": [{{"name", "role", "hash"}}, ...]}}')
    users = []
    for row in rows:
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: each user is an object with name, role and hash")
        users.append(
            _user(str(row.get("name", "")), str(row.get("role", "")), str(row.get("hash", "")), where)
        )
    return users


class UserStore:
    """The users the app knows; ``verify`` is the only way to turn a password into a ``User``.

    After ``MAX_FAILURES`` wrong passwords for one name within ``LOCKOUT_S`` seconds, that name
    is refused until the window has passed (slows password guessing through the login form).
    """

    MAX_FAILURES = 5
    LOCKOUT_S = 300.0

    def __init__(self, users: list[User]) -> None:
        self.users: dict[str, User] = {}
        for user in users:
            self.users[user.name] = user  # later definitions (env) override the file
        # Verified against for unknown names too, so a wrong name costs as long as a wrong password.
        self._dummy_hash = _hasher.hash("not a real password")
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> UserStore:
        users: list[User] = []
        if settings.users_file:
            users += load_users_file(Path(settings.users_file))
        if settings.users:
            users += parse_inline_users(settings.users)
        return cls(users)

    def __len__(self) -> int:
        return len(self.users)

    def get(self, name: str | None) -> User | None:
        return self.users.get(name) if name else None

    def verify(self, name: str, password: str) -> User | None:
        name = (name or "").strip()
        if self.locked_out(name):
            return None
        user = self.users.get(name)
        try:
            _hasher.verify(user.password_hash if user else self._dummy_hash, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            with self._lock:
                self._failures.setdefault(name, []).append(time.monotonic())
            return None
        with self._lock:
            self._failures.pop(name, None)
        return user

    def locked_out(self, name: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < self.LOCKOUT_S]
            if recent:
                self._failures[name] = recent
            else:
                self._failures.pop(name, None)
            return len(recent) >= self.MAX_FAILURES

    def gradio_auth(self, name: str, password: str) -> bool:
        """For ``mount_gradio_app(auth=...)`` when every visitor must log in."""
        return self.verify(name, password) is not None


def require_staff(user: User | None) -> User:
    """The server-side check every staff action makes first."""
    if user is None:
        raise PermissionDenied("Staff sign-in required: sign in on the Documents tab.")
    if not user.is_staff:
        raise PermissionDenied(f"'{user.name}' is a viewer; this needs a staff account.")
    return user


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp.auth", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("hash", help="print the argon2 hash of a password typed at a prompt")
    args = parser.parse_args(argv)
    if args.command == "hash":
        password = getpass.getpass("Password: ")
        if not password:
            print("error: empty password", file=sys.stderr)
            return 2
        if sys.stdin.isatty() and getpass.getpass("Again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 2
        print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
