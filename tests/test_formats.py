"""The formats beyond PDF/DOCX/Markdown/HTML/text, on real files the tests build: PowerPoint,
Excel and CSV (rows as facts), e-mail with attachments, OpenDocument and EPUB; their bad input;
one run through the real pipeline and retrieval; and the shipped corpus's slide deck and
spreadsheet, answered from and cited by slide and by sheet and rows."""

from __future__ import annotations

import mailbox
import subprocess
import sys
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

import openpyxl
import pptx
import pytest
from _helpers_files import write_docx, write_pdf, write_text
from pptx.util import Inches

from assistant.core import Assistant
from ingest.loaders import (
    NO_TEXT,
    SUPPORTED_SUFFIXES,
    Limits,
    LoadedDocument,
    LoadError,
    SkipFile,
    load_file,
)
from ingest.pipeline import ingest
from ingest.tables import ROWS_CHARS, ROWS_MAX
from tests.conftest import REPO

LIMIT = 5_000_000
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)  # the header of an encrypted OOXML file


def load(path: Path, limits: Limits | None = None) -> LoadedDocument:
    document = load_file(path, LIMIT, limits)
    for section in document.sections:  # every loader must place its sections in the full text
        assert document.text[section.offset : section.offset + len(section.text)] == section.text
    return document


def places(document: LoadedDocument) -> list[str | None]:
    return [s.place for s in document.sections]


# --- builders ------------------------------------------------------------------------------------


def write_deck(path: Path, title: str | None = None) -> Path:
    """Three slides: a title slide; title + body + table + grouped text box + notes; no title."""
    deck = pptx.Presentation()
    if title is not None:
        deck.core_properties.title = title
    first = deck.slides.add_slide(deck.slide_layouts[0])  # Title Slide
    first.shapes.title.text = "Cluster results"
    first.placeholders[1].text = "Spinoff Bulgaria, June 2024"
    second = deck.slides.add_slide(deck.slide_layouts[1])  # Title and Content
    second.shapes.title.text = "Engagement"
    second.placeholders[1].text = "31 meetings with opinion leaders\n79 co-creation participants"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    for r, row in enumerate([["Partner", "Country"], ["BIOCAT", "Spain"]]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    group = second.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(5), Inches(5), Inches(2), Inches(1)).text_frame.text = "Grouped caption"
    second.notes_slide.notes_text_frame.text = "Mention the joint survey."
    third = deck.slides.add_slide(deck.slide_layouts[6])  # Blank
    third.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text_frame.text = "Thank you"
    deck.save(str(path))
    return path


def write_book(path: Path, sheets: dict[str, list[list[object]]], title: str | None = None) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    if title is not None:
        book.properties.title = title
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    sheet.cell(r, c, value)
    book.save(path)
    return path


def with_zero_member(path: Path, name: str, size: int) -> Path:
    """``path`` (a zip package) with one more member of ``size`` zeros: a zip bomb's shape."""
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        package.writestr(name, b"0" * size)
    return path


def truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:300])  # the local header and some data; no central directory
    return path


def write_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        for name, text in members.items():
            package.writestr(name, text)
    return path


def mail(subject: str, *, plain: str | None = None, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Karen Lindegaard <karen@example.org>"
    message["To"] = "partners@example.org"
    message["Date"] = "Mon, 17 Jun 2024 09:30:00 +0200"
    if plain is not None:
        message.set_content(plain)
    if html is not None:
        if plain is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    return message


def attach(message: EmailMessage, name: str, data: bytes) -> None:
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)


# --- PowerPoint ----------------------------------------------------------------------------------


def test_pptx_one_section_per_slide_with_title_body_table_group_and_notes(tmp_path):
    document = load(write_deck(tmp_path / "results.pptx", title="INNAXE results"))
    assert document.title == "INNAXE results"
    assert places(document) == ["slide 1", "slide 2", "slide 3"]
    assert [s.heading for s in document.sections] == ["Cluster results", "Engagement", None]
    assert document.sections[0].text == "Cluster results\n\nSpinoff Bulgaria, June 2024"
    assert document.sections[1].text == (
        "Engagement\n\n31 meetings with opinion leaders\n79 co-creation participants\n\n"
        "Partner | Country\nBIOCAT | Spain\n\nGrouped caption\n\nNotes: Mention the joint survey."
    )
    assert document.sections[2].text == "Thank you"


