"""Files -> text: one loader per format, each returning sections with page or heading.

CONTRACT (used by ingest/pipeline.py):

    load_file(path: Path, max_bytes: int) -> LoadedDocument
        raises SkipFile(reason)  -- policy: unsupported type, empty, too large, scanned PDF
        raises LoadError(reason) -- cannot be read: corrupt/encrypted PDF, binary named .txt,
                                    unreadable file, symlink loop, ...
    SUPPORTED_SUFFIXES: frozenset[str]

Reasons are short sentences shown to staff in the ingest report, so they name the problem and,
where there is one, the fix. Sizes use decimal units: pass ``max_bytes = int(max_file_mb * 1e6)``
so the limit reads "50 MB".
"""

from __future__ import annotations

import errno
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docx.table import Table


class LoadError(Exception):
    """The file cannot be read; the message is the reason shown to staff."""


class SkipFile(Exception):
    """The file is deliberately not indexed (unsupported, empty, too large, no text)."""


@dataclass
class Section:
    text: str
    page: int | None = None  # 1-based, PDFs
    heading: str | None = None  # nearest heading above the text (DOCX, Markdown, HTML)
    offset: int = 0  # where this section's text starts in the document's full extracted text


@dataclass
class LoadedDocument:
    title: str
    sections: list[Section] = field(default_factory=list)

    @property
    def text(self) -> str:
        return SECTION_SEPARATOR.join(s.text for s in self.sections)


SECTION_SEPARATOR = "\n\n"  # Section.offset counts it
_MAX_REASON = 160  # library error messages can be long; the report shows one short line


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


def _document(title: str, sections: list[Section]) -> LoadedDocument:
    """Drop empty sections and set each section's offset into ``LoadedDocument.text``."""
    kept = [s for s in sections if s.text]
    offset = 0
    for section in kept:
        section.offset = offset
        offset += len(section.text) + len(SECTION_SEPARATOR)
    return LoadedDocument(title=_normalise(title).replace("\n", " ")[:200], sections=kept)


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


def load_pdf(path: Path, raw: bytes) -> LoadedDocument:
    """One section per page (1-based ``page``); title from the metadata or the first line."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = PdfReader(BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs only restrict printing etc.
            raise LoadError("encrypted PDF: a password is needed")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except LoadError:
        raise
    except FileNotDecryptedError:
        raise LoadError("encrypted PDF: a password is needed") from None
    except DependencyError:
        raise LoadError("encrypted PDF: decrypting needs the 'cryptography' package") from None
    except Exception as exc:  # noqa: BLE001  (pypdf raises PdfReadError, ValueError, KeyError, ... on bad input)
        raise LoadError(f"corrupt PDF: {_short(exc)}") from None
    sections = [Section(text=_normalise(_join_hyphenated(t)), page=n) for n, t in enumerate(pages, start=1)]
    if not any(s.text for s in sections):
        raise SkipFile("no extractable text (scanned PDF? OCR it first)")
    title = str(meta_title).strip() or _first_line(next(s.text for s in sections if s.text))
    return _document(title or path.stem, sections)


def _join_hyphenated(text: str) -> str:
    """PDF text breaks words at line ends ("inno-\\nvation"); join them when a lower-case letter follows."""
    return re.sub(r"(\w)-[ \t]*\n[ \t]*(?=[a-z])", r"\1", text)


def load_docx(path: Path, raw: bytes) -> LoadedDocument:
    """Sections split at Heading/Title styles; tables become "cell | cell" lines in place."""
    import docx
    from docx.table import Table

    if raw.startswith(b"\xd0\xcf\x11\xe0"):  # OLE container: password-protected or old .doc renamed
        raise LoadError("encrypted or old-format Word file: save it as .docx without a password")
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
    return _document(title, sections)


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


def load_markdown(path: Path, raw: bytes) -> LoadedDocument:
    """Sections at ATX headings (not inside code fences); the heading line, without its #s, starts
    the section text. Title from the first H1, else the file name."""
    text = _FRONT_MATTER.sub("", _decode(raw).replace("\r\n", "\n").replace("\r", "\n"), count=1)
    sections: list[Section] = []
    heading: str | None = None
    lines: list[str] = []
    title = ""
    fence = ""
    for line in text.split("\n"):
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
        sections.append(Section(text=_normalise("\n".join(lines)), heading=heading))
        heading = match.group(2).strip()
        lines = [heading]
        if len(match.group(1)) == 1 and not title:
            title = heading
    sections.append(Section(text=_normalise("\n".join(lines)), heading=heading))
    return _document(title or path.stem, sections)


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


def load_html(path: Path, raw: bytes) -> LoadedDocument:
    """Visible body text in sections at h1-h3; page furniture (nav, header, footer, ...) dropped.
    Title from <title>, else the first h1, else the file name."""
    from bs4 import BeautifulSoup, NavigableString
    from bs4.dammit import EncodingDetector

    text = _decode(raw)  # also rejects binary content
    declared = EncodingDetector.find_declared_encoding(raw, is_html=True)  # <meta charset=...>
    soup = BeautifulSoup(raw if declared else text, "html.parser")
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
    title = title or next((h for h in headings if h), "") or path.stem
    return _document(title, sections)


def load_text(path: Path, raw: bytes) -> LoadedDocument:
    """Plain text (.txt, .rst, .csv): one section; the title is a short first line that reads
    like a headline (no closing full stop), else the file name."""
    text = _normalise(_decode(raw))
    first = _first_line(text).strip()
    headline = path.suffix.lower() != ".csv" and 0 < len(first) <= 150 and not first.endswith((".", ":", ","))
    return _document(first if headline else path.stem, [Section(text=text)])


Loader = Callable[[Path, bytes], LoadedDocument]  # (path for the title fallback, the file's bytes)
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
    ".csv": load_text,
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
        raise SkipFile(f"too large: {size} > {limit} limit")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise LoadError(_os_reason(exc, path)) from None
    if len(raw) > max_bytes:
        raise SkipFile(f"too large: over the {human_size(max_bytes)} limit")
    if not raw.strip():
        raise SkipFile("empty file")
    return raw


def parse(path: Path, raw: bytes) -> LoadedDocument:
    """Bytes read by ``read_file`` -> sections; ``path`` gives the format and the title fallback."""
    path = Path(path)
    document = LOADERS[path.suffix.lower()](path, raw)
    if not document.sections:  # e.g. a DOCX with only images, an HTML page that is all navigation
        raise SkipFile("no text found")
    return document


def load_file(path: Path, max_bytes: int) -> LoadedDocument:
    """``read_file`` then ``parse``: one file into sections, or SkipFile / LoadError."""
    return parse(path, read_file(path, max_bytes))
