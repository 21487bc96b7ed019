"""Files -> text: one loader per format, each giving sections with page, heading or place.

Formats beyond PDF, DOCX, Markdown, HTML and text live in modules named for their job, which
import this module's helpers and are imported by ``LOADERS`` only when first used:
``ingest.tables`` (CSV, and the rows-as-facts of spreadsheets), ``ingest.office`` (PPTX, XLSX,
ODT, ODP, EPUB), ``ingest.mail`` (EML, mbox, with their attachments).

CONTRACT (used by ingest/pipeline.py):

    read_file(path, max_bytes) -> bytes                  the size limit before anything is read
    open_document(path, raw, limits) -> DocumentStream   title now, sections as they are consumed
    load_file(path, max_bytes, limits=None) -> LoadedDocument   both, every section in a list
        raise SkipFile(reason)  -- policy: unsupported type, empty, too large, too many pages,
                                   inflates too much, too many pixels, scanned PDF or image
                                   with OCR off or not installed
        raise LoadError(reason) -- cannot be read: corrupt/encrypted PDF or office file, binary
                                   named .txt, unreadable file, symlink loop, took too long, ...
        (a DocumentStream's sections may raise either part-way, e.g. on page 500 of a PDF)
    SUPPORTED_SUFFIXES: frozenset[str]

Big files are read in bounded steps so memory does not grow with the file: a PDF's page count
comes from its page tree before any page is built, then pages are extracted one at a time; a
zip-based file (DOCX, PPTX, XLSX, ODT, EPUB) is judged by its members' declared sizes before it
is unpacked; a spreadsheet is read row by row; any section longer than ``SECTION_CHARS`` (a long
plain-text file is one section) is cut at paragraph breaks.
``Limits`` carries the per-file bounds, including a deadline checked between pages and sections.

A PDF page with no text layer, and an image file (PNG, JPEG, TIFF), is read by OCR
(``ingest.ocr``, Tesseract) when ``Limits.ocr`` is on (``ASSISTANT_OCR``): its sections carry
``ocr=True``, a mixed PDF's text pages are kept as they are, and an image's pixel count is judged
from its header before it is decoded. With OCR off, a PDF with no text at all and an image are
skipped; with Tesseract missing, so is any file that needs it, the reason naming the package.

Reasons are short sentences shown to staff in the ingest report, so they name the problem and,
where there is one, the fix or the setting. Sizes use decimal units: pass
``max_bytes = int(max_file_mb * 1e6)`` so the limit reads "50 MB".
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import itertools
import re
import stat
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docx.table import Table
    from pypdf import PdfReader


class LoadError(Exception):
    """The file cannot be read; the message is the reason shown to staff."""


class SkipFile(Exception):
    """The file is deliberately not indexed (unsupported, empty, too large, no text)."""


@dataclass
class Section:
    text: str
    page: int | None = None  # 1-based, PDFs
    heading: str | None = None  # nearest heading above the text (DOCX, Markdown, HTML)
    place: str | None = None  # where it is when not a page or heading: "slide 3", "sheet Partners, rows 2-11"
    ocr: bool = False  # the text was read from an image by OCR (shown in the citation)
    offset: int = 0  # where this section's text starts in the document's full extracted text


@dataclass
class LoadedDocument:
    title: str
    sections: list[Section] = field(default_factory=list)

    @property
    def text(self) -> str:
        return SECTION_SEPARATOR.join(s.text for s in self.sections)


@dataclass
class DocumentStream:
    """A document being read: the title is known, sections come as they are consumed (with
    their final offsets), so a 2,000-page PDF never has all its pages' text in memory."""

    title: str
    sections: Iterator[Section]


@dataclass(frozen=True)
class Limits:
    """Bounds on one file, each refused by name with the setting that raises it."""

    max_pdf_pages: int = 5000
    max_unzipped_bytes: int = 200_000_000
    seconds: float | None = None  # None: no deadline
    started: float = field(default_factory=time.monotonic)
    ocr: bool = True  # read PDF pages with no text layer, and image files, by OCR (ASSISTANT_OCR)
    max_image_pixels: int = 50_000_000  # an image with more is refused before it is decoded

    @property
    def deadline(self) -> float | None:
        """The ``time.monotonic()`` time the file must be done by (None: no deadline)."""
        return None if self.seconds is None else self.started + self.seconds

    def check_time(self) -> None:
        """Called between pages, sections and windows: a file cannot stall the others for ever."""
        if self.seconds is not None and time.monotonic() - self.started > self.seconds:
            raise LoadError(f"took too long: over the {self.seconds:g} s limit (ASSISTANT_MAX_FILE_SECONDS)")


