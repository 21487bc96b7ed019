"""Collections and who may read them.

A document's home collection is the top folder of its path: ``corpus/board/minutes.pdf`` and an
upload filed under ``board`` (``uploads/board/...``) are in ``board``; a file at the top of either
is in ``general``. Staff may also put a document in more collections (``kb_collection_members``),
so one report can be read by the board and by finance. Each chunk carries its home collection in
Chroma's metadata (written by ``kb.store``) and the keyword index filters on the source path; the
extra memberships are few, so they travel with each question as a list of sources. A question can
thus be limited in both engines at once, before ranking.

Who may read a collection is a rule in the record store (``kb_collections``): the groups that may
read it; a collection without a rule is readable by ``everyone``. A document is readable when one
of its collections is. Changing a rule or a membership re-embeds and rewrites nothing: the next
question computes its ``Scope`` from the tables. Staff read everything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import sqlalchemy as sa

from kb.locks import create_all

GENERAL = "general"  # the collection of files at the top of the corpus or uploads folder
EVERYONE = "everyone"  # the group every caller is in, signed in or not
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}")

_meta = sa.MetaData()
rules_table = sa.Table(
    "kb_collections",
    _meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("groups", sa.Text, nullable=False),  # JSON list of group names
)
members_table = sa.Table(
    "kb_collection_members",
    _meta,
    sa.Column("source", sa.String(1024), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),  # a collection besides its home one
)


def create_tables(engine: sa.Engine) -> None:
    _meta.create_all(engine)


def collection_of(source: str) -> str:
    """The collection of a document, from its source id."""
    parts = source.split("/")
    if parts[0] == "uploads":
        parts = parts[1:]
    return parts[0] if len(parts) > 1 and parts[0] else GENERAL


def valid_collection(name: str) -> bool:
    """A name a folder and a rule can carry: letters, digits, space, ``.``, ``_``, ``-``."""
    return bool(_NAME.fullmatch(name)) and name not in (".", "..") and not name.startswith("uploads")


@dataclass(frozen=True)
class Scope:
    """What one question may search. ``denied``: collections the caller may not read (from the
    rules); ``collections`` and ``sources``: what the caller chose to ask within (``None``: no
    limit); ``also``: (source, collection) pairs of documents staff put in more collections than
    their home one. A chunk must pass all three limits; one of its collections is enough for each."""

    denied: frozenset[str] = frozenset()
    collections: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    also: frozenset[tuple[str, str]] = field(default_factory=frozenset, compare=False)

    @property
    def unlimited(self) -> bool:
        return not self.denied and self.collections is None and self.sources is None

    @property
    def narrowed_by_choice(self) -> bool:
        return self.collections is not None or self.sources is not None

    @cached_property
    def _extra(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for source, name in self.also:
            out.setdefault(source, set()).add(name)
        return out

    def collections_of(self, source: str) -> set[str]:
        """The document's home collection and any staff added it to."""
        return {collection_of(source), *self._extra.get(source, ())}

    def allows(self, source: str) -> bool:
        mine = self.collections_of(source)
        return (
            bool(mine - self.denied)
            and (self.collections is None or bool(mine & self.collections))
            and (self.sources is None or source in self.sources)
        )

    def narrowed(self, collections: Iterable[str] = (), sources: Iterable[str] = ()) -> Scope:
        """This scope limited further to the chosen collections and documents (none chosen: no
        limit); never wider than it was."""
        cols, srcs = frozenset(collections), frozenset(sources)
        new_cols = (
            self.collections if not cols else (cols if self.collections is None else cols & self.collections)
        )
        new_srcs = self.sources if not srcs else (srcs if self.sources is None else srcs & self.sources)
        return Scope(self.denied, new_cols, new_srcs, self.also)

    def readable_extra(self) -> list[str]:
        """Sources readable through a collection besides their home one."""
        return sorted({s for s, name in self.also if name not in self.denied})

    def chosen_extra(self) -> list[str]:
        """Sources in a chosen collection besides their home one."""
        return sorted({s for s, name in self.also if self.collections and name in self.collections})

    def chroma_where(self) -> dict | None:
        """The filter for Chroma's ``where`` (chunk metadata), or None."""

        def either(clause: dict, sources: list[str]) -> dict:
            return {"$or": [clause, {"source": {"$in": sources}}]} if sources else clause

        clauses = []
        if self.denied:
            clauses.append(either({"collection": {"$nin": sorted(self.denied)}}, self.readable_extra()))
        if self.collections is not None:
            home = {"collection": {"$in": sorted(self.collections) or [""]}}
            clauses.append(either(home, self.chosen_extra()))
        if self.sources is not None:
            clauses.append({"source": {"$in": sorted(self.sources) or [""]}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _in_collections(column: sa.ColumnElement, names: Iterable[str]) -> sa.ColumnElement:
    """SQL: the source lies in one of the collections (its top folder, in the corpus or uploads)."""
    conditions = []
    for name in sorted(names):
        if name == GENERAL:
            conditions += [
                ~column.like("%/%"),
                sa.and_(column.like("uploads/%"), ~column.like("uploads/%/%")),
            ]
        else:
            prefix = _like_escape(name) + "/%"
            conditions += [column.like(prefix, escape="\\"), column.like("uploads/" + prefix, escape="\\")]
    return sa.or_(*conditions) if conditions else sa.false()


def source_filter(column: sa.ColumnElement, scope: Scope) -> sa.ColumnElement | None:
    """The same limits as SQL on a source column, or None."""

    def either(condition: sa.ColumnElement, sources: list[str]) -> sa.ColumnElement:
        return sa.or_(condition, column.in_(sources)) if sources else condition

    conditions = []
    if scope.denied:
        conditions.append(either(sa.not_(_in_collections(column, scope.denied)), scope.readable_extra()))
    if scope.collections is not None:
        conditions.append(either(_in_collections(column, scope.collections), scope.chosen_extra()))
    if scope.sources is not None:
        conditions.append(column.in_(sorted(scope.sources)) if scope.sources else sa.false())
    return sa.and_(*conditions) if conditions else None


class CollectionRules:
    """Which groups may read each collection, in the record store (shared by every replica)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        create_all(engine, _meta)

    def rules(self) -> dict[str, list[str]]:
        with self.engine.connect() as conn:
            return self._rules(conn)

    @staticmethod
    def _rules(conn: sa.Connection) -> dict[str, list[str]]:
        return {name: json.loads(groups) for name, groups in conn.execute(sa.select(rules_table)).all()}

    def groups_of(self, collection: str) -> list[str]:
        return self.rules().get(collection, [EVERYONE])

    def set(self, collection: str, groups: Iterable[str]) -> list[str]:
        """Set who may read ``collection`` (an empty list: staff only); returns the groups kept."""
        if not valid_collection(collection):
            raise ValueError(f"not a collection name: {collection!r}")
        kept = sorted({g.strip() for g in groups if g.strip()})
        t = rules_table
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.name == collection))
            conn.execute(t.insert().values(name=collection, groups=json.dumps(kept)))
        return kept

    def members(self) -> dict[str, list[str]]:
        """Each document staff put in more collections: source -> those collections."""
        out: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for source, name in conn.execute(sa.select(members_table).order_by(members_table.c.name)):
                out.setdefault(source, []).append(name)
        return out

    def set_members(self, source: str, collections: Iterable[str]) -> list[str]:
        """Put ``source`` in ``collections`` besides its home one (replacing what it had)."""
        names = sorted({c.strip() for c in collections if c.strip()} - {collection_of(source)})
        for name in names:
            if not valid_collection(name):
                raise ValueError(f"not a collection name: {name!r}")
        t = members_table
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.source == source))
            if names:
                conn.execute(t.insert(), [{"source": source, "name": n} for n in names])
        return names

    def scope_for(self, groups: Iterable[str] | None) -> Scope:
        """What a caller in ``groups`` may read; ``None`` groups: staff, who read everything."""
        with self.engine.connect() as conn:  # one connection per question for both tables
            also = frozenset((s, n) for s, n in conn.execute(sa.select(members_table)))
            rules = self._rules(conn) if groups is not None else {}
        if groups is None:
            return Scope(also=also)
        mine = {EVERYONE, *groups}
        return Scope(denied=frozenset(c for c, g in rules.items() if not mine & set(g)), also=also)
