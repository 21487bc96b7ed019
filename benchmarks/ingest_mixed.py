"""Ingesting a mixed folder (text and scanned PDFs, DOCX, PPTX, XLSX, e-mail): throughput and
the share of the time each stage takes.

    python -m benchmarks.ingest_mixed [--scale N] [--json PATH] [--keep DIR]

The folder is generated in a temporary directory (``--keep DIR``: there, a new or empty folder, and kept) from real prose,
paragraphs of the Paul Graham essays in the shared eval data (else the shipped corpus), each
file other paragraphs. At ``--scale 1`` (``--scale N``: N times as many of each):

- 3 text PDFs of 4 pages (a Helvetica text layer, written by ``tests/_helpers_files.pdf_bytes``);
- 2 scanned PDFs of 2 pages, image only: A4 pages drawn as ``benchmarks/ocr.py`` draws them
  (DejaVu Serif 11 pt, 200 dpi), turned 0.6 degrees, blurred, with noise, saved by Pillow as
  one JPEG per page (as ``scripts/make_scanned_page.py``);
- 3 DOCX (python-docx: title, headings, paragraphs, a table);
- 3 PPTX of 8 slides (python-pptx: title slide, then title, bullets and speaker notes);
- 2 XLSX of 2 sheets of 60 rows (openpyxl: codes, names, countries, amounts, dates, a sentence);
- 6 EML (stdlib ``email``): plain or HTML bodies; one with a DOCX attachment, one with a text
  PDF, and the HTML ones with a signature logo shown inline (not OCR'd, ``ingest/mail.py``).

Two passes over the folder, each into a fresh temporary data dir (no embedding cache), after a
warm-up of the model, the tokenizer and Tesseract, with the settings' defaults:

1. **Stage pass**: the pipeline's public functions called one stage at a time, with its limits:
   - *parse*: per file ``ingest.loaders.read_file``, its SHA-256 and ``ingest.loaders.parse``
     (every section read), less the OCR time inside it;
   - *OCR*: the time inside ``ingest.ocr.pdf_page_text`` and ``ingest.ocr.image_text`` (outermost
     call: decoding the page image, the blur, Tesseract), measured by wrapping those two
     functions with a clock; they run unchanged;
   - *chunk*: ``ingest.chunking.chunk_document`` with ``make_splitter(settings)``, per file;
   - *embed*: the chunk texts in the pipeline's windows (``embed_window_chunks``), each window's
     distinct texts not embedded before, through the model ``make_embeddings(settings)`` (the
     object a ``KnowledgeBase`` holds as ``kb.embeddings``);
   - *write*: the same windows through ``langchain_core.indexing.index`` as the pipeline calls it,
     into a ``KnowledgeBase`` whose model hands back the vectors just computed (so: embedding
     cache, Chroma, keyword index, record manager), then each file's registry row
     (``kb.put_document``) and the version bump. It leaves out the pipeline's per-file clean-up
     queries (old keys, orphans), which a first ingest runs on empty stores.
2. **End to end**: ``ingest.pipeline.ingest(None, settings, kb=kb)`` on the folder, with the same
   OCR clock and the model wrapped in a clock (``KnowledgeBase(settings, embeddings=...)``), so
   its OCR and embed times are that run's own. Parsing and chunking interleave in its stream and
   cannot be told apart from outside: the stage pass's figures stand for them, and *write* is
   the rest: end-to-end time - parse - OCR - chunk - embed (so it also holds the pipeline's own
   work: walking the folder, per-file clean-up, the report).

Opening the ``KnowledgeBase`` (Chroma client, SQL engine) is timed on its own in both passes and
is in neither total. Prints per file type: files, pages (PDF pages, slides, sheets), words
extracted, chunks, and the parse, OCR and chunk seconds; then each stage's seconds and share in
both passes; then wall time, files/s and chunks/s of both, and peak RSS. ``--json PATH`` writes
it all, with every file's row.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import random
import re
import resource
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from langchain_core.embeddings import Embeddings  # noqa: E402

import kb  # noqa: E402,F401  (telemetry off)
from benchmarks.ocr import add_noise, documents, font_path, render_page  # noqa: E402

SCANNED_DPI = 200
TYPES = ("pdf (text)", "pdf (scanned)", "docx", "pptx", "xlsx", "eml")
PER_SCALE = {"pdf (text)": 3, "pdf (scanned)": 2, "docx": 3, "pptx": 3, "xlsx": 2, "eml": 6}
COUNTRIES = ["Spain", "Germany", "Bulgaria", "Denmark", "France", "Italy", "Poland", "Portugal"]


# --- the folder ----------------------------------------------------------------------------------


class Prose:
    """Paragraphs of real prose, handed out in turn (so no two files share text)."""

    def __init__(self) -> None:
        self.paragraphs = [p for essay in documents() for p in essay]
        random.Random(12).shuffle(self.paragraphs)
        self.next = 0

    def take(self, n: int) -> list[str]:
        out = [self.paragraphs[(self.next + i) % len(self.paragraphs)] for i in range(n)]
        self.next += n
        return out

    def sentences(self, n: int) -> list[str]:
        found: list[str] = []
        while len(found) < n:
            found += [s for s in re.split(r"(?<=[.!?])\s+", self.take(1)[0]) if len(s.split()) >= 5]
        return found[:n]

    def title(self) -> str:
        words = re.sub(r"[^\w\s'-]", "", self.take(1)[0]).split()[:6]
        return " ".join(words).capitalize()


@dataclass
class MadeFile:
    path: Path
    kind: str
    pages: int | None = None  # PDF pages, slides, sheets
    ocr_pages: int = 0


def _latin(text: str) -> str:
    """``text`` as the PDF's WinAnsi font can show it."""
    return text.encode("cp1252", "replace").decode("cp1252")


