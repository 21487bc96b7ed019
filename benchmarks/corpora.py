"""A question set's documents, ingested once into a temporary index, for the benchmarks.

Chunk embeddings are cached across runs in ``$TMPDIR/assistant-bench-cache/embeddings``, so only
the first run embeds a corpus.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from assistant.retrieval import HybridRetriever
from evaluation.importers import LoadedSet
from ingest.pipeline import ingest
from kb.settings import load_settings
from kb.store import KnowledgeBase

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "eval-data"
EMBED_CACHE = Path(tempfile.gettempdir()) / "assistant-bench-cache" / "rerank-embeddings"


@contextlib.contextmanager
def ingested(loaded: LoadedSet, corpus_dir: Path | None = None) -> Iterator[tuple[HybridRetriever, object]]:
    """(retriever, embeddings) over a temporary index of ``corpus_dir`` or the set's own documents."""
    with tempfile.TemporaryDirectory(prefix="assistant-bench-", ignore_cleanup_errors=True) as tmp:
        if corpus_dir is None:
            corpus_dir = Path(tmp) / "corpus"
            loaded.write_documents(corpus_dir)
        settings = load_settings(_env_file=None, data_dir=Path(tmp) / "data", corpus_dir=corpus_dir)
        settings.data_dir.mkdir(parents=True)
        EMBED_CACHE.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / "embedding-cache").symlink_to(EMBED_CACHE, target_is_directory=True)
        store = KnowledgeBase(settings)
        try:
            report = ingest(None, settings, store)
            print(f"  ingested {report.summary()}", flush=True)
            yield HybridRetriever(store, settings), store.embeddings
        finally:
            store.close()
