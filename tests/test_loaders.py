"""Loaders read real files of every supported format and give short reasons for the ones they can't."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from _helpers_files import (
    BOILERPLATE,
    pdf_bytes,
    write_corrupt_pdf,
    write_docx,
    write_docx_bomb,
    write_html,
    write_markdown,
    write_pdf,
    write_text,
)

from ingest.loaders import (
    SECTION_CHARS,
    SUPPORTED_SUFFIXES,
    Limits,
    LoadedDocument,
    LoadError,
    SkipFile,
    load_file,
    open_document,
)

REPO = Path(__file__).resolve().parent.parent
LIMIT = 1_000_000


def load(path: Path) -> LoadedDocument:
    document = load_file(path, max_bytes=LIMIT)
    for section in document.sections:  # every loader must place its sections in the full text
        assert document.text[section.offset : section.offset + len(section.text)] == section.text
    return document


# --- PDF -----------------------------------------------------------------------------------------


def test_pdf_one_section_per_page_with_page_numbers(tmp_path):
    path = write_pdf(
        tmp_path / "report.pdf",
        ["Annual report\nThe inno-\nvation budget   grew.", "", "Third page about staff."],
        title="Annual Report 2024",
    )
    document = load(path)
    assert document.title == "Annual Report 2024"
    assert [s.page for s in document.sections] == [1, 3]  # the blank page 2 gives no section
    assert document.sections[0].text == "Annual report\nThe innovation budget grew."
    assert document.sections[1].text == "Third page about staff."
    assert document.sections[1].offset == len(document.sections[0].text) + 2


def test_pdf_title_falls_back_to_first_line(tmp_path):
    document = load(write_pdf(tmp_path / "x.pdf", ["Travel policy\nBook trains, not planes."]))
    assert document.title == "Travel policy"


def test_pdf_encrypted_with_password_is_a_load_error(tmp_path):
    path = write_pdf(tmp_path / "secret.pdf", ["Salaries"], password="hunter2")
    with pytest.raises(LoadError, match=r"^encrypted PDF: a password is needed$"):
        load_file(path, LIMIT)


def test_pdf_encrypted_with_empty_password_opens(tmp_path):
    """Many PDFs are 'encrypted' only to restrict printing; they open with an empty password."""
    document = load(write_pdf(tmp_path / "restricted.pdf", ["Printing is restricted."], password=""))
    assert document.sections[0].text == "Printing is restricted."


def test_pdf_corrupt_is_a_load_error(tmp_path):
    with pytest.raises(LoadError, match=r"^corrupt PDF: \S"):
        load_file(write_corrupt_pdf(tmp_path / "cut.pdf"), LIMIT)


def test_pdf_without_text_is_skipped_as_scanned(tmp_path):
    """Blank pages, no images: nothing for OCR either (scanned pages: tests/test_ocr.py)."""
    path = write_pdf(tmp_path / "scan.pdf", ["", ""])
    with pytest.raises(SkipFile, match=r"^no extractable text \(scanned PDF\? OCR it first\)$"):
        load_file(path, LIMIT, Limits(ocr=False))
    with pytest.raises(SkipFile, match=r"^no text found, even by OCR$"):
        load_file(path, LIMIT)


def test_pdf_page_count_is_read_from_the_page_tree_before_any_page(tmp_path):
    """The tree claims 99,000 pages but holds two: refusing by the claim proves no page was built."""
    path = tmp_path / "huge.pdf"
    path.write_bytes(pdf_bytes(["one", "two"], count=99_000))
    with pytest.raises(SkipFile, match=r"^too many pages: 99,000 > 5,000 limit \(ASSISTANT_MAX_PDF_PAGES\)$"):
        load_file(path, LIMIT)
    assert [s.page for s in load_file(path, LIMIT, Limits(max_pdf_pages=99_000)).sections] == [1, 2]


def test_pdf_page_tree_larger_than_its_count_is_still_refused(tmp_path):
    path = tmp_path / "liar.pdf"
    path.write_bytes(pdf_bytes(["a", "b", "c", "d"], count=1))
    with pytest.raises(SkipFile, match=r"^too many pages: 4 > 3 limit"):
        load_file(path, LIMIT, Limits(max_pdf_pages=3))
    assert len(load_file(path, LIMIT, Limits(max_pdf_pages=4)).sections) == 4


def test_pdf_pages_stream_and_an_unreadable_page_fails_by_number(tmp_path):
    path = write_pdf(
        tmp_path / "long.pdf", ["First page.", "Second page.", "Third.", "Fourth."], unreadable=[3]
    )
    stream = open_document(path, path.read_bytes())
    assert stream.title == "First page."
    first = next(stream.sections)  # pages come one at a time: page 3 has not been read yet
    assert (first.page, first.text) == (1, "First page.")
    assert next(stream.sections).page == 2
    with pytest.raises(LoadError, match=r"^corrupt PDF: page 3: \S"):
        next(stream.sections)


def test_deadline_stops_reading_by_name(tmp_path):
    path = write_pdf(tmp_path / "slow.pdf", ["One.", "Two."])
    late = Limits(seconds=0.5, started=time.monotonic() - 1)
    with pytest.raises(
        LoadError, match=r"^took too long: over the 0.5 s limit \(ASSISTANT_MAX_FILE_SECONDS\)$"
    ):
        load_file(path, LIMIT, late)
    assert len(load_file(path, LIMIT, Limits(seconds=60)).sections) == 2


# --- DOCX ----------------------------------------------------------------------------------------


def test_docx_sections_at_headings_with_tables(tmp_path):
    path = write_docx(
        tmp_path / "handbook.docx",
        [
            (None, "Welcome to the handbook."),
            ("Holidays", "Staff get 25 days.\n\nAsk your manager."),
            ("Contacts", "Who to call:"),
        ],
        title="Staff Handbook",
        table=[["Name", "Role"], ["Ann Berg", "HR lead"]],
    )
    document = load(path)
    assert document.title == "Staff Handbook"
    assert [s.heading for s in document.sections] == [None, "Holidays", "Contacts"]
    assert document.sections[0].text == "Welcome to the handbook."
    assert document.sections[1].text == "Holidays\n\nStaff get 25 days.\n\nAsk your manager."
    assert document.sections[2].text == "Contacts\n\nWho to call:\n\nName | Role\nAnn Berg | HR lead"


def test_docx_title_falls_back_to_first_heading(tmp_path):
    document = load(write_docx(tmp_path / "x.docx", [("Expenses", "Keep receipts.")]))
    assert document.title == "Expenses"


def test_docx_corrupt_is_a_load_error(tmp_path):
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(LoadError, match=r"^corrupt DOCX: \S"):
        load_file(path, LIMIT)


def test_docx_zip_bomb_is_refused_from_declared_sizes(tmp_path):
    path = write_docx_bomb(tmp_path / "bomb.docx", 5_000_000)
    assert path.stat().st_size < 100_000
    limits = Limits(max_unzipped_bytes=2_000_000)
    with pytest.raises(
        SkipFile, match=r"^inflates too much: 5\.8 MB unzipped > 2 MB limit \(ASSISTANT_MAX_UNZIPPED_MB\)$"
    ):
        load_file(path, LIMIT, limits)
    assert load_file(path, LIMIT, Limits(max_unzipped_bytes=10_000_000)).sections[0].text.startswith("Tiny")


def test_docx_member_with_a_zip_bomb_ratio_is_refused_under_the_size_limit(tmp_path):
    path = write_docx_bomb(tmp_path / "bomb.docx", 12_000_000)  # 12 MB of zeros: about 1,000 to 1
    with pytest.raises(
        SkipFile, match=r"^inflates too much: word/document\.xml unzips [\d,]+ times its size"
    ):
        load_file(path, LIMIT)  # the default 200 MB limit


# --- Markdown ------------------------------------------------------------------------------------


def test_markdown_sections_keep_heading_text(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(
        "Intro before any heading.\n\n# Onboarding Guide\n\nFirst day.\n\n"
        "## Laptop ##\n\nCollect it   from IT.\n\n```sh\n# not a heading, a comment in code\n```\n\n"
        "### Badge\nAt reception.\n",
        encoding="utf-8",
    )
    document = load(path)
    assert document.title == "Onboarding Guide"
    assert [s.heading for s in document.sections] == [None, "Onboarding Guide", "Laptop", "Badge"]
    assert document.sections[0].text == "Intro before any heading."
    assert document.sections[2].text == (
        "Laptop\n\nCollect it from IT.\n\n```sh\n# not a heading, a comment in code\n```"
    )
    assert document.sections[3].text == "Badge\nAt reception."


def test_markdown_title_falls_back_to_file_name(tmp_path):
    document = load(write_markdown(tmp_path / "meeting-notes.md", [("Agenda", "Budget.")], level=2))
    assert document.title == "meeting-notes"
    assert document.sections[0].heading == "Agenda"


# --- HTML ----------------------------------------------------------------------------------------


def test_html_drops_page_furniture_and_splits_at_headings(tmp_path):
    path = write_html(
        tmp_path / "hours.html",
        [("Opening hours", "Monday to\n   Friday, 9-17."), ("Contact", "Call <b>reception</b>.")],
        title="Library",
    )
    document = load(path)
    assert BOILERPLATE not in document.text
    assert document.title == "Library"
    assert [s.heading for s in document.sections] == ["Opening hours", "Contact"]
    assert document.sections[0].text == "Opening hours\n\nMonday to Friday, 9-17."
    assert document.sections[1].text == "Contact\n\nCall reception."


def test_html_title_falls_back_to_h1_and_reads_tables(tmp_path):
    path = tmp_path / "rooms.htm"
    path.write_text(
        "<!doctype html><html><body><!-- internal note --><h1>Meeting rooms</h1>"
        "<table><tr><th>Room</th><th>Seats</th></tr><tr><td>Oak</td><td>8</td></tr></table>"
        "</body></html>",
        encoding="utf-8",
    )
    document = load(path)
    assert document.title == "Meeting rooms"
    assert document.text == "Meeting rooms\n\nRoom | Seats\nOak | 8"


@pytest.mark.parametrize(
    ("head", "encoding", "words"),
    [("", "latin-1", "Le café est très bon."), ('<meta charset="windows-1251">', "cp1251", "Привет, мир.")],
    ids=["undeclared-latin-1", "declared-cp1251"],
)
def test_html_encodings(tmp_path, head, encoding, words):
    path = tmp_path / "page.html"
    path.write_bytes(f"<html><head>{head}</head><body><p>{words}</p></body></html>".encode(encoding))
    assert load(path).text == words


# --- plain text ----------------------------------------------------------------------------------


def test_long_text_is_cut_at_paragraphs_into_bounded_sections(tmp_path):
    paragraphs = [f"Paragraph {i} about water pumps." + " More words here." * (i % 20) for i in range(2000)]
    text = "\n\n".join(paragraphs)
    document = load(write_text(tmp_path / "long.txt", text))  # load() checks every offset
    assert len(document.sections) >= len(text) // SECTION_CHARS + 1
    assert all(len(s.text) <= SECTION_CHARS for s in document.sections)
    assert document.text == text, "cuts at paragraph breaks lose nothing"
    assert all(s.text.startswith("Paragraph ") for s in document.sections)


def test_latin1_text_decodes(tmp_path):
    path = write_text(tmp_path / "menu.txt", "Le café est très bon.\nCrème brûlée à 5 €.", encoding="cp1252")
    path2 = write_text(tmp_path / "short.txt", "café", encoding="latin-1")
    assert load(path).text == "Le café est très bon.\nCrème brûlée à 5 €."
    assert load(path2).text == "café"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_unicode_text_decodes(tmp_path, encoding):
    path = write_text(tmp_path / "notes.rst", "Zürich   office\r\n\r\n\r\n\r\nÆrø", encoding=encoding)
    document = load(path)
    assert document.title == "Zürich office"  # a short first line reads as the headline
    assert document.text == "Zürich office\n\nÆrø"


@pytest.mark.parametrize(
    "content",
    [b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)), bytes([1, 2, 3, 4, 5, 6, 7, 8, 65, 66]) * 50],
    ids=["nul-bytes", "control-characters"],
)
def test_binary_named_txt_is_a_load_error(tmp_path, content):
    path = tmp_path / "program.txt"
    path.write_bytes(content)
    with pytest.raises(LoadError, match=r"^binary content, not text$"):
        load_file(path, LIMIT)


def test_csv_rows_read_as_facts(tmp_path):
    """More on CSV, spreadsheets and the other formats in test_formats.py."""
    document = load(write_text(tmp_path / "budget.csv", "item,amount\nrent,1200\n"))
    assert document.text == "item: rent; amount: 1200"
    assert document.sections[0].place == "row 2"


# --- policy skips and file-system failures ------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n  "], ids=["empty", "whitespace"])
def test_empty_file_is_skipped(tmp_path, content):
    path = tmp_path / "blank.md"
    path.write_bytes(content)
    with pytest.raises(SkipFile, match=r"^empty file$"):
        load_file(path, LIMIT)


def test_too_large_is_skipped_before_reading(tmp_path):
    """A sparse 61.2 MB file of NUL bytes: if it were read it would fail as binary, not be skipped."""
    path = tmp_path / "huge.txt"
    with open(path, "wb") as fh:
        fh.truncate(61_200_000)
    with pytest.raises(SkipFile, match=r"^too large: 61\.2 MB > 50 MB limit \(ASSISTANT_MAX_FILE_MB\)$"):
        load_file(path, max_bytes=50_000_000)


def test_too_large_with_a_small_limit(tmp_path):
    path = write_text(tmp_path / "notes.txt", "x" * 1500)
    with pytest.raises(SkipFile, match=r"^too large: 1\.5 KB > 100 bytes limit \(ASSISTANT_MAX_FILE_MB\)$"):
        load_file(path, max_bytes=100)


@pytest.mark.parametrize("name", ["archive.xyz", "clip.MP4", "Makefile"])
def test_unsupported_suffix_is_skipped(tmp_path, name):
    path = tmp_path / name
    path.write_text("anything")
    suffix = Path(name).suffix.lower()
    expected = f"unsupported file type {suffix}" if suffix else "unsupported file type (no extension)"
    with pytest.raises(SkipFile) as info:
        load_file(path, LIMIT)
    assert str(info.value) == expected


def test_suffix_match_is_case_insensitive(tmp_path):
    assert load(write_text(tmp_path / "README.TXT", "Hello")).text == "Hello"
    assert {".pdf", ".docx", ".md", ".html", ".txt"} <= SUPPORTED_SUFFIXES


def test_symlink_loop_is_a_load_error(tmp_path):
    (tmp_path / "a.txt").symlink_to(tmp_path / "b.txt")
    (tmp_path / "b.txt").symlink_to(tmp_path / "a.txt")
    with pytest.raises(LoadError, match=r"^symlink loop$"):
        load_file(tmp_path / "a.txt", LIMIT)


def test_broken_link_and_missing_file_are_load_errors(tmp_path):
    (tmp_path / "link.txt").symlink_to(tmp_path / "gone.txt")
    with pytest.raises(LoadError, match=r"^broken link$"):
        load_file(tmp_path / "link.txt", LIMIT)
    with pytest.raises(LoadError, match=r"^file not found$"):
        load_file(tmp_path / "never.txt", LIMIT)


def test_directory_and_fifo_are_not_regular_files(tmp_path):
    (tmp_path / "folder.txt").mkdir()
    os.mkfifo(tmp_path / "pipe.txt")  # opening a FIFO to read would block forever
    for name in ("folder.txt", "pipe.txt"):
        with pytest.raises(LoadError, match=r"^not a regular file$"):
            load_file(tmp_path / name, LIMIT)


def test_unreadable_file_is_a_load_error():
    """Root reads any file whatever its mode, so the loader runs in a child process that drops to
    'nobody' first when the tests run as root. The folder is outside tmp_path because pytest's temp
    root is private to its owner (0700), and 'nobody' must reach the file to be refused by it."""
    nobody = pwd.getpwnam("nobody")
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o711)
        path = write_text(Path(folder) / "secret.txt", "salaries")
        path.chmod(0)
        child = (
            "import os, sys\n"
            "from ingest.loaders import LoadError, load_file\n"
            "if os.geteuid() == 0:\n"
            f"    os.setgid({nobody.pw_gid}); os.setuid({nobody.pw_uid})\n"
            "try:\n"
            "    load_file(sys.argv[1], 1000)\n"
            "except LoadError as exc:\n"
            "    print(exc)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", child, str(path)], cwd=REPO, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cannot read: permission denied"


def test_text_title_is_a_headline_first_line_or_the_file_name(tmp_path):
    headline = write_text(tmp_path / "a.txt", "Cluster results announced\nThe six partners met in June.")
    sentence = write_text(tmp_path / "b.txt", "The six partners met in June.\nThey agreed a programme.")
    assert load(headline).title == "Cluster results announced"
    assert load(sentence).title == "b"