def text_pdf_bytes(prose: Prose, pages: int) -> bytes:
    from tests._helpers_files import pdf_bytes

    texts = []
    for _ in range(pages):
        lines: list[str] = []
        while len(lines) < 42:
            lines += [*textwrap.wrap(_latin(prose.take(1)[0]), 80), ""]
        texts.append("\n".join(lines[:46]).strip())
    return pdf_bytes(texts)


def make_text_pdf(path: Path, prose: Prose, pages: int = 4) -> MadeFile:
    path.write_bytes(text_pdf_bytes(prose, pages))
    return MadeFile(path, "pdf (text)", pages)


def make_scanned_pdf(path: Path, prose: Prose, pages: int = 2) -> MadeFile:
    from PIL import Image, ImageFilter

    images = []
    for n in range(pages):
        page, _ = render_page(prose.take(12), SCANNED_DPI, font_path("DejaVuSerif.ttf"), 11)
        page = page.rotate(0.6 if n % 2 else -0.6, resample=Image.Resampling.BICUBIC, fillcolor=255)
        images.append(add_noise(page.filter(ImageFilter.GaussianBlur(0.5)), 12))
    images[0].save(path, "PDF", resolution=SCANNED_DPI, save_all=True, append_images=images[1:], quality=60)
    return MadeFile(path, "pdf (scanned)", pages, ocr_pages=pages)


def docx_bytes(prose: Prose, sections: int = 5) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(prose.title(), 0)
    for n in range(sections):
        document.add_heading(f"{n + 1}. {prose.title()}", 1)
        for paragraph in prose.take(4):
            document.add_paragraph(paragraph)
        if n == 1:
            table = document.add_table(rows=5, cols=3)
            for r, row in enumerate([["Partner", "Country", "Budget (EUR)"]] + [[]] * 4):
                cells = row or [f"Partner {r}", COUNTRIES[r], f"{r * 41_500:,}"]
                for c, text in enumerate(cells):
                    table.cell(r, c).text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_docx(path: Path, prose: Prose) -> MadeFile:
    path.write_bytes(docx_bytes(prose))
    return MadeFile(path, "docx")


