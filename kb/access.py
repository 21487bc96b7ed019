"""Collections and who may read them.

A document's collection is the top folder of its path: ``corpus/board/minutes.pdf`` and an upload
filed under ``board`` (``uploads/board/...``) are in ``board``; a file at the top of either is in
``general``. Each chunk carries its collection in Chroma's metadata (written by ``kb.store``), and
the keyword index filters on the source path, so a question can be limited to some collections
in both engines at once, before ranking.

Who may read a collection is a rule in the record store (``kb_collections``): the groups that may
read it; a collection without a rule is readable by ``everyone``. Changing a rule re-embeds and
rewrites nothing: the next question computes its ``Scope`` from the rules. Staff read everything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

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
    limit). A chunk must pass all three."""

    denied: frozenset[str] = frozenset()
    collections: frozenset[str] | None = None
    sources: frozenset[str] | None = None

    @property
    def unlimited(self) -> bool:
        return not self.denied and self.collections is None and self.sources is None

    @property
    def narrowed_by_choice(self) -> bool:
        return self.collections is not None or self.sources is not None

    def allows(self, source: str) -> bool:
        collection = collection_of(source)
        return (
            collection not in self.denied
            and (self.collections is None or collection in self.collections)
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
        return Scope(self.denied, new_cols, new_srcs)

    def chroma_where(self) -> dict | None:
        """The filter for Chroma's ``where`` (chunk metadata), or None."""
        clauses = []
        if self.denied:
            clauses.append({"collection": {"$nin": sorted(self.denied)}})
        if self.collections is not None:
            clauses.append({"collection": {"$in": sorted(self.collections) or [""]}})
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
    conditions = []
    if scope.denied:
        conditions.append(sa.not_(_in_collections(column, scope.denied)))
    if scope.collections is not None:
        conditions.append(_in_collections(column, scope.collections))
    if scope.sources is not None:
        conditions.append(column.in_(sorted(scope.sources)) if scope.sources else sa.false())
    return sa.and_(*conditions) if conditions else None


class CollectionRules:
    """Which groups may read each collection, in the record store (shared by every replica)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        _meta.create_all(engine)

    def rules(self) -> dict[str, list[str]]:
        with self.engine.connect() as conn:
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

    def scope_for(self, groups: Iterable[str] | None) -> Scope:
        """What a caller in ``groups`` may read; ``None`` groups: staff, who read everything."""
        if groups is None:
            return Scope()
        mine = {EVERYONE, *groups}
        return Scope(denied=frozenset(c for c, g in self.rules().items() if not mine & set(g)))
