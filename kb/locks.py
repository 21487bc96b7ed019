"""Locks between processes that write the same index: a file lock beside the embedded store,
PostgreSQL advisory locks for the shared one (ingests of one collection, creating tables)."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from kb.settings import ConfigError


class NotAcquired(Exception):
    """A lock stayed held by another writer past the wait (raised before the locked body runs)."""


@contextlib.contextmanager
def file_lock(path: Path, wait: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), timeout=wait)
    try:
        lock.acquire()
    except Timeout:
        raise NotAcquired(str(path)) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def advisory_lock(engine: sa.Engine, name: str, wait: float) -> Iterator[None]:
    """A PostgreSQL session advisory lock on ``name``, polled until ``wait`` seconds pass."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    deadline = time.monotonic() + wait
    with engine.connect() as conn:
        while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise NotAcquired(name)
            time.sleep(0.2)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


@contextlib.contextmanager
def schema_lock(engine: sa.Engine, wait: float = 60.0) -> Iterator[None]:
    """Tables created by one process at a time: on PostgreSQL two processes running CREATE TABLE
    IF NOT EXISTS at once can both try to create it (a duplicate key in pg_type), so starting
    two app or ingest processes together on a fresh database failed. SQLite needs nothing."""
    if engine.dialect.name != "postgresql":
        yield
        return
    try:
        with advisory_lock(engine, "kb-schema", wait):
            yield
    except NotAcquired:
        raise ConfigError(f"another process held the schema lock for {wait:.0f} s") from None


def create_all(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """``metadata.create_all`` under :func:`schema_lock`: another process may be creating them too."""
    with schema_lock(engine):
        metadata.create_all(engine)
