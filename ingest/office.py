"""Office documents and e-books: PPTX, XLSX (rows as facts, ``ingest.tables``), ODT, ODP, EPUB.

All are zip packages, judged by ``check_unzipped_size`` before anything is unpacked. PPTX and XLSX
are read with python-pptx and openpyxl (a workbook in read-only mode, row by row, so a big sheet
never sits in memory). ODT, ODP and EPUB are read with ``zipfile`` and ``xml.etree`` (EPUB
chapters are HTML, cleaned like HTML files): the few dozen lines this takes spare the project
odfpy, unmaintained since 2020, and EbookLib, whose AGPL licence does not fit this Apache one.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterable, Iterator
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote
from xml.etree import ElementTree

from ingest.loaders import (
    DocumentStream,
    Limits,
    LoadError,
    Section,
    SkipFile,
    _normalise,
    _short,
    _stream,
    _with_text,
    check_unzipped_size,
    html_sections,
)
from ingest.tables import row_sections

if TYPE_CHECKING:
    from openpyxl import Workbook
    from pptx.shapes.base import BaseShape
    from pptx.slide import Slide

_OLE = b"\xd0\xcf\x11\xe0"  # an OLE container: a password-protected OOXML file, or an old binary one
_GENERIC_TITLES = {"powerpoint presentation", "presentation", "untitled"}  # what apps put by default


def _package(raw: bytes, limits: Limits, *, kind: str, app: str) -> None:
    """The checks every OOXML file gets before its library sees it."""
    if raw.startswith(_OLE):
        raise LoadError(f"encrypted or old-format {app} file: save it as .{kind.lower()} without a password")
    check_unzipped_size(raw, limits, kind=kind)


def _guarded(sections: Iterable[Section], kind: str) -> Iterator[Section]:
    """A library's error part-way through a file is a corrupt file, named by its format."""
    try:
        yield from sections
    except (LoadError, SkipFile):
        raise
    except Exception as exc:  # noqa: BLE001  (zipfile, XML and library errors on damaged content)
        raise LoadError(f"corrupt {kind}: {_short(exc)}") from None


def _slide(number: int, title: str, body: Iterable[str], notes: str) -> Section:
    """One slide as one section: its title first, then its text, then its speaker notes."""
    parts = [title, *body, f"Notes: {notes}" if notes else ""]
    text = _normalise("\n\n".join(p for p in parts if p))
    return Section(text=text, heading=title or None, place=f"slide {number}")


# --- PowerPoint ----------------------------------------------------------------------------------


def load_pptx(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """One section per slide (``place`` "slide N"): title, text of every shape (tables as
    "cell | cell" lines, groups opened), then "Notes: ...". Title from the core properties,
    else the first slide's title, else the file name."""
    import pptx

    _package(raw, limits, kind="PPTX", app="PowerPoint")
    try:
        deck = pptx.Presentation(BytesIO(raw))
        slides = list(deck.slides)
        core_title = (deck.core_properties.title or "").strip()
        titles = [_slide_title(slide) for slide in slides]
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"corrupt PPTX: {_short(exc)}") from None
    if core_title.lower() in _GENERIC_TITLES:
        core_title = ""
    sections = (
        _slide(n, title, _shapes_text(slide.shapes, skip=slide.shapes.title), _notes(slide))
        for n, (slide, title) in enumerate(zip(slides, titles), start=1)
    )
    title = core_title or next((t for t in titles if t), "") or path.stem
    return _stream(title, _with_text(_guarded(sections, "PPTX")), limits)


def _slide_title(slide: Slide) -> str:
    shape = slide.shapes.title
    return " ".join(shape.text_frame.text.split()) if shape is not None else ""


_FURNITURE = {"DATE", "FOOTER", "SLIDE_NUMBER", "HEADER"}  # placeholders repeated on every slide


def _shapes_text(shapes: Iterable[BaseShape], skip: BaseShape | None = None) -> Iterator[str]:
    from pptx.shapes.group import GroupShape

    for shape in shapes:
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if shape.is_placeholder and getattr(shape.placeholder_format.type, "name", "") in _FURNITURE:
            continue
        if isinstance(shape, GroupShape):
            yield from _shapes_text(shape.shapes)
        elif getattr(shape, "has_table", False):
            yield _rows_text([cell.text for cell in row.cells] for row in shape.table.rows)
        elif shape.has_text_frame:
            yield shape.text_frame.text