SECTION_SEPARATOR = "\n\n"  # Section.offset counts it
SECTION_CHARS = 100_000  # longer sections are cut (at paragraph breaks) so chunking stays bounded
_MAX_REASON = 160  # library error messages can be long; the report shows one short line
NO_TEXT = "no text found"  # e.g. a DOCX with only images, an HTML page that is all navigation


# --- shared helpers ------------------------------------------------------------------------------

_INVISIBLE = str.maketrans(
    {
        "\u00a0": " ",
        "\u202f": " ",
        "\t": " ",
        "\f": "\n",
        "\v": "\n",
        "\u00ad": None,
        "\u200b": None,
        "\ufeff": None,
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # C0/C1 controls except \t \n \v \f \r


def _normalise(text: str) -> str:
    """Modest clean-up: one space between words, no spaces at line ends, at most one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = _CONTROL.sub("", text)
    text = re.sub(r" {2,}", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _short(exc: BaseException) -> str:
    """The first line of an exception's message (or its type), trimmed for the report."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:_MAX_REASON]


def _stream(title: str, sections: Iterable[Section], limits: Limits) -> DocumentStream:
    """The document as loaders hand it over: a clean one-line title and placed sections."""
    return DocumentStream(
        title=_normalise(title).replace("\n", " ")[:200], sections=_placed(sections, limits)
    )


def _placed(sections: Iterable[Section], limits: Limits) -> Iterator[Section]:
    """Drop empty sections, cut long ones, and set each one's offset into the document's text
    (the sections joined by ``SECTION_SEPARATOR``); the deadline is checked before each."""
    offset = 0
    for section in sections:
        limits.check_time()
        for text in _pieces(section.text):
            yield Section(
                text=text,
                page=section.page,
                heading=section.heading,
                place=section.place,
                ocr=section.ocr,
                offset=offset,
            )
            offset += len(text) + len(SECTION_SEPARATOR)


_CUTS = ("\n\n", "\n", ". ", " ")  # where to cut a long section, best first


def _pieces(text: str) -> Iterator[str]:
    """``text`` in pieces of at most ``SECTION_CHARS``, each cut at the last paragraph break
    before the bound (else line break, sentence end, space; else at the bound itself).

    A cut at a paragraph break loses nothing: the pieces joined by ``SECTION_SEPARATOR`` are the
    text again, so offsets stay exact for ordinary prose."""
    start = 0
    while len(text) - start > SECTION_CHARS:
        end = start + SECTION_CHARS
        piece_end = next_start = end
        for sep in _CUTS:
            cut = text.rfind(sep, start + 1, end)
            if cut > start:
                piece_end, next_start = cut + (1 if sep == ". " else 0), cut + len(sep)
                break
        piece = text[start:piece_end].strip()
        if piece:
            yield piece
        start = next_start
    rest = text[start:].strip()
    if rest:
        yield rest


def _with_text(sections: Iterator[Section]) -> Iterator[Section]:
    """``sections`` after reading up to the first one with text, so a file with none is skipped
    when it is opened (``SkipFile(NO_TEXT)``) rather than indexed as nothing."""
    first = next((s for s in sections if s.text.strip()), None)
    if first is None:
        raise SkipFile(NO_TEXT)
    return itertools.chain([first], sections)


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def human_size(n: int) -> str:
    """Decimal units as people read them: "61.2 MB", "50 MB", "900 bytes"."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= factor:
            return f"{n / factor:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{n} bytes"


def _os_reason(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "broken link" if path.is_symlink() else "file not found"
    if isinstance(exc, PermissionError):
        return "cannot read: permission denied"
    return f"cannot read: {(exc.strerror or _short(exc)).lower()}"


# --- text decoding -------------------------------------------------------------------------------

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_MAX_CONTROL_SHARE = 0.05


def _guess_encoding(raw: bytes) -> str | None:
    """charset-normalizer's best guess, preferring cp1252 (in practice a superset of Latin-1) among
    equally good candidates: for short Western text the library ranks e.g. cp1250 or cp1006 first,
    which turns "très" into "trčs". UTF-16/32 without a BOM is never guessed (NULs are refused)."""
    from charset_normalizer import from_bytes

    scored = []  # (chaos, -coherence, encodings giving this same text)
    for match in from_bytes(raw):
        names = [n for n in match.could_be_from_charset if not n.startswith(("utf_16", "utf_32"))]
        if names:
            scored.append((match.chaos, -match.coherence, names))
    if not scored:
        return None
    best = min(score[:2] for score in scored)
    tied = [name for *score, names in scored if tuple(score) == best for name in names]
    return "cp1252" if "cp1252" in tied else tied[0]


def _decode(raw: bytes) -> str:
    """Bytes -> str: a BOM if present, else UTF-8, else a detected 8-bit encoding.

    Raises LoadError for binary content (NUL bytes, undecodable, or many control characters).
    """
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), None)
    if encoding is None:
        if b"\x00" in raw:  # text without a BOM never has NULs; executables, images, zips do
            raise LoadError("binary content, not text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            encoding = _guess_encoding(raw)
            if encoding is None:
                raise LoadError("binary content, not text") from None
    if encoding is not None:
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise LoadError("binary content, not text") from None
    if text and len(_CONTROL.findall(text)) / len(text) > _MAX_CONTROL_SHARE:
        raise LoadError("binary content, not text")
    return text


# --- one loader per format -----------------------------------------------------------------------


def load_pdf(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """One section per page (1-based ``page``), extracted as they are consumed; title from the
    metadata or the first line. The page count is read from the page tree's ``/Count`` first,
    so a 99,000-page file is refused before a single page object is built."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = PdfReader(BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs only restrict printing etc.
            raise LoadError("encrypted PDF: a password is needed")
        declared = _declared_pages(reader)
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except LoadError:
        raise
    except FileNotDecryptedError:
        raise LoadError("encrypted PDF: a password is needed") from None
    except DependencyError:
        raise LoadError("encrypted PDF: decrypting needs the 'cryptography' package") from None
    except Exception as exc:  # noqa: BLE001  (pypdf raises PdfReadError, ValueError, KeyError, ... on bad input)
        raise LoadError(f"corrupt PDF: {_short(exc)}") from None
    if declared is not None:
        _check_pages(declared, limits)
    pages = _pdf_pages(reader, limits)
    first = next((s for s in pages if s.text), None)
    if first is None:
        raise SkipFile(
            "no text found, even by OCR" if limits.ocr else "no extractable text (scanned PDF? OCR it first)"
        )
    title = str(meta_title).strip() or _first_line(first.text)
    return _stream(title or path.stem, itertools.chain([first], pages), limits)


def _declared_pages(reader: PdfReader) -> int | None:
    """The page tree's own count (``/Root /Pages /Count``), or None when it is unreadable."""
    try:
        return int(reader.trailer["/Root"]["/Pages"]["/Count"])
    except Exception:  # noqa: BLE001  (a damaged tree is judged when it is walked)
        return None


def _check_pages(count: int, limits: Limits) -> None:
    if count > limits.max_pdf_pages:
        raise SkipFile(
            f"too many pages: {count:,} > {limits.max_pdf_pages:,} limit (ASSISTANT_MAX_PDF_PAGES)"
        )


def _pdf_pages(reader: PdfReader, limits: Limits) -> Iterator[Section]:
    """Each page's text in turn; a page pypdf cannot read fails the file, naming the page. A
    page with no text layer is read from its images by OCR (``limits.ocr``), the others as
    they are."""
    try:
        pages = reader.pages
        count = len(pages)  # walks the page tree: /Count may understate it
    except Exception as exc:  # noqa: BLE001
        raise LoadError(f"corrupt PDF: {_short(exc)}") from None
    _check_pages(count, limits)
    for number in range(1, count + 1):
        limits.check_time()
        try:
            text = pages[number - 1].extract_text() or ""
        except Exception as exc:  # noqa: BLE001
            raise LoadError(f"corrupt PDF: page {number:,}: {_short(exc)}") from None
        text = _normalise(_join_hyphenated(text))
        if text or not limits.ocr:
            yield Section(text=text, page=number)
            continue
        where = f"page {number:,}"
        with _ocr_reasons(limits, where, needs=f"{where} has no text layer and needs OCR"):
            from ingest import ocr

            text = ocr.pdf_page_text(
                pages[number - 1], max_pixels=limits.max_image_pixels, deadline=limits.deadline, where=where
            )
        yield Section(text=_normalise(_join_hyphenated(text)), page=number, ocr=True)


@contextlib.contextmanager
def _ocr_reasons(limits: Limits, where: str, needs: str) -> Iterator[None]:
    """``ingest.ocr``'s errors as the loaders' own: a missing engine or a refused image is a
    skip (``needs`` says why OCR was wanted), an unreadable image or a failed run a load error."""
    from ingest import ocr

    try:
        yield
    except ocr.NoEngine as exc:
        raise SkipFile(f"{needs}, but {exc}") from None
    except ocr.ImageRefused as exc:
        raise SkipFile(f"{where}: {exc}" if where else str(exc)) from None
    except ocr.OcrTimeout as exc:
        limits.check_time()  # past the file's deadline: its usual reason, naming the setting
        raise LoadError(str(exc)) from None
    except ocr.OcrFailed as exc:
        raise LoadError(str(exc)) from None


def _join_hyphenated(text: str) -> str:
    """PDF text breaks words at line ends ("inno-\\nvation"); join them when a lower-case letter follows."""
    return re.sub(r"(\w)-[ \t]*\n[ \t]*(?=[a-z])", r"\1", text)


def load_docx(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """Sections split at Heading/Title styles; tables become "cell | cell" lines in place.

    python-docx builds the whole XML tree, so the package's unzipped size is checked first."""
    import docx
    from docx.table import Table

    if raw.startswith(b"\xd0\xcf\x11\xe0"):  # OLE container: password-protected or old .doc renamed
        raise LoadError("encrypted or old-format Word file: save it as .docx without a password")
    check_unzipped_size(raw, limits, kind="DOCX")
    try:
        document = docx.Document(BytesIO(raw))
        blocks = list(document.iter_inner_content())
        core_title = document.core_properties.title or ""
    except Exception as exc:  # noqa: BLE001  (zipfile, lxml and python-docx errors on a damaged package)
        raise LoadError(f"corrupt DOCX: {_short(exc)}") from None

    sections: list[Section] = []
    heading: str | None = None
    parts: list[str] = []
    title_style_text = ""

    def flush() -> None:
        sections.append(Section(text=_normalise("\n\n".join(parts)), heading=heading))

    for block in blocks:
        if isinstance(block, Table):
            parts.append(_table_text(block))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name or "") if block.style is not None else ""
        if style == "Title" and not title_style_text:
            title_style_text = text
        if style.startswith("Heading") or style == "Title":
            flush()
            heading, parts = text, [text]  # keep the heading in the text: chunks need the context
        else:
            parts.append(text)
    flush()
    first_heading = next((s.heading for s in sections if s.heading), "")
    title = core_title.strip() or title_style_text or first_heading or path.stem
    return _stream(title, sections, limits)


_ZIP_RATIO = 100  # real XML deflates about 5-20 times; a run of one repeated byte about 1,000
_ZIP_RATIO_FLOOR = 10_000_000  # members smaller than this unzipped are not judged by ratio


def check_unzipped_size(raw: bytes, limits: Limits, *, kind: str) -> None:
    """Refuse a zip-based file (DOCX; PPTX, XLSX and ODT are zips too) that would inflate past
    ``limits.max_unzipped_bytes``, or one large member with a zip bomb's compression ratio,
    from the central directory's declared sizes, before any member is unpacked. ``zipfile``
    never inflates a member beyond its declared size (it stops there and fails the CRC), so a
    file that passes cannot unpack to more."""
    try:
        members = zipfile.ZipFile(BytesIO(raw)).infolist()
    except Exception as exc:  # noqa: BLE001  (BadZipFile, or struct/value errors on a damaged directory)
        raise LoadError(f"corrupt {kind}: {_short(exc)}") from None
    total = sum(m.file_size for m in members)
    if total > limits.max_unzipped_bytes:
        raise SkipFile(
            f"inflates too much: {human_size(total)} unzipped > {human_size(limits.max_unzipped_bytes)} "
            "limit (ASSISTANT_MAX_UNZIPPED_MB)"
        )
    for m in members:
        if m.file_size > _ZIP_RATIO_FLOOR and m.file_size > _ZIP_RATIO * max(m.compress_size, 1):
            ratio = m.file_size // max(m.compress_size, 1)
            raise SkipFile(
                f"inflates too much: {m.filename} unzips {ratio:,} times its size "
                f"(over {_ZIP_RATIO}: a zip bomb?)"
            )


def _table_text(table: Table) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)


_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def load_markdown(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """Sections at ATX headings (not inside code fences); the heading line, without its #s, starts
    the section text. Title from the first H1, else the file name. Sections are built as they
    are consumed (the title is found by a first pass that keeps nothing)."""
    text = _FRONT_MATTER.sub("", _decode(raw).replace("\r\n", "\n").replace("\r", "\n"), count=1)
    title = next((heading for level, heading, _ in _markdown_blocks(text) if level == 1), None)
    sections = (
        Section(text=_normalise("\n".join(lines)), heading=heading)
        for _, heading, lines in _markdown_blocks(text)
    )
    return _stream(title or path.stem, sections, limits)


def _markdown_blocks(text: str) -> Iterator[tuple[int, str | None, list[str]]]:
    """(heading level, heading, lines) per ATX heading outside code fences, the heading text as
    the first line; level 0 and heading None for the text before the first heading."""
    level, heading, lines, fence = 0, None, [], ""
    for raw_line in io.StringIO(text, newline="\n"):
        line = raw_line.removesuffix("\n")
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if not fence:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = ""
        match = None if fence or fence_match else _ATX.match(line)
        if match is None:
            lines.append(line)
            continue
        yield level, heading, lines
        level, heading = len(match.group(1)), match.group(2).strip()
        lines = [heading]
    yield level, heading, lines


_DROP_TAGS = ("script", "style", "nav", "header", "footer", "aside", "form", "noscript", "template", "svg")
_BLOCK_TAGS = (
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "h4",
    "h5",
    "h6",
    "hr",
    "address",
)
_MARK = "\x02"  # brackets the placeholder for an h1-h3 boundary; removed from the page's own text first


def load_html(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """Visible body text in sections at h1-h3; page furniture (nav, header, footer, ...) dropped.
    Title from <title>, else the first h1, else the file name."""
    from bs4.dammit import EncodingDetector

    text = _decode(raw)  # also rejects binary content
    declared = EncodingDetector.find_declared_encoding(raw, is_html=True)  # <meta charset=...>
    title, sections = html_sections(raw if declared else text)
    return _stream(title or path.stem, sections, limits)


def html_sections(markup: str | bytes) -> tuple[str, list[Section]]:
    """(title, sections) of an HTML page: the cleaning of ``load_html``, shared with the mail
    loader (HTML bodies) and EPUB chapters. The title is <title>, else the first h1-h3, else ""."""
    from bs4 import BeautifulSoup, NavigableString

    soup = BeautifulSoup(markup, "html.parser")
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    if soup.head:
        soup.head.decompose()
    for node in soup.find_all(string=True):  # source line breaks are spaces, except in <pre>
        if type(node) is not NavigableString:  # comments, doctype, processing instructions
            node.extract()
            continue
        value = str(node).replace(_MARK, "")
        node.replace_with(NavigableString(value if node.find_parent("pre") else re.sub(r"\s+", " ", value)))
    for br in soup("br"):
        br.replace_with("\n")
    for row in reversed(soup("tr")):  # innermost (nested) tables first
        cells = (" ".join(cell.get_text().split()) for cell in row(["td", "th"], recursive=False))
        row.replace_with(" | ".join(c for c in cells if c) + "\n")
    for tag in soup(_BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    headings: list[str] = []
    for tag in soup(["h1", "h2", "h3"]):
        headings.append(" ".join(tag.get_text().split()))
        tag.replace_with(f"\n\n{_MARK}{len(headings) - 1}{_MARK}\n\n")
    parts = re.split(f"{_MARK}(\\d+){_MARK}", soup.get_text())
    sections = [Section(text=_normalise(parts[0]))]
    for index, body in zip(parts[1::2], parts[2::2], strict=True):
        heading = headings[int(index)]
        sections.append(Section(text=_normalise(heading + "\n" + body), heading=heading))
    return title or next((h for h in headings if h), ""), sections


def load_text(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """Plain text (.txt, .rst): one section (cut into pieces when long); the title is a
    short first line that reads like a headline (no closing full stop), else the file name."""
    text = _normalise(_decode(raw))
    first = _first_line(text).strip()
    headline = 0 < len(first) <= 150 and not first.endswith((".", ":", ","))
    return _stream(first if headline else path.stem, [Section(text=text)], limits)


def load_image(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """PNG, JPEG or TIFF read by OCR (``ingest.ocr``): one section, or one per page of a
    multi-page TIFF (``page``); the title is the first line read, else the file name. The
    header (format, pixels, pages) is judged before any pixel is decoded."""
    from ingest import ocr

    if not limits.ocr:
        raise SkipFile("an image: its text is read by OCR, which is off (ASSISTANT_OCR=false)")
    with _ocr_reasons(limits, "", needs="an image needs OCR"):
        count, texts = ocr.image_file_pages(
            raw, max_pixels=limits.max_image_pixels, max_pages=limits.max_pdf_pages, deadline=limits.deadline
        )

    def sections() -> Iterator[Section]:
        for number in range(1, count + 1):
            with _ocr_reasons(limits, f"page {number:,}" if count > 1 else "", needs="an image needs OCR"):
                text = next(texts)
            yield Section(_normalise(_join_hyphenated(text)), page=number if count > 1 else None, ocr=True)

    pages = sections()
    first = next((s for s in pages if s.text), None)
    if first is None:
        raise SkipFile("no text found by OCR")
    title = _first_line(first.text) if len(re.findall(r"\w", _first_line(first.text))) >= 3 else ""
    return _stream(title or path.stem, itertools.chain([first], pages), limits)


# (path for the format and title fallback, the file's bytes, the bounds on this file)
Loader = Callable[[Path, bytes, Limits], DocumentStream]


def _elsewhere(module: str, name: str) -> Loader:
    """A loader from a module that imports this one: imported when first used, so there is no
    import cycle and a format's library loads only when a file of that format comes."""

    def load(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
        return getattr(importlib.import_module(module), name)(path, raw, limits)

    load.__name__ = load.__qualname__ = name
    return load


LOADERS: dict[str, Loader] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".txt": load_text,
    ".text": load_text,
    ".rst": load_text,
    ".png": load_image,
    ".jpg": load_image,
    ".jpeg": load_image,
    ".tif": load_image,
    ".tiff": load_image,
    ".csv": _elsewhere("ingest.tables", "load_csv"),
    ".xlsx": _elsewhere("ingest.office", "load_xlsx"),
    ".pptx": _elsewhere("ingest.office", "load_pptx"),
    ".odt": _elsewhere("ingest.office", "load_odt"),
    ".odp": _elsewhere("ingest.office", "load_odp"),
    ".epub": _elsewhere("ingest.office", "load_epub"),
    ".eml": _elsewhere("ingest.mail", "load_eml"),
    ".mbox": _elsewhere("ingest.mail", "load_mbox"),
}
SUPPORTED_SUFFIXES = frozenset(LOADERS)


# --- entry point ---------------------------------------------------------------------------------


def read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, or in one short sentence why not (SkipFile / LoadError).

    Cheap checks come first: the suffix, then ``stat`` (size limit before reading anything).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in LOADERS:
        raise SkipFile(f"unsupported file type {suffix or '(no extension)'}")
    try:
        info = path.stat()
    except OSError as exc:
        raise LoadError(_os_reason(exc, path)) from None
    if not stat.S_ISREG(info.st_mode):  # a directory, FIFO or device: reading it could block or fail
        raise LoadError("not a regular file")
    if info.st_size == 0:
        raise SkipFile("empty file")
    if info.st_size > max_bytes:
        size, limit = human_size(info.st_size), human_size(max_bytes)
        if size == limit:
            size, limit = f"{info.st_size} bytes", f"{max_bytes} bytes"
        raise SkipFile(f"too large: {size} > {limit} limit (ASSISTANT_MAX_FILE_MB)")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise LoadError(_os_reason(exc, path)) from None
    if len(raw) > max_bytes:
        raise SkipFile(f"too large: over the {human_size(max_bytes)} limit (ASSISTANT_MAX_FILE_MB)")
    if not raw.strip():
        raise SkipFile("empty file")
    return raw


def open_document(path: Path, raw: bytes, limits: Limits | None = None) -> DocumentStream:
    """Bytes read by ``read_file`` -> a document whose sections are read as they are consumed;
    ``path`` gives the format and the title fallback. Cheap limits (pages, unzipped size) are
    checked here, before any text is extracted."""
    path = Path(path)
    return LOADERS[path.suffix.lower()](path, raw, limits or Limits())


def parse(path: Path, raw: bytes, limits: Limits | None = None) -> LoadedDocument:
    """``open_document`` with every section read into a list."""
    stream = open_document(path, raw, limits)
    document = LoadedDocument(title=stream.title, sections=list(stream.sections))
    if not document.sections:
        raise SkipFile(NO_TEXT)
    return document


def load_file(path: Path, max_bytes: int, limits: Limits | None = None) -> LoadedDocument:
    """``read_file`` then ``parse``: one file into sections, or SkipFile / LoadError."""
    return parse(path, read_file(path, max_bytes), limits)
