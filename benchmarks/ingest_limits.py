"""Ingesting one large or hostile file: wall time, peak memory and the outcome, default settings.

    python -m benchmarks.ingest_limits [--cases text-6mb,pdf-2000-pages,...] [--out DIR]

Each case writes one generated file into a fresh corpus and ingests it in a fresh subprocess
with its own temporary data dir (no embedding cache), as ``python -m ingest`` would:

- ``text-6mb``: 6 MB of varied plain prose (the Paul Graham essays, sentences reshuffled per
  copy so that no chunk repeats and every one is embedded);
- ``pdf-2000-pages``: a 2,000-page PDF of essay text, about 1,200 characters a page;
- ``docx-bomb``: a 1.5 MB DOCX whose document.xml inflates to 1.5 GB of zeros;
- ``pdf-99000-pages``: the tester's 99,000-page PDF (one line a page).

The child reports its peak RSS (``ru_maxrss``) after opening the knowledge base (model loaded)
and at the end, the ingest's wall time and the file's outcome. Prints a table and writes
``ingest_limits.json`` under ``--out`` (default ``test-output/benchmarks``). Target: every peak
under 1 GB; the refused files refused by name within seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ESSAYS = REPO.parent / "shared" / "eval-data" / "paul_graham_essays" / "paul_graham_essays"


def _essay_paragraphs() -> list[str]:
    paragraphs = []
    for path in sorted(ESSAYS.glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        paragraphs += [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if len(p.split()) > 8]
    if not paragraphs:
        raise SystemExit(f"no essays found in {ESSAYS}")
    return paragraphs


def _varied(paragraphs: list[str], copy: int) -> list[str]:
    """The essays again with each paragraph's sentences in another order: new chunks, real prose."""
    rng = random.Random(copy)
    out = []
    for p in paragraphs:
        sentences = re.split(r"(?<=[.!?])\s+", p)
        if copy:
            rng.shuffle(sentences)
        out.append(" ".join(sentences))
    return out


def make_text(path: Path, size: int = 6_000_000) -> None:
    paragraphs, parts, total, copy = _essay_paragraphs(), [], 0, 0
    while total < size:
        for p in _varied(paragraphs, copy):
            parts.append(p)
            total += len(p) + 2
            if total >= size:
                break
        copy += 1
    path.write_text("\n\n".join(parts), encoding="utf-8")


def _pdf_bytes(pages: list[str]) -> bytes:
    sys.path.insert(0, str(REPO))
    from tests._helpers_files import pdf_bytes

    return pdf_bytes(pages)


def make_pdf(path: Path, pages: int = 2000, chars: int = 1200) -> None:
    words = " ".join(_essay_paragraphs()).encode("cp1252", "replace").decode("cp1252").split()
    texts, at = [], 0
    for _ in range(pages):
        page = []
        while sum(len(w) + 1 for w in page) < chars:
            page.append(words[at % len(words)])
            at += 1
        texts.append("\n".join(textwrap.wrap(" ".join(page), 90)))
    path.write_bytes(_pdf_bytes(texts))


def make_huge_pdf(path: Path) -> None:
    path.write_bytes(_pdf_bytes([f"Page {n} of the archive." for n in range(1, 99_001)]))


def make_bomb(path: Path) -> None:
    sys.path.insert(0, str(REPO))
    from tests._helpers_files import write_docx_bomb

    write_docx_bomb(path, 1_500_000_000)


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "text-6mb": ("essays.txt", make_text),
    "pdf-2000-pages": ("manual.pdf", make_pdf),
    "docx-bomb": ("bomb.docx", make_bomb),
    "pdf-99000-pages": ("archive.pdf", make_huge_pdf),
}


def child(corpus: Path, data: Path) -> None:
    """Runs in the subprocess: ingest the corpus, print one JSON line."""
    sys.path.insert(0, str(REPO))
    import kb  # noqa: F401  (telemetry off)
    from ingest.pipeline import ingest
    from kb import KnowledgeBase, load_settings

    settings = load_settings(_env_file=None, data_dir=data, corpus_dir=corpus)
    store = KnowledgeBase(settings)
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = ingest(None, settings, store)
    [outcome] = report.files
    print(
        json.dumps(
            {
                "status": outcome.status,
                "reason": outcome.reason,
                "chunks": outcome.chunks,
                "ingest_s": round(report.wall_s, 2),
                "base_rss_mb": round(base_mb),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "indexed": store.count_chunks(),
            }
        )
    )


def run_case(name: str) -> dict:
    filename, make = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        path = corpus / filename
        make(path)
        size = path.stat().st_size
        started = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.ingest_limits",
                "--child",
                str(corpus),
                str(Path(tmp) / "data"),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name}: child failed\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"case": name, "file_mb": round(size / 1e6, 2), "process_s": round(wall, 1), **result}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    ap.add_argument("--out", type=Path, default=REPO / "test-output" / "benchmarks")
    ap.add_argument("--child", nargs=2, type=Path, metavar=("CORPUS", "DATA"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    rows = []
    for name in args.cases.split(","):
        rows.append(run_case(name))
        r = rows[-1]
        print(f"{name}: {r['status']} in {r['ingest_s']} s, peak {r['peak_rss_mb']} MB", file=sys.stderr)

    print(
        f"{'case':<16} {'file MB':>8} {'chunks':>7} {'ingest s':>9} {'process s':>10} "
        f"{'base MB':>8} {'peak MB':>8}  outcome"
    )
    for r in rows:
        outcome = r["status"] + (f": {r['reason']}" if r["reason"] else "")
        print(
            f"{r['case']:<16} {r['file_mb']:>8} {r['chunks']:>7} {r['ingest_s']:>9} {r['process_s']:>10} "
            f"{r['base_rss_mb']:>8} {r['peak_rss_mb']:>8}  {outcome}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest_limits.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out / 'ingest_limits.json'}")


if __name__ == "__main__":
    main()