def test_pptx_title_falls_back_to_first_slide_title_then_file_name(tmp_path):
    assert load(write_deck(tmp_path / "deck.pptx")).title == "Cluster results"
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])
    slide.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text_frame.text = "Only a box"
    deck.core_properties.title = "PowerPoint Presentation"  # what PowerPoint writes by default
    deck.save(str(tmp_path / "untitled-deck.pptx"))
    assert load(tmp_path / "untitled-deck.pptx").title == "untitled-deck"


def test_pptx_without_text_is_skipped(tmp_path):
    deck = pptx.Presentation()
    deck.slides.add_slide(deck.slide_layouts[6])
    deck.save(str(tmp_path / "blank.pptx"))
    with pytest.raises(SkipFile, match=f"^{NO_TEXT}$"):
        load_file(tmp_path / "blank.pptx", LIMIT)


# --- Excel and CSV -------------------------------------------------------------------------------

PARTNERS = [
    ["Partner", "Country", None, None],
    ["BIOCAT", "Spain", None, "founding member"],
    [None, None, None, None],  # an empty row: skipped, numbers stay Excel's
    ["BioRN", "Germany", None, None],
]


def test_xlsx_rows_read_as_facts_placed_by_sheet_and_row(tmp_path):
    path = write_book(
        tmp_path / "partners.xlsx",
        {"Partners": PARTNERS, "Empty": [], "Header only": [["Name", "Role"]]},
        title="INNAXE partners",
    )
    document = load(path)
    assert document.title == "INNAXE partners"
    assert len(document.sections) == 1, "an empty sheet and a header alone give no section"
    section = document.sections[0]
    assert section.text == (
        "Partner: BIOCAT; Country: Spain; Column D: founding member\nPartner: BioRN; Country: Germany"
    )
    assert (section.place, section.heading) == ("sheet Partners, rows 2-4", "Partners")


def test_xlsx_values_read_as_people_read_them(tmp_path):
    import datetime as dt

    rows = [
        [None],
        ["Event", "Date", "Participants", "Cost"],
        ["Conference", dt.datetime(2024, 6, 12), 79, 1.5],
    ]
    document = load(write_book(tmp_path / "events.xlsx", {"Events": rows}))
    assert document.title == "events"
    assert document.text == "Event: Conference; Date: 2024-06-12; Participants: 79; Cost: 1.5"
    assert places(document) == ["sheet Events, row 3"], "the header may start below row 1"


def test_big_sheet_is_cut_into_bounded_sections_of_consecutive_rows(tmp_path):
    path = tmp_path / "big.xlsx"
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Survey")
    sheet.append(["Respondent", "Role", "Answer"])
    for i in range(2, 5002):
        sheet.append([f"R{i}", "SME" if i % 3 else "researcher", "agree " * (i % 40)])
    book.save(path)
    document = load(path)
    sections = document.sections
    assert len(sections) > 5000 // ROWS_MAX
    assert all(s.heading == "Survey" for s in sections)
    rows = [line for s in sections for line in s.text.split("\n")]
    assert len(rows) == 5000 and rows[0].startswith("Respondent: R2; Role: SME")
    assert rows[-1].startswith("Respondent: R5001;")
    expected_first = 2
    for s in sections:  # consecutive, bounded, and the place names the rows each one holds
        lines = s.text.split("\n")
        assert len(lines) <= ROWS_MAX and len(s.text) <= ROWS_CHARS
        last = expected_first + len(lines) - 1
        assert s.place == f"sheet Survey, rows {expected_first}-{last}"
        assert lines[0].startswith(f"Respondent: R{expected_first};")
        expected_first = last + 1


def test_reading_a_big_sheet_stops_at_the_deadline(tmp_path):
    path = write_book(tmp_path / "slow.xlsx", {"S": [["A"], *([["x"]] * 200)]})
    late = Limits(seconds=0.5, started=time.monotonic() - 1)
    with pytest.raises(LoadError, match=r"^took too long"):
        load_file(path, LIMIT, late)


def test_empty_workbook_is_skipped(tmp_path):
    with pytest.raises(SkipFile, match=f"^{NO_TEXT}$"):
        load_file(write_book(tmp_path / "empty.xlsx", {"Sheet1": [], "Sheet2": [["Header"]]}), LIMIT)