def _notes(slide: Slide) -> str:
    frame = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
    return frame.text.strip() if frame is not None else ""


def _rows_text(rows: Iterable[Iterable[str]]) -> str:
    """Table rows as "cell | cell" lines, as DOCX and HTML tables read; merged cells once."""
    lines = []
    for row in rows:
        cells: list[str] = []
        for text in (" ".join(t.split()) for t in row):
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return "\n".join(lines)


# --- Excel ---------------------------------------------------------------------------------------


def load_xlsx(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """Each sheet's rows as facts ("Partner: BIOCAT; Country: Spain") in sections of bounded size,
    placed "sheet Partners, rows 2-11". Values, not formulas (as last calculated and saved).
    Title from the core properties, else the file name."""
    import openpyxl

    _package(raw, limits, kind="XLSX", app="Excel")
    try:
        book = openpyxl.load_workbook(BytesIO(raw), read_only=True, data_only=True)
        title = (book.properties.title or "").strip()
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"corrupt XLSX: {_short(exc)}") from None
    return _stream(title or path.stem, _with_text(_guarded(_sheets(book, limits), "XLSX")), limits)


def _sheets(book: Workbook, limits: Limits) -> Iterator[Section]:
    try:
        for sheet in book.worksheets:
            sheet.reset_dimensions()  # some writers declare "A1:A1": read every row and column there is
            yield from row_sections(sheet.iter_rows(values_only=True), limits, sheet=sheet.title)
    finally:
        book.close()


# --- OpenDocument --------------------------------------------------------------------------------

_NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}


def _q(name: str) -> str:
    """ "text:p" -> "{urn:...:text:1.0}p", the name ElementTree gives."""
    prefix, local = name.split(":")
    return f"{{{_NS[prefix]}}}{local}"


_H, _P, _TABLE, _ROW, _CELL = (
    _q("text:h"),
    _q("text:p"),
    _q("table:table"),
    _q("table:table-row"),
    _q("table:table-cell"),
)
_SPACE, _TAB, _BREAK = _q("text:s"), _q("text:tab"), _q("text:line-break")
_SKIP = {_q("text:tracked-changes"), _q("presentation:notes"), _q("office:annotation")}


def _odf(raw: bytes, limits: Limits, kind: str) -> tuple[ElementTree.Element, str]:
    """(the body of content.xml, the title in meta.xml) of an ODT or ODP package."""
    check_unzipped_size(raw, limits, kind=kind)
    try:
        package = zipfile.ZipFile(BytesIO(raw))
        names = set(package.namelist())
        if "META-INF/manifest.xml" in names and b"encryption-data" in package.read("META-INF/manifest.xml"):
            raise LoadError(f"encrypted {kind} file: save it without a password")
        body = ElementTree.fromstring(package.read("content.xml")).find("office:body", _NS)
        meta = ElementTree.fromstring(package.read("meta.xml")) if "meta.xml" in names else None
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"corrupt {kind}: {_short(exc)}") from None
    if body is None:
        raise LoadError(f"corrupt {kind}: content.xml has no office:body")
    title = meta.findtext(".//dc:title", "", _NS) if meta is not None else ""
    return body, " ".join(title.split())


