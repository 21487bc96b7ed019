"""OCR end to end with Debian's Tesseract (``scripts/test.sh`` installs it): scanned PDFs page by
page, mixed PDFs, PNG/JPEG/TIFF files, refused and broken images, OCR switched off, and the
engine missing. Pages are rendered with Pillow (its bundled font), with noise and a slight
rotation, as a scanner would give them."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from _helpers_app import app_env
from _helpers_files import pdf_bytes
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, NumberObject

from assistant.retrieval import HybridRetriever
from ingest.loaders import Limits, LoadError, SkipFile, load_file
from ingest.pipeline import ingest
from kb import load_settings

REPO = Path(__file__).resolve().parent.parent
LIMIT = 50_000_000
OTTERS = ["The otter survey of 2023 counted", "fourteen otters in the Odense river."]
BUDGET = ["The survey budget was 900 euros,", "paid by the Funen nature fund."]
INSTALL = "apt-get install tesseract-ocr tesseract-ocr-eng"


def scan(lines: list[str], *, dpi: int = 200, seed: int = 1) -> Image.Image:
    """A letter-size page at ``dpi`` with ``lines`` in a 13-point font, rotated 0.8 degrees,
    lightly blurred, with Gaussian noise: what a cheap scanner gives."""
    width, height = int(8.5 * dpi), int(11 * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=round(13 * dpi / 72))
    for n, line in enumerate(lines):
        draw.text((dpi, dpi + n * round(20 * dpi / 72)), line, font=font, fill=0)
    page = page.rotate(0.8, resample=Image.Resampling.BICUBIC, fillcolor=255).filter(
        ImageFilter.GaussianBlur(0.6)
    )
    noise = np.random.default_rng(seed).normal(0, 18, (height, width))
    return Image.fromarray(np.clip(np.asarray(page, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def write_scanned_pdf(path: Path, pages: list[list[str]], dpi: int = 200) -> Path:
    """An image-only PDF (Pillow's PDF writer: one JPEG per page, no text layer)."""
    images = [scan(lines, dpi=dpi, seed=n) for n, lines in enumerate(pages)]
    images[0].save(path, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return path


def write_mixed_pdf(path: Path, tmp_path: Path) -> Path:
    """Page 1 typed, page 2 scanned, page 3 typed."""
    scanned = write_scanned_pdf(tmp_path / "page-2.pdf", [OTTERS])
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(pdf_bytes(["Typed first page about the river."]))))
    writer.append(PdfReader(scanned))
    writer.append(PdfReader(io.BytesIO(pdf_bytes(["Typed last page: the report ends."]))))
    writer.write(path)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` grey pixels and whose data is a few
    bytes: refusing it by size proves nothing was decoded (decoding would fail as truncated)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def words(text: str) -> str:
    return " ".join(text.split())


# --- scanned and mixed PDFs ----------------------------------------------------------------------


def test_scanned_pdf_is_read_page_by_page_and_cited_as_ocr(make_settings):
    settings = make_settings()
    write_scanned_pdf(settings.corpus_dir / "survey-scan.pdf", [OTTERS, BUDGET])
    report = ingest(None, settings)
    outcome = report.outcome("survey-scan.pdf")
    assert outcome.status == "added", outcome.reason

    from kb import KnowledgeBase

    retriever = HybridRetriever(KnowledgeBase(settings))
    [otters, *_] = retriever.retrieve("How many otters did the survey count in the Odense river?")
    assert otters.source == "survey-scan.pdf" and otters.page == 1 and otters.ocr
    assert "fourteen otters" in words(otters.text)
    [budget, *_] = retriever.retrieve("What was the survey budget?")
    assert budget.page == 2 and "900 euros" in words(budget.text)
    assert budget.location.endswith(", p. 2 (OCR)")


def test_mixed_pdf_keeps_its_text_pages_and_reads_only_the_scanned_one(tmp_path):
    document = load_file(write_mixed_pdf(tmp_path / "mixed.pdf", tmp_path), LIMIT)
    assert [(s.page, s.ocr) for s in document.sections] == [(1, False), (2, True), (3, False)]
    assert document.sections[0].text == "Typed first page about the river."
    assert document.sections[2].text == "Typed last page: the report ends."
    assert "fourteen otters in the Odense river" in words(document.sections[1].text)
    assert document.title == "Typed first page about the river."


def test_scanned_page_image_too_large_is_refused_from_its_dictionary(tmp_path):
    path = write_scanned_pdf(tmp_path / "bomb.pdf", [OTTERS])
    writer = PdfWriter(clone_from=PdfReader(path))
    xobjects = writer.pages[0]["/Resources"]["/XObject"]
    for name in xobjects:
        image = xobjects[name].get_object()
        image[NameObject("/Width")], image[NameObject("/Height")] = NumberObject(20_000), NumberObject(20_000)
    writer.write(path)
    with pytest.raises(
        SkipFile,
        match=r"^page 1: image too large: 20,000 x 20,000 pixels \(400 MP\) > 50 MP limit \(a decompression bomb\?\)$",
    ):
        load_file(path, LIMIT)


# --- image files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg"])
def test_image_file_is_one_ocr_section(tmp_path, suffix):
    path = tmp_path / f"notice{suffix}"
    image = scan(OTTERS + BUDGET)
    if suffix == ".png":
        image.save(path)
    else:
        image.save(path, "JPEG", quality=50)
    document = load_file(path, LIMIT)
    [section] = document.sections
    assert section.ocr and section.page is None
    assert "fourteen otters in the Odense river" in words(section.text)
    assert "900 euros" in section.text
    assert document.title == "The otter survey of 2023 counted"


def test_multi_page_tiff_gives_numbered_pages(tmp_path):
    path = tmp_path / "fax.tiff"
    first, second = scan(OTTERS), scan(BUDGET, seed=2)
    first.save(path, save_all=True, append_images=[second], compression="tiff_deflate", dpi=(200, 200))
    document = load_file(path, LIMIT)
    assert [(s.page, s.ocr) for s in document.sections] == [(1, True), (2, True)]
    assert "fourteen otters" in words(document.sections[0].text)
    assert "900 euros" in document.sections[1].text


def test_images_too_large_are_refused_before_decoding(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(8000, 8000))
    with pytest.raises(
        SkipFile,
        match=r"^image too large: 8,000 x 8,000 pixels \(64 MP\) > 50 MP limit \(a decompression bomb\?\)$",
    ):
        load_file(big, LIMIT)
    huge = tmp_path / "huge.png"  # past Pillow's own bomb check too
    huge.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(SkipFile, match=r"^image too large: over the 50 MP limit \(a decompression bomb\?\)$"):
        load_file(huge, LIMIT)
    small_enough = Limits(max_image_pixels=70_000_000)  # then it is decoded, and found truncated
    with pytest.raises(LoadError, match=r"^corrupt image: "):
        load_file(big, LIMIT, small_enough)


def test_bad_and_refused_images_are_reported_by_name_and_the_others_go_on(make_settings):
    settings = make_settings()
    corpus = settings.corpus_dir
    scan(OTTERS).save(corpus / "good.png")
    good = (corpus / "good.png").read_bytes()
    (corpus / "cut.png").write_bytes(good[: len(good) // 3])
    (corpus / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG" * 10)
    (corpus / "text.jpg").write_text("plain text named .jpg")
    (corpus / "big.png").write_bytes(png_header_only(8000, 8000))
    report = ingest(None, settings)
    got = {f.source: (f.status, f.reason) for f in report.files}
    assert got["good.png"] == ("added", "")
    assert got["cut.png"][0] == "failed" and got["cut.png"][1].startswith("corrupt image: ")
    assert got["photo.jpg"][0] == "failed" and got["photo.jpg"][1].startswith("corrupt image: ")
    assert got["text.jpg"] == ("failed", "not a PNG, JPEG or TIFF image (or a damaged one)")
    assert got["big.png"] == (
        "skipped",
        "image too large: 8,000 x 8,000 pixels (64 MP) > 50 MP limit (a decompression bomb?)",
    )


# --- switched off, or not installed ----------------------------------------------------------------


def test_ocr_off_skips_scanned_pdfs_with_the_old_reason_and_images_by_setting(
    make_settings, monkeypatch, tmp_path
):
    monkeypatch.setenv("ASSISTANT_OCR", "false")
    assert load_settings(_env_file=None).ocr is False
    settings = make_settings(ocr=False)
    write_scanned_pdf(settings.corpus_dir / "scan.pdf", [OTTERS])
    scan(OTTERS).save(settings.corpus_dir / "notice.png")
    write_mixed_pdf(settings.corpus_dir / "mixed.pdf", tmp_path)
    report = ingest(None, settings)
    assert report.outcome("scan.pdf").reason == "no extractable text (scanned PDF? OCR it first)"
    assert (
        report.outcome("notice.png").reason
        == "an image: its text is read by OCR, which is off (ASSISTANT_OCR=false)"
    )
    mixed = report.outcome("mixed.pdf")
    assert mixed.status == "added", "its text pages are indexed as before"
    assert [
        s.page for s in load_file(settings.corpus_dir / "mixed.pdf", LIMIT, Limits(ocr=False)).sections
    ] == [1, 3]


def test_missing_tesseract_is_a_reason_naming_the_package_not_a_crash(make_settings, tmp_path):
    """A real run of ``python -m ingest`` whose PATH has no ``tesseract``."""
    settings = make_settings()
    write_scanned_pdf(settings.corpus_dir / "scan.pdf", [OTTERS])
    write_mixed_pdf(settings.corpus_dir / "mixed.pdf", tmp_path)
    scan(OTTERS).save(settings.corpus_dir / "notice.png")
    (settings.corpus_dir / "notes.txt").write_text("The otter survey team met on Monday.")
    env = app_env(
        ASSISTANT_DATA_DIR=str(settings.data_dir),
        ASSISTANT_CORPUS_DIR=str(settings.corpus_dir),
        PATH=str(tmp_path / "no-programs-here"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = {f["source"]: (f["status"], f["reason"]) for f in json.loads(done.stdout)["files"]}
    missing = f"Tesseract is not installed: {INSTALL}"
    assert got["scan.pdf"] == ("skipped", f"page 1 has no text layer and needs OCR, but {missing}")
    assert got["mixed.pdf"] == ("skipped", f"page 2 has no text layer and needs OCR, but {missing}")
    assert got["notice.png"] == ("skipped", f"an image needs OCR, but {missing}")
    assert got["notes.txt"][0] == "added"