def test_csv_rows_as_facts_with_a_sniffed_delimiter_and_decoding(tmp_path):
    text = (
        'Partner;Country;Note\r\nBIOCAT;Spain;"Barcelona;\r\nCatalonia"\r\nMedicen Paris Region;France;\r\n'
    )
    document = load(write_text(tmp_path / "partners.csv", text, encoding="cp1252"))
    assert document.title == "partners"
    assert document.text == (
        "Partner: BIOCAT; Country: Spain; Note: Barcelona; Catalonia\n"
        "Partner: Medicen Paris Region; Country: France"
    )
    assert places(document) == ["rows 2-3"]  # a record per row, even one spanning two lines
    assert document.sections[0].heading is None
    tabs = load(write_text(tmp_path / "tabs.csv", "Name\tRole\nAnn Berg\tHR lead\n"))
    assert tabs.text == "Name: Ann Berg; Role: HR lead"
    accents = load(write_text(tmp_path / "cafe.csv", "Ville,Café\nLyon,très bon\n", encoding="cp1252"))
    assert accents.text == "Ville: Lyon; Café: très bon"


def test_csv_header_only_is_skipped_and_binary_refused(tmp_path):
    with pytest.raises(SkipFile, match=f"^{NO_TEXT}$"):
        load_file(write_text(tmp_path / "header.csv", "a,b,c\n"), LIMIT)
    (tmp_path / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(LoadError, match=r"^binary content, not text$"):
        load_file(tmp_path / "image.csv", LIMIT)


# --- bad input common to the zip-based formats ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "app"), [("deck.pptx", "PowerPoint"), ("book.xlsx", "Excel")], ids=["pptx", "xlsx"]
)
def test_encrypted_ooxml_names_the_fix(tmp_path, name, app):
    (tmp_path / name).write_bytes(OLE)
    suffix = name.split(".")[1]
    with pytest.raises(
        LoadError, match=rf"^encrypted or old-format {app} file: save it as \.{suffix} without a password$"
    ):
        load_file(tmp_path / name, LIMIT)


def _odt(path: Path) -> Path:
    return write_zip(path, {"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": ODT})


@pytest.mark.parametrize(
    ("kind", "build"),
    [
        ("PPTX", lambda p: write_deck(p / "deck.pptx")),
        ("XLSX", lambda p: write_book(p / "book.xlsx", {"Partners": PARTNERS})),
        ("ODT", lambda p: _odt(p / "doc.odt")),
    ],
    ids=["pptx", "xlsx", "odt"],
)
def test_corrupt_and_bomb_packages_are_refused(tmp_path, kind, build):
    assert load(build(tmp_path)).sections, "the intact file reads"
    with pytest.raises(LoadError, match=rf"^corrupt {kind}: \S"):
        load_file(truncated(build(tmp_path)), LIMIT)
    bomb = with_zero_member(build(tmp_path), "bomb.bin", 12_000_000)  # about 1,000 to 1
    with pytest.raises(SkipFile, match=r"^inflates too much: bomb\.bin unzips [\d,]+ times its size"):
        load_file(bomb, LIMIT)


# --- e-mail --------------------------------------------------------------------------------------


def test_eml_headers_html_body_and_attachments(tmp_path):
    message = mail(
        "Joint Programme draft",
        html="<html><head><style>p {color: red}</style></head><body><p>Dear partners,</p>"
        "<p>the <b>Joint Programme</b> covers nine topics.</p><script>track()</script></body></html>",
    )
    report = write_docx(tmp_path / "r.docx", [("Topics", "Nine selected topics for five years.")])
    attach(message, "report.docx", report.read_bytes())
    attach(message, "budget.xyz", b"numbers")
    attach(message, "broken.docx", b"PK\x03\x04 not a zip")
    path = tmp_path / "draft.eml"
    path.write_bytes(message.as_bytes())

    document = load(path)
    assert document.title == "Joint Programme draft"
    body = document.sections[0]
    assert body.place is None and body.heading is None
    assert body.text.startswith(
        "Subject: Joint Programme draft\nFrom: Karen Lindegaard <karen@example.org>\n"
        "To: partners@example.org\nDate: Mon, 17 Jun 2024 09:30:00 +0200\n\n"
        "Dear partners,\n\nthe Joint Programme covers nine topics."
    )
    assert "color" not in body.text and "track" not in body.text
    assert "Attachment budget.xyz: not indexed (unsupported file type .xyz)" in body.text
    assert "Attachment broken.docx: not indexed (corrupt DOCX: " in body.text
    attached = document.sections[1:]
    assert [(s.place, s.heading, s.text) for s in attached] == [
        ("attachment report.docx", "Topics", "Topics\n\nNine selected topics for five years.")
    ]


