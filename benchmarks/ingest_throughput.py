"""Ingest throughput on the Paul Graham essays (212 files) into a temporary data dir.

    python benchmarks/ingest_throughput.py [--limit N] [--essays DIR]

Prints: raw embedding throughput of the model alone on the same chunks (chunks/s), end-to-end
ingest throughput (chunks/s) and their ratio, peak RSS, and the time of a second, unchanged
re-ingest (absolute and as a share of the first). Targets: ratio >= 0.9, re-ingest <= 1%.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import kb  # noqa: E402,F401  (telemetry off)
from ingest.chunking import chunk_document, make_splitter  # noqa: E402
from ingest.loaders import load_file  # noqa: E402
from ingest.pipeline import ingest  # noqa: E402
from kb.embeddings import MiniLMEmbeddings  # noqa: E402
from kb.settings import load_settings  # noqa: E402

ESSAYS = REPO.parent / "shared" / "eval-data" / "paul_graham_essays" / "paul_graham_essays"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--essays", type=Path, default=ESSAYS)
    ap.add_argument("--limit", type=int, default=0, help="only the first N essays (0 = all)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        files = sorted(args.essays.glob("*.txt"))[: args.limit or None]
        for f in files:
            shutil.copy(f, corpus / f.name)
        settings = load_settings(_env_file=None, data_dir=Path(tmp) / "data", corpus_dir=corpus)

        # The same chunks the pipeline will make, embedded by the model alone.
        splitter = make_splitter(settings)
        texts = [
            c.page_content
            for f in sorted(corpus.iterdir())
            for c in chunk_document(
                load_file(f, 10**9), source=f.name, file_hash="", ingested_at="", splitter=splitter
            )
        ]
        model = MiniLMEmbeddings(batch_size=settings.embedding_batch_size)
        model.embed_array(texts[:8])  # warm-up
        t0 = time.perf_counter()
        model.embed_array(texts)
        raw_s = time.perf_counter() - t0
        raw_rate = len(texts) / raw_s

        t0 = time.perf_counter()
        first = ingest(None, settings)
        first_s = time.perf_counter() - t0
        chunks = sum(f.chunks for f in first.files)
        e2e_rate = chunks / first_s

        t0 = time.perf_counter()
        second = ingest(None, settings)
        second_s = time.perf_counter() - t0
        assert second.totals["unchanged"] == len(files), second.summary()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"files                      {len(files)}")
    print(f"chunks                     {chunks} (model alone embedded {len(texts)})")
    print(f"raw embedding              {raw_rate:.1f} chunks/s ({raw_s:.1f} s)")
    print(f"end-to-end ingest          {e2e_rate:.1f} chunks/s ({first_s:.1f} s)")
    print(f"ratio end-to-end / raw     {e2e_rate / raw_rate:.2f}   (target >= 0.9)")
    print(
        f"unchanged re-ingest        {second_s:.2f} s = {100 * second_s / first_s:.2f}% of first (target <= 1%)"
    )
    print(f"peak RSS                   {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