def make_pptx(path: Path, prose: Prose, slides: int = 8) -> MadeFile:
    import pptx

    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = prose.title()
    first.placeholders[1].text = "Project review, June 2024"
    for _ in range(slides - 1):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = prose.title()
        slide.placeholders[1].text = "\n".join(prose.sentences(4))
        slide.notes_slide.notes_text_frame.text = prose.take(1)[0]
    deck.save(str(path))
    return MadeFile(path, "pptx", slides)


def make_xlsx(path: Path, prose: Prose, sheets: int = 2, rows: int = 60) -> MadeFile:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    rng = random.Random(path.name)
    for s in range(sheets):
        sheet = book.create_sheet(["Partners", "Actions", "Risks", "Budget"][s % 4])
        sheet.append(["Code", "Name", "Country", "Amount (EUR)", "Start", "Summary"])
        for r, sentence in enumerate(prose.sentences(rows)):
            sheet.append(
                [
                    f"{sheet.title[:3].upper()}-{r + 1:03d}",
                    prose.title(),
                    rng.choice(COUNTRIES),
                    rng.randrange(5_000, 900_000),
                    datetime(2024, 1 + r % 12, 1 + r % 28),
                    sentence,
                ]
            )
    book.save(path)
    return MadeFile(path, "xlsx", sheets)