def test_eml_prefers_the_plain_body_and_places_attachment_pages(tmp_path):
    message = mail("Minutes", plain="Plain minutes of the June meeting.", html="<p>HTML minutes</p>")
    pdf = write_pdf(tmp_path / "m.pdf", ["Agenda of the meeting.", "Actions agreed in Sofia."])
    message.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename="minutes.pdf")
    path = tmp_path / "minutes.eml"
    path.write_bytes(message.as_bytes())
    document = load(path)
    assert "Plain minutes of the June meeting." in document.sections[0].text
    assert "HTML minutes" not in document.text
    assert places(document)[1:] == ["attachment minutes.pdf, p. 1", "attachment minutes.pdf, p. 2"]
    assert document.sections[2].text == "Actions agreed in Sofia."


def test_mbox_one_section_per_message_with_attachments(tmp_path):
    box = mailbox.mbox(tmp_path / "project.mbox")
    box.add(mail("Kick-off", plain="From now on we meet monthly."))  # a body line starting "From "
    second = mail("Partner list", plain="The partners are attached.")
    attach(second, "partners.csv", b"Partner,Country\nBIOCAT,Spain\nBioRN,Germany\n")
    box.add(second)
    box.add(mail("Closing", html="<p>The project ends in June 2024.</p>"))
    box.close()

    document = load(tmp_path / "project.mbox")
    assert document.title == "project"
    assert places(document) == [
        "message 1",
        "message 2",
        "message 2, attachment partners.csv, rows 2-3",
        "message 3",
    ]
    assert [s.heading for s in document.sections] == ["Kick-off", "Partner list", None, "Closing"]
    assert ">From now on we meet monthly." in document.sections[0].text  # mbox escapes it; kept as is
    assert document.sections[2].text == "Partner: BIOCAT; Country: Spain\nPartner: BioRN; Country: Germany"
    assert document.sections[3].text.endswith("The project ends in June 2024.")


def test_mbox_with_an_unescaped_from_line_still_reads(tmp_path):
    """Some writers do not escape a body line starting "From ": no header follows it, so it
    does not start a message (the stdlib mailbox would cut the message in two there)."""
    text = (
        "From a@example.org Mon Jun 17 09:30:00 2024\nSubject: Agenda\nFrom: a@example.org\n\n"
        "First point.\nFrom the start we agreed.\n\n"
        "From b@example.org Mon Jun 17 10:00:00 2024\nSubject: Re: Agenda\nFrom: b@example.org\n\nAgreed.\n"
    )
    document = load(write_text(tmp_path / "raw.mbox", text))
    assert places(document) == ["message 1", "message 2"]
    assert document.sections[0].text == (
        "Subject: Agenda\nFrom: a@example.org\n\nFirst point.\nFrom the start we agreed."
    )
    assert document.sections[1].text == "Subject: Re: Agenda\nFrom: b@example.org\n\nAgreed."


def test_an_attached_message_is_read_with_its_own_attachments(tmp_path):
    inner = mail("Survey results", plain="91 responses to the joint survey.")
    attach(inner, "notes.txt", b"Survey notes\nMost answers came from SMEs.")
    outer = mail("Fwd: Survey results", plain="See the forwarded mail.")
    outer.add_attachment(inner)
    path = tmp_path / "fwd.eml"
    path.write_bytes(outer.as_bytes())
    document = load(path)
    assert places(document) == [
        None,
        "attachment message.eml",
        "attachment message.eml, attachment notes.txt",
    ]
    assert "91 responses to the joint survey." in document.sections[1].text
    assert document.sections[2].text == "Survey notes\nMost answers came from SMEs."


