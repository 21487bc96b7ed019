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
import hashlib
import json
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kb.locks import create_all
from kb.settings import ConfigError, Settings

log = logging.getLogger(__name__)

Role = Literal["staff", "viewer"]
ROLES: tuple[Role, ...] = ("staff", "viewer")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# An inline entry starts with "name:role:$argon2"; commas inside a hash ("m=65536,t=3,p=4") are kept.
_ENTRY_START = re.compile(r"^\s*[A-Za-z0-9_.@-]+:(staff|viewer):\$argon2")

MAX_NAME_CHARS = 64
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; a megabyte "password" only costs us time

_hasher = PasswordHasher()
_meta = sa.MetaData()
failures_table = sa.Table(
    "auth_failures",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name_sha256", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
)


class PermissionDenied(Exception):
    """The current user may not do this; the message is shown to them."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str = ""
    groups: tuple[str, ...] = ()  # read rules of collections name groups (``kb.access``)

    @property
    def is_staff(self) -> bool:
        return self.role == "staff"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _user(name: str, role: str, password_hash: str, where: str, groups: object = ()) -> User:
    if not _NAME.match(name):
        raise ConfigError(f"{where}: bad user name {name!r} (letters, digits, _ . @ - only)")
    if role not in ROLES:
        raise ConfigError(f"{where}: user {name!r} has role {role!r}; use one of {', '.join(ROLES)}")
    if not password_hash.startswith("$argon2"):
        raise ConfigError(
            f"{where}: user {name!r} needs an argon2 hash (make one with `python -m webapp.auth hash`)"
        )
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, str) and g.strip() for g in groups):
        raise ConfigError(f"{where}: user {name!r}: groups is a list of group names")
    return User(name, role, password_hash, tuple(sorted({g.strip() for g in groups})))  # type: ignore[arg-type]


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
        raise ConfigError(f'{where}: expected {{"users": [{{"name", "role", "hash", "groups"}}, ...]}}')
    users = []
    for row in rows:
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: each user is an object with name, role and hash")
        users.append(
            _user(
                str(row.get("name", "")),
                str(row.get("role", "")),
                str(row.get("hash", "")),
                where,
                row.get("groups", []),
            )
        )
    return users


class LoginThrottle:
    """Failed sign-ins per name, in the record store: after ``MAX_FAILURES`` within ``WINDOW_S``
    seconds the name is refused until the window has passed, in every process and after a
    restart. Names are kept as hashes: a password typed into the name field is never stored."""

    MAX_FAILURES = 5
    WINDOW_S = 300.0

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_all(engine, _meta)

    @staticmethod
    def _key(name: str) -> str:
        return hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()

    def failed(self, name: str) -> None:
        now = time.time()
        t = failures_table
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.at < now - self.WINDOW_S))
            conn.execute(t.insert().values(name_sha256=self._key(name), at=now))

    def succeeded(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(failures_table.delete().where(failures_table.c.name_sha256 == self._key(name)))

    def locked_out(self, name: str) -> bool:
        t = failures_table
        query = sa.select(sa.func.count()).where(
            t.c.name_sha256 == self._key(name), t.c.at >= time.time() - self.WINDOW_S
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one() >= self.MAX_FAILURES


class UserStore:
    """The users the app knows; ``verify`` is the only way to turn a password into a ``User``."""

    def __init__(self, users: list[User], throttle: LoginThrottle) -> None:
        self.users: dict[str, User] = {}
        for user in users:
            self.users[user.name] = user  # later definitions (env) override the file
        self.throttle = throttle
        # Verified against for unknown names too, so a wrong name costs as long as a wrong password.
        self._dummy_hash = _hasher.hash("not a real password")

    @classmethod
    def from_settings(cls, settings: Settings, engine: sa.Engine) -> UserStore:
        users: list[User] = []
        if settings.users_file:
            users += load_users_file(Path(settings.users_file))
        if settings.users:
            users += parse_inline_users(settings.users)
        store = cls(users, LoginThrottle(engine))
        for user in store.users.values():
            try:
                extract_parameters(user.password_hash)
            except InvalidHashError:
                log.warning("user %r has a malformed argon2 hash: they cannot sign in", user.name)
        return store

    def __len__(self) -> int:
        return len(self.users)

    def get(self, name: str | None) -> User | None:
        return self.users.get(name) if name else None

    def verify(self, name: str, password: str) -> User | None:
        """The user if the password is right and the name is not locked out.

        A failure is logged with the name only when it is a known user: what was typed into the
        name field may be a password."""
        name = (name or "").strip()[:MAX_NAME_CHARS]
        password = (password or "")[:MAX_PASSWORD_CHARS]
        user = self.users.get(name)
        shown = repr(name) if user else "an unknown user name"
        if self.locked_out(name):
            log.warning("sign-in refused for %s: locked out after repeated failures", shown)
            return None
        try:
            _hasher.verify(user.password_hash if user else self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            self.throttle.failed(name)
            log.warning("failed sign-in for %s", shown)
            return None
        self.throttle.succeeded(name)
        return user

    def locked_out(self, name: str) -> bool:
        return self.throttle.locked_out((name or "").strip()[:MAX_NAME_CHARS])


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