@functools.cache
def logo_png() -> bytes:
    """A signature logo: a few KB of PNG with a word on it."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (360, 80), "white")
    ImageDraw.Draw(image).text((12, 14), "NORDLYS", font=ImageFont.load_default(size=44), fill="navy")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def make_eml(path: Path, prose: Prose, number: int) -> MadeFile:
    message = EmailMessage()
    message["Subject"] = prose.title()
    message["From"] = "Karen Lindegaard <karen@example.org>"
    message["To"] = "partners@example.org"
    message["Date"] = f"Mon, {1 + number % 28:02d} Jul 2024 09:30:00 +0200"
    body = prose.take(4)
    if number % 2:  # an HTML mail with a signature logo shown inline
        html = "".join(f"<p>{p}</p>" for p in body) + '<p>Karen<br><img src="cid:logo@nordlys"></p>'
        message.set_content("\n\n".join(body))
        message.add_alternative(html, subtype="html")
        message.get_payload()[1].add_related(
            logo_png(), maintype="image", subtype="png", cid="<logo@nordlys>", filename="logo.png"
        )
    else:
        message.set_content("\n\n".join(body) + "\n\nKaren")
    if number % 6 == 2:
        message.add_attachment(
            docx_bytes(prose, sections=2),
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename="notes.docx",
        )
    if number % 6 == 4:
        message.add_attachment(
            text_pdf_bytes(prose, 1), maintype="application", subtype="pdf", filename="minutes.pdf"
        )
    path.write_bytes(message.as_bytes())
    return MadeFile(path, "eml")


def make_folder(folder: Path, scale: int) -> list[MadeFile]:
    prose = Prose()
    made = []
    for copy in range(scale):
        for n in range(PER_SCALE["pdf (text)"]):
            made.append(make_text_pdf(folder / f"pdf/report-{copy}-{n}.pdf", prose))
        for n in range(PER_SCALE["pdf (scanned)"]):
            made.append(make_scanned_pdf(folder / f"scans/scan-{copy}-{n}.pdf", prose))
        for n in range(PER_SCALE["docx"]):
            made.append(make_docx(folder / f"docs/plan-{copy}-{n}.docx", prose))
        for n in range(PER_SCALE["pptx"]):
            made.append(make_pptx(folder / f"decks/deck-{copy}-{n}.pptx", prose))
        for n in range(PER_SCALE["xlsx"]):
            made.append(make_xlsx(folder / f"sheets/book-{copy}-{n}.xlsx", prose))
        for n in range(PER_SCALE["eml"]):
            made.append(make_eml(folder / f"mail/mail-{copy}-{n}.eml", prose, n))
    return made


# --- clocks --------------------------------------------------------------------------------------


class OcrClock:
    """Seconds spent inside ``ingest.ocr``'s page readers while ``installed``; nested calls (a PDF
    page's images) count once."""

    NAMES = ("pdf_page_text", "image_text")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0

    def _timed(self, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            if self._depth:
                return function(*args, **kwargs)
            self._depth += 1
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
                self._depth -= 1

        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[OcrClock]:
        from ingest import ocr

        originals = {name: getattr(ocr, name) for name in self.NAMES}
        for name, function in originals.items():
            setattr(ocr, name, self._timed(function))
        try:
            yield self
        finally:
            for name, function in originals.items():
                setattr(ocr, name, function)


class TimedEmbeddings(Embeddings):
    """The model, with the seconds and texts of its ``embed_documents`` calls counted."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.texts = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        started = time.perf_counter()
        try:
            return self.inner.embed_documents(texts)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


class Precomputed(Embeddings):
    """Vectors already computed, by text: lets the write stage run without the model."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]


# --- the passes ----------------------------------------------------------------------------------


@dataclass
class FileRow:
    source: str
    kind: str
    bytes: int
    pages: int | None
    ocr_pages: int
    sections: int = 0
    words: int = 0
    chunks: int = 0
    parse_s: float = 0.0
    ocr_s: float = 0.0
    chunk_s: float = 0.0


@dataclass
class StagePass:
    rows: list[FileRow] = field(default_factory=list)
    open_s: float = 0.0
    embed_s: float = 0.0
    embedded: int = 0
    write_s: float = 0.0

    def stages(self) -> dict[str, float]:
        return {
            "parse": sum(r.parse_s for r in self.rows),
            "OCR": sum(r.ocr_s for r in self.rows),
            "chunk": sum(r.chunk_s for r in self.rows),
            "embed": self.embed_s,
            "write": self.write_s,
        }


def settings_for(corpus: Path, data: Path):
    from kb.settings import load_settings

    return load_settings(_env_file=None, data_dir=data, corpus_dir=corpus)


def limits_for(settings):
    from ingest.loaders import Limits

    return Limits(
        max_pdf_pages=settings.max_pdf_pages,
        max_unzipped_bytes=int(settings.max_unzipped_mb * 1_000_000),
        seconds=settings.max_file_seconds,
        ocr=settings.ocr,
    )


def stage_pass(corpus: Path, data: Path, made: list[MadeFile]) -> StagePass:
    from langchain_core.indexing import index

    from ingest.chunking import chunk_document, make_splitter
    from ingest.loaders import parse, read_file
    from kb.embeddings import make_embeddings
    from kb.store import DocumentRecord, KnowledgeBase

    settings = settings_for(corpus, data)
    splitter = make_splitter(settings)
    max_bytes = int(settings.max_file_mb * 1_000_000)
    result = StagePass()
    chunks, records = [], []
    clock = OcrClock()
    with clock.installed():
        for f in made:
            source = f.path.relative_to(corpus).as_posix()
            row = FileRow(source, f.kind, f.path.stat().st_size, f.pages, f.ocr_pages)
            ocr_before = clock.seconds
            started = time.perf_counter()
            raw = read_file(f.path, max_bytes)
            sha = hashlib.sha256(raw).hexdigest()
            document = parse(f.path, raw, limits_for(settings))
            row.ocr_s = clock.seconds - ocr_before
            row.parse_s = time.perf_counter() - started - row.ocr_s
            row.sections = len(document.sections)
            row.words = len(document.text.split())
            now = datetime.now(UTC)
            started = time.perf_counter()
            pieces = chunk_document(
                document,
                source=source,
                file_hash=sha,
                ingested_at=now.isoformat(timespec="seconds"),
                splitter=splitter,
            )
            row.chunk_s = time.perf_counter() - started
            row.chunks = len(pieces)
            chunks += pieces
            records.append(
                DocumentRecord(
                    source=source,
                    root="corpus",
                    title=document.title,
                    sha256=sha,
                    chunks=len(pieces),
                    size_bytes=len(raw),
                    ingested_at=now.timestamp(),
                )
            )
            result.rows.append(row)

    size = settings.embed_window_chunks
    windows = [chunks[i : i + size] for i in range(0, len(chunks), size)]
    model = make_embeddings(settings)  # what KnowledgeBase(settings).embeddings is
    vectors: dict[str, list[float]] = {}
    started = time.perf_counter()
    for window in windows:
        new = [t for t in dict.fromkeys(c.page_content for c in window) if t not in vectors]
        vectors.update(zip(new, model.embed_documents(new)))
    result.embed_s = time.perf_counter() - started
    result.embedded = len(vectors)

    started = time.perf_counter()
    store = KnowledgeBase(settings, embeddings=Precomputed(vectors))
    result.open_s = time.perf_counter() - started
    started = time.perf_counter()
    for window in windows:
        index(
            window,
            store.record_manager,
            store.vectorstore,
            cleanup=None,
            source_id_key="source",
            key_encoder="sha256",
            batch_size=min(len(window), store.max_batch),
        )
    for record in records:
        store.put_document(record)
    store.bump_version()
    result.write_s = time.perf_counter() - started
    assert store.count_chunks() == len(chunks), (store.count_chunks(), len(chunks))
    store.close()
    return result


def end_to_end(corpus: Path, data: Path) -> dict:
    from ingest.pipeline import ingest
    from kb.embeddings import make_embeddings
    from kb.store import KnowledgeBase

    settings = settings_for(corpus, data)
    model = TimedEmbeddings(make_embeddings(settings))
    started = time.perf_counter()
    store = KnowledgeBase(settings, embeddings=model)
    open_s = time.perf_counter() - started
    clock = OcrClock()
    with clock.installed():
        started = time.perf_counter()
        report = ingest(None, settings, kb=store)
        wall_s = time.perf_counter() - started
    store.close()
    return {
        "open_s": open_s,
        "wall_s": wall_s,
        "ocr_s": clock.seconds,
        "ocr_calls": clock.calls,
        "embed_s": model.seconds,
        "embedded": model.texts,
        "files": len(report.files),
        "totals": {k: v for k, v in report.totals.items() if v},
        "chunks": sum(f.chunks for f in report.files),
        "problems": [
            (f.source, f.status, f.reason) for f in report.files if f.status in ("skipped", "failed")
        ],
    }


def warm_up() -> None:
    """Load the model, the tokenizer and Tesseract's data once, before anything is timed."""
    from PIL import Image, ImageDraw, ImageFont

    from ingest import ocr
    from kb.embeddings import count_tokens, make_embeddings

    make_embeddings(settings_for(REPO / "corpus", Path(tempfile.gettempdir()))).embed_documents(
        ["warm up the model"] * 8
    )
    count_tokens("warm up the tokenizer")
    if reason := ocr.available():
        raise SystemExit(f"OCR is not available: {reason}")
    image = Image.new("L", (400, 80), 255)
    ImageDraw.Draw(image).text((10, 10), "Warm up", font=ImageFont.load_default(size=40), fill=0)
    ocr.image_text(image)


# --- report --------------------------------------------------------------------------------------


def per_type(rows: list[FileRow]) -> dict[str, dict]:
    out = {}
    for kind in [*TYPES, "all"]:
        these = [r for r in rows if kind in ("all", r.kind)]
        pages = [r.pages for r in these if r.pages is not None]
        out[kind] = {
            "files": len(these),
            "pages": sum(pages) if pages else None,
            "ocr_pages": sum(r.ocr_pages for r in these),
            "bytes": sum(r.bytes for r in these),
            "words": sum(r.words for r in these),
            "chunks": sum(r.chunks for r in these),
            "parse_s": sum(r.parse_s for r in these),
            "ocr_s": sum(r.ocr_s for r in these),
            "chunk_s": sum(r.chunk_s for r in these),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, default=1, help="N times as many files of each kind (default 1)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--keep", type=Path, help="build the folder here (new or empty) and keep it")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.keep or Path(tmp) / "corpus"
        if args.keep and args.keep.exists() and any(args.keep.iterdir()):
            raise SystemExit(f"--keep {args.keep}: not empty; name a new or empty folder")
        for sub in ("pdf", "scans", "docs", "decks", "sheets", "mail"):
            (corpus / sub).mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        made = make_folder(corpus, args.scale)
        build_s = time.perf_counter() - started
        warm_up()
        staged = stage_pass(corpus, Path(tmp) / "data-stages", made)
        e2e = end_to_end(corpus, Path(tmp) / "data-e2e")

    types = per_type(staged.rows)
    stages = staged.stages()
    e2e_stages = {
        "parse": stages["parse"],
        "OCR": e2e["ocr_s"],
        "chunk": stages["chunk"],
        "embed": e2e["embed_s"],
    }
    e2e_stages["write"] = e2e["wall_s"] - sum(e2e_stages.values())
    stage_total = sum(stages.values())
    files, chunks = types["all"]["files"], types["all"]["chunks"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"mixed folder: {files} files, {types['all']['bytes'] / 1e6:.1f} MB (scale {args.scale}, built in {build_s:.1f} s)"
    )
    print(
        f"{'type':<14} {'files':>5} {'pages':>5} {'OCR p.':>6} {'words':>7} {'chunks':>6} "
        f"{'parse s':>8} {'OCR s':>7} {'chunk s':>8}"
    )
    for kind, t in types.items():
        pages = "-" if t["pages"] is None else t["pages"]
        print(
            f"{kind:<14} {t['files']:>5} {pages:>5} {t['ocr_pages']:>6} {t['words']:>7} {t['chunks']:>6} "
            f"{t['parse_s']:>8.2f} {t['ocr_s']:>7.2f} {t['chunk_s']:>8.2f}"
        )
    print("  (pages: PDF pages, slides, sheets)")
    print()
    print(f"{'stage':<8} {'stage pass s':>12} {'share':>6}   {'end to end s':>12} {'share':>6}")
    for name in stages:
        print(
            f"{name:<8} {stages[name]:>12.2f} {100 * stages[name] / stage_total:>5.1f}%   "
            f"{e2e_stages[name]:>12.2f} {100 * e2e_stages[name] / e2e['wall_s']:>5.1f}%"
        )
    print(f"{'total':<8} {stage_total:>12.2f} {'':>6}   {e2e['wall_s']:>12.2f}")
    print(
        "  (end to end: OCR and embed timed in that run; parse and chunk from the stage pass; write = the rest)"
    )
    print()
    print(
        f"stage pass      {stage_total:6.1f} s  {files / stage_total:5.2f} files/s  {chunks / stage_total:5.1f} chunks/s"
        f"  ({chunks} chunks, {staged.embedded} embedded; opening the stores {staged.open_s:.2f} s)"
    )
    print(
        f"end-to-end      {e2e['wall_s']:6.1f} s  {e2e['files'] / e2e['wall_s']:5.2f} files/s  "
        f"{e2e['chunks'] / e2e['wall_s']:5.1f} chunks/s  ({e2e['chunks']} chunks, {e2e['embedded']} embedded; "
        f"opening the stores {e2e['open_s']:.2f} s; {e2e['totals']})"
    )
    print(f"embedding       {staged.embedded / staged.embed_s:5.1f} chunks/s alone (stage pass)")
    print(f"peak RSS        {peak_mb:.0f} MB")
    for problem in e2e["problems"]:
        print("not indexed:", *problem, sep="  ")
    if e2e["chunks"] != chunks:
        print(f"warning: the pipeline made {e2e['chunks']} chunks, the stage pass {chunks}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "scale": args.scale,
                    "types": types,
                    "stage_pass": {"stages_s": stages, "total_s": stage_total, "open_s": staged.open_s},
                    "end_to_end": {**e2e, "stages_s": e2e_stages},
                    "peak_rss_mb": peak_mb,
                    "files": [vars(r) for r in staged.rows],
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