def test_not_a_mail_is_a_load_error(tmp_path):
    write_text(tmp_path / "x.eml", "\x01\x02 just some bytes, no headers at all\n\nbody")
    with pytest.raises(LoadError, match=r"^not an e-mail message"):
        load_file(tmp_path / "x.eml", LIMIT)
    write_text(tmp_path / "x.mbox", "Subject: a lone message\n\nno From line")
    with pytest.raises(LoadError, match=r'^not an mbox file: no "From " line starts a message$'):
        load_file(tmp_path / "x.mbox", LIMIT)


def png_of_text(text: str, size: tuple[int, int], *, noise: float = 0.0, points: int = 36) -> bytes:
    """A greyscale PNG with ``text`` drawn in Pillow's own font; Gaussian noise makes a scan (a
    PNG of hundreds of KB), none a flat logo (a few KB)."""
    import io

    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((20, 20), text, font=ImageFont.load_default(size=points), fill=0)
    if noise:
        pixels = np.asarray(image, dtype=np.float32) + np.random.default_rng(7).normal(
            0, noise, image.size[::-1]
        )
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_eml_inline_and_small_images_are_named_not_ocred_real_image_attachments_are(tmp_path, monkeypatch):
    """A signature logo (shown in the body by Content-ID) and a small icon cost an OCR run each
    for no text: they are only named. A scan attached as a file, and a big photo Apple Mail marks
    inline, are read by OCR."""
    from ingest import ocr

    read: list[tuple[int, int]] = []
    real = ocr.image_text
    monkeypatch.setattr(ocr, "image_text", lambda image, **kw: read.append(image.size) or real(image, **kw))
    logo = png_of_text("NORDLYS ENERGY", (420, 90))
    icon = png_of_text("i", (48, 48), points=30)
    scan = png_of_text("The survey counted fourteen otters.", (1000, 260), noise=30)
    photo = png_of_text("Whiteboard: budget of 900 euros.", (1200, 400), noise=30)
    assert len(logo) < 20_000 and len(icon) < 20_000 and len(scan) > 20_000 and len(photo) > 200_000

    message = mail("Survey photos", html='<p>Photos of the survey attached.</p><img src="cid:logo@nordlys">')
    message.add_related(logo, maintype="image", subtype="png", cid="<logo@nordlys>", filename="logo.png")
    message.add_attachment(icon, maintype="image", subtype="png", filename="icon.png")
    message.add_attachment(scan, maintype="image", subtype="png", filename="scan.png")
    message.add_attachment(
        photo, maintype="image", subtype="png", filename="IMG_0412.png", disposition="inline", cid="<p@x>"
    )
    path = tmp_path / "photos.eml"
    path.write_bytes(message.as_bytes())

    document = load(path)
    body = document.sections[0].text
    assert "Attachment logo.png: not indexed (inline image)" in body
    assert "Attachment icon.png: not indexed (small image, under 20 KB)" in body
    assert "NORDLYS" not in document.text
    assert places(document) == [None, "attachment scan.png", "attachment IMG_0412.png"]
    assert all(s.ocr for s in document.sections[1:])
    assert "fourteen otters" in " ".join(document.sections[1].text.split())
    assert "900 euros" in " ".join(document.sections[2].text.split())
    assert sorted(read) == [(1000, 260), (1200, 400)]  # the logo and the icon never reached Tesseract


# --- OpenDocument and EPUB -----------------------------------------------------------------------