def _odf_text(element: ElementTree.Element) -> str:
    """A paragraph's text, with its spaces, tabs and line breaks (ODF marks them as elements)."""
    parts = [element.text or ""]
    for child in element:
        if child.tag == _SPACE:
            parts.append(" " * int(child.get(_q("text:c"), "1")))
        elif child.tag in (_TAB, _BREAK):
            parts.append(" " if child.tag == _TAB else "\n")
        elif child.tag not in _SKIP:
            parts.append(_odf_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _odf_blocks(
    element: ElementTree.Element, skip: Iterable[ElementTree.Element] = ()
) -> Iterator[tuple[bool, str]]:
    """(is a heading, text) of each paragraph, heading and table under ``element``, in order;
    lists, sections, frames and groups are opened; tracked deletions, comments, notes pages and
    the elements in ``skip`` are left."""
    for child in element:
        if child.tag in _SKIP or child in skip:
            continue
        if child.tag in (_H, _P):
            yield child.tag == _H, _odf_text(child)
        elif child.tag == _TABLE:
            rows = (
                (" ".join(_odf_text(p) for p in cell.iter(_P)) for cell in row.iter(_CELL))
                for row in child.iter(_ROW)
            )
            yield False, _rows_text(rows)
        else:
            yield from _odf_blocks(child, skip)


def load_odt(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """Sections at headings, like DOCX; tables as "cell | cell" lines. Title from the metadata,
    else the first heading, else the file name."""
    body, title = _odf(raw, limits, "ODT")
    sections: list[Section] = []
    heading: str | None = None
    parts: list[str] = []
    for is_heading, text in _odf_blocks(body):
        text = text.strip()
        if is_heading and text:
            sections.append(Section(text="\n\n".join(parts), heading=heading))
            heading, parts = " ".join(text.split()), []
        if text:
            parts.append(text)
    sections.append(Section(text="\n\n".join(parts), heading=heading))
    for section in sections:
        section.text = _normalise(section.text)
    first_heading = next((s.heading for s in sections if s.heading), "")
    return _stream(title or first_heading or path.stem, _with_text(iter(sections)), limits)


def load_odp(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """One section per slide, as for PPTX: title frame first, other frames, then the notes."""
    body, title = _odf(raw, limits, "ODP")
    sections = []
    for number, page in enumerate(body.iter(_q("draw:page")), start=1):
        limits.check_time()
        titles = [f for f in page.iter(_q("draw:frame")) if f.get(_q("presentation:class")) == "title"]
        text = [text for _, text in _odf_blocks(page, skip=titles)]
        notes = page.find("presentation:notes", _NS)
        slide_title = " ".join(_text_of(titles[0]).split()) if titles else ""
        sections.append(_slide(number, slide_title, text, "" if notes is None else _text_of(notes)))
    first_title = next((s.heading for s in sections if s.heading), "")
    return _stream(title or first_title or path.stem, _with_text(iter(sections)), limits)


def _text_of(element: ElementTree.Element) -> str:
    return "\n".join(text for _, text in _odf_blocks(element))


# --- EPUB ----------------------------------------------------------------------------------------

_OPF = "http://www.idpf.org/2007/opf"


def load_epub(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """The chapters in reading order (the package's spine), each cleaned like an HTML file and
    split at its h1-h3 headings. Title from the package metadata, else the file name."""
    check_unzipped_size(raw, limits, kind="EPUB")
    try:
        package = zipfile.ZipFile(BytesIO(raw))
        container = ElementTree.fromstring(package.read("META-INF/container.xml"))
        opf_path = next(e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile"))
        opf = ElementTree.fromstring(package.read(opf_path))
        chapters = _spine(opf, posixpath.dirname(opf_path))
        locked = _encrypted(package)
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"corrupt EPUB: {_short(exc)}") from None
    if locked & set(chapters):
        raise LoadError("encrypted EPUB (DRM): it cannot be read")
    title = " ".join(opf.findtext(f".//{{{_NS['dc']}}}title", "").split())
    sections = (s for name in chapters for s in html_sections(package.read(name))[1])
    return _stream(title or path.stem, _with_text(_guarded(sections, "EPUB")), limits)


def _spine(opf: ElementTree.Element, base: str) -> list[str]:
    """The zip names of the package's HTML chapters, in reading order."""
    items = {
        item.get("id"): item
        for item in opf.iter(f"{{{_OPF}}}item")
        if "html" in (item.get("media-type") or "")
    }
    spine = (ref for ref in opf.iter(f"{{{_OPF}}}itemref") if ref.get("linear") != "no")  # not a TOC page
    refs = (items.get(ref.get("idref")) for ref in spine)
    return [
        posixpath.normpath(posixpath.join(base, unquote(i.get("href", "")))) for i in refs if i is not None
    ]


def _encrypted(package: zipfile.ZipFile) -> set[str]:
    """Members that META-INF/encryption.xml lists (DRM; fonts alone are often obfuscated too)."""
    if "META-INF/encryption.xml" not in package.namelist():
        return set()
    tree = ElementTree.fromstring(package.read("META-INF/encryption.xml"))
    return {unquote(e.get("URI", "")) for e in tree.iter() if e.tag.endswith("CipherReference")}
