"""Shared fixtures: every test gets its own data dir and corpus dir and a clean environment.

Helpers for specific areas live in their own test modules; keep this file small.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import _helpers_servers as servers
import pytest

import kb  # noqa: F401  (switches library telemetry off before anything else loads)
from assistant.models import Passage
from kb.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


def _eval_data() -> Path:
    """The shared development data: ``$EVAL_DATA_DIR``, else ``shared/eval-data`` beside this
    checkout, else beside the local repository it was cloned from (a clone in a temp folder)."""
    if os.environ.get("EVAL_DATA_DIR"):
        return Path(os.environ["EVAL_DATA_DIR"])
    beside = [REPO.parent / "shared" / "eval-data"]
    origin = subprocess.run(
        ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if origin and Path(origin).is_dir():
        beside.append(Path(origin).resolve().parent / "shared" / "eval-data")
    return next((p for p in beside if p.is_dir()), beside[0])


EVAL_DATA = _eval_data()
OUTPUT_DIR = REPO / "test-output"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No developer key, base URL or ASSISTANT_* setting leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ASSISTANT_") or name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_unbounded_chroma_reads(monkeypatch):
    """Every ``Collection.get`` in a test names its ids or a limit: an unbounded read fails on a
    real index past ~32k chunks (too many SQL variables), so code must page (``KnowledgeBase.pages``)."""
    from chromadb.api.models.Collection import Collection

    real_get = Collection.get

    def get(self, ids=None, *args, limit=None, **kwargs):
        if ids is None and limit is None:
            raise AssertionError("unbounded Collection.get(): page through it with KnowledgeBase.pages()")
        return real_get(self, ids, *args, limit=limit, **kwargs)

    monkeypatch.setattr(Collection, "get", get)


@pytest.fixture
def make_settings(tmp_path):
    """Settings pointing at this test's temp dirs; keyword overrides as in ``load_settings``."""

    def make(**overrides) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "data")
        overrides.setdefault("corpus_dir", tmp_path / "corpus")
        Path(overrides["corpus_dir"]).mkdir(parents=True, exist_ok=True)
        return load_settings(_env_file=None, **overrides)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    """One real PostgreSQL server per test process (Debian's package, ``initdb`` + ``pg_ctl``)."""
    with servers.postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin) -> str:
    """A fresh database on that server for this test."""
    return servers.create_database(postgres_admin)


@pytest.fixture
def chroma_port(tmp_path) -> Iterator[int]:
    """A real ``chroma run`` server with its own data folder; stopped after the test."""
    with servers.chroma_server(tmp_path / "chroma-server") as port:
        yield port


@pytest.fixture
def shipped_corpus(tmp_path) -> Path:
    """A copy of the shipped corpus/ that a test may change."""
    dest = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", dest, dirs_exist_ok=True)
    return dest


@pytest.fixture
def output_dir(request) -> Path:
    """A folder kept after the run (screenshots, reports): test-output/<test name>/."""
    path = OUTPUT_DIR / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def passage(n: int, text: str, score: float = 0.6, source: str = "handbook.md") -> Passage:
    """A retrieved passage as the answerers receive it (dense score = fused score here)."""
    return Passage(n=n, id=f"c{n}", text=text, source=source, score=score, dense_score=score)