_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"'
)
ODT = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-content {_ODF_NS}><office:body><office:text>
<text:sequence-decls/>
<text:p>Before any heading.</text:p>
<text:h text:outline-level="1">Results</text:h>
<text:p>Six<text:s/>partners met<text:tab/>in Sofia.<text:line-break/>June 2024.</text:p>
<text:tracked-changes><text:changed-region><text:deletion><text:p>DELETED</text:p></text:deletion></text:changed-region></text:tracked-changes>
<text:list><text:list-item><text:p>31 meetings</text:p></text:list-item></text:list>
<table:table><table:table-row><table:table-cell><text:p>Partner</text:p></table:table-cell>
<table:table-cell><text:p>Country</text:p></table:table-cell></table:table-row>
<table:table-row><table:table-cell><text:p>BioRN</text:p></table:table-cell>
<table:table-cell><text:p>Germany</text:p></table:table-cell></table:table-row></table:table>
</office:text></office:body></office:document-content>"""
META = """<?xml version="1.0" encoding="UTF-8"?><office:document-meta
 xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<office:meta><dc:title>INNAXE report</dc:title></office:meta></office:document-meta>"""


def test_odt_sections_at_headings_with_lists_tables_and_metadata_title(tmp_path):
    path = write_zip(tmp_path / "report.odt", {"content.xml": ODT, "meta.xml": META})
    document = load(path)
    assert document.title == "INNAXE report"
    assert [s.heading for s in document.sections] == [None, "Results"]
    assert document.sections[0].text == "Before any heading."
    assert document.sections[1].text == (
        "Results\n\nSix partners met in Sofia.\nJune 2024.\n\n31 meetings\n\nPartner | Country\nBioRN | Germany"
    )
    assert "DELETED" not in document.text


def test_odp_one_section_per_slide_with_notes(tmp_path):
    def frame(cls: str, text: str) -> str:
        return (
            f'<draw:frame presentation:class="{cls}"><draw:text-box><text:p>{text}</text:p>'
            "</draw:text-box></draw:frame>"
        )

    content = f"""<?xml version="1.0" encoding="UTF-8"?>
<office:document-content {_ODF_NS}><office:body><office:presentation>
<draw:page draw:name="p1">{frame("title", "Joint Programme")}{frame("outline", "Nine topics")}
<presentation:notes>{frame("notes", "Say five years.")}</presentation:notes></draw:page>
<draw:page draw:name="p2"><draw:g>{frame("outline", "Grouped words")}</draw:g></draw:page>
</office:presentation></office:body></office:document-content>"""
    document = load(write_zip(tmp_path / "programme.odp", {"content.xml": content}))
    assert document.title == "Joint Programme"
    assert places(document) == ["slide 1", "slide 2"]
    assert document.sections[0].text == "Joint Programme\n\nNine topics\n\nNotes: Say five years."
    assert document.sections[1].text == "Grouped words"


def test_encrypted_odt_is_a_load_error(tmp_path):
    manifest = "<manifest:manifest><manifest:file-entry><manifest:encryption-data/></manifest:file-entry></manifest:manifest>"
    path = write_zip(
        tmp_path / "secret.odt", {"content.xml": "\x00garbage", "META-INF/manifest.xml": manifest}
    )
    with pytest.raises(LoadError, match=r"^encrypted ODT file: save it without a password$"):
        load_file(path, LIMIT)


def _epub(path: Path, extra: dict[str, str] | None = None) -> Path:
    opf = """<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Life science clusters</dc:title></metadata>
<manifest><item id="c1" href="ch%201.xhtml" media-type="application/xhtml+xml"/>
<item id="c2" href="text/ch2.xhtml" media-type="application/xhtml+xml"/>
<item id="css" href="style.css" media-type="text/css"/></manifest>
<spine><itemref idref="c2"/><itemref idref="c1"/></spine></package>"""
    container = """<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
version="1.0"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
</rootfiles></container>"""
    chapter = '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body>{}</body></html>'
    return write_zip(
        path,
        {
            "mimetype": "application/epub+zip",
            "META-INF/container.xml": container,
            "OEBPS/content.opf": opf,
            "OEBPS/ch 1.xhtml": chapter.format("<h1>Later chapter</h1><p>Read second.</p>"),
            "OEBPS/text/ch2.xhtml": chapter.format("<h1>First chapter</h1><p>Read first.</p>"),
            "OEBPS/style.css": "p { margin: 0 }",
            **(extra or {}),
        },
    )


def test_epub_chapters_in_spine_order_with_headings(tmp_path):
    document = load(_epub(tmp_path / "book.epub"))
    assert document.title == "Life science clusters"
    assert [(s.heading, s.text) for s in document.sections] == [
        ("First chapter", "First chapter\n\nRead first."),
        ("Later chapter", "Later chapter\n\nRead second."),
    ]


def test_epub_with_drm_is_a_load_error(tmp_path):
    encryption = (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        '<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#"><CipherData>'
        '<CipherReference URI="OEBPS/text/ch2.xhtml"/></CipherData></EncryptedData></encryption>'
    )
    path = _epub(tmp_path / "locked.epub", {"META-INF/encryption.xml": encryption})
    with pytest.raises(LoadError, match=r"^encrypted EPUB \(DRM\): it cannot be read$"):
        load_file(path, LIMIT)


def test_every_new_suffix_is_registered():
    assert {".pptx", ".xlsx", ".csv", ".eml", ".mbox", ".odt", ".odp", ".epub"} <= SUPPORTED_SUFFIXES


# --- through the pipeline and retrieval ----------------------------------------------------------


def test_slide_row_and_attachment_facts_are_retrieved_with_their_place(settings):
    corpus = settings.corpus_dir
    write_deck(corpus / "results.pptx", title="INNAXE results")
    write_book(
        corpus / "partners.xlsx",
        {"Partners": [["Partner", "Country"], ["BIOCAT", "Spain"], ["Medicen Paris Region", "France"]]},
    )
    message = mail("Budget review", plain="The budget review is attached.")
    attach(
        message,
        "budget.docx",
        write_docx(
            corpus.parent / "b.docx", [("Budget", "Travel costs for the Sofia meeting were 4,200 euros.")]
        ).read_bytes(),
    )
    (corpus / "budget.eml").write_bytes(message.as_bytes())
    report = ingest(None, settings)
    assert report.totals["added"] == 3, report.to_json()

    retriever = Assistant.from_settings(settings).retriever
    slide = retriever.retrieve("How many co-creation participants were there?")[0]
    assert slide.location == "INNAXE results, slide 2"
    row = retriever.retrieve("Which country is Medicen Paris Region in?")[0]
    assert row.location == "partners, sheet Partners, rows 2-3"
    assert "Partner: Medicen Paris Region; Country: France" in row.text
    cost = retriever.retrieve("What did travel to the Sofia meeting cost?")[0]
    assert cost.location == "Budget review, attachment budget.docx"


# --- the shipped corpus: a default install shows the slide and spreadsheet loaders ----------------

DECK, BOOK = "innaxe-results-slides.pptx", "innaxe-partners.xlsx"


def test_the_shipped_deck_and_sheet_are_answered_from_and_cited_by_slide_and_rows(
    make_settings, shipped_corpus
):
    settings = make_settings(corpus_dir=shipped_corpus, answer_mode="extractive")
    report = ingest(None, settings)
    assert not report.failed and {DECK, BOOK} <= {f.source for f in report.files if f.status == "added"}
    assistant = Assistant.from_settings(settings)

    # the deck's results table (slide 3) holds the figure as "Meetings with ... | 31"
    meetings = assistant.ask("How many meetings were held with leading European opinion leaders?")
    assert not meetings.declined and meetings.verdict == "supported" and "31" in meetings.text
    [cited] = meetings.citations
    assert cited.passage.source == DECK
    assert cited.passage.location == "INNAXE: European cluster collaboration results, slide 3"
    assert cited.quote == "Meetings with leading European opinion leaders | 31"

    # the workbook's Results sheet holds it as a row read with its header
    topics = assistant.ask("How many topics were selected for the Joint Programme?")
    assert not topics.declined and topics.verdict == "supported" and "9" in topics.text
    [cited] = topics.citations
    assert cited.passage.source == BOOK
    assert cited.passage.location == "INNAXE partners and results, sheet Results, rows 2-6"
    assert cited.quote == "Result: Selected topics in the Joint Programme; Figure: 9"


def test_the_shipped_deck_and_sheet_are_what_their_script_writes(tmp_path):
    """scripts/make_corpus_extras.py writes them again unchanged (part by part: the zip's
    compressed bytes may differ between zlib builds), and they carry no date and no author."""
    done = subprocess.run(
        [sys.executable, "scripts/make_corpus_extras.py", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in (DECK, BOOK):
        with zipfile.ZipFile(REPO / "corpus" / name) as shipped, zipfile.ZipFile(tmp_path / name) as made:
            assert shipped.namelist() == made.namelist(), name
            for member in shipped.infolist():
                assert shipped.read(member) == made.read(member.filename), f"{name}: {member.filename}"
                assert member.date_time == (1980, 1, 1, 0, 0, 0)
            core = shipped.read("docProps/core.xml")
            assert b"dcterms:created" not in core and b"dcterms:modified" not in core
    deck = pptx.Presentation(REPO / "corpus" / DECK).core_properties
    assert deck.author == deck.last_modified_by == ""
