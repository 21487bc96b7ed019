"""Builders for real document files (PDF, DOCX, HTML, Markdown, text) used by loader, pipeline,
app and browser tests. Every builder writes the file at ``path`` and returns ``path``.

The PDF is written by hand (pypdf cannot draw text) with a Helvetica text stream per page, then
passed through pypdf's writer so metadata and encryption use the library's own code.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path

import docx
from pypdf import PdfReader, PdfWriter

BOILERPLATE = "BOILERPLATE-MARKER"  # appears only in HTML parts a loader must drop (script, nav, ...)


def _pdf_string(line: str) -> bytes:
    """A PDF literal string in WinAnsi (cp1252) encoding, with ( ) and backslash escaped."""
    raw = line.encode("cp1252")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _content_stream(text: str) -> bytes:
    if not text:
        return b""  # a page with no text objects, like a scanned image page
    lines = text.split("\n")
    ops = [b"BT /F1 12 Tf 72 740 Td 15 TL", _pdf_string(lines[0]) + b" Tj"]
    ops += [_pdf_string(line) + b" '" for line in lines[1:]]  # ' = next line, then show text
    ops.append(b"ET")
    return b"\n".join(ops)


# A /ToUnicode map whose source code is longer than any real font's: pypdf refuses the page.
_BAD_CMAP = (
    b"begincmap\n1 begincodespacerange\n<00> <FF>\nendcodespacerange\n1 beginbfrange\n"
    b"<000000000000000000000001> <000000000000000000000002> <0041>\nendbfrange\nendcmap"
)


def pdf_bytes(pages: list[str], *, count: int | None = None, unreadable: Iterable[int] = ()) -> bytes:
    """A minimal valid PDF: one page per string, each line of the string a line of text.

    ``count`` overrides the page tree's ``/Count`` (what a reader trusts before walking the tree);
    pages in ``unreadable`` (1-based) use a font with a damaged ``/ToUnicode`` map, so text
    extraction raises on them, as on a page damaged part-way through a long file.
    """
    n = len(pages)
    bad_font = 4 + 2 * n  # then its /ToUnicode stream
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n if count is None else count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    unreadable = set(unreadable)
    for i, text in enumerate(pages):
        stream = _content_stream(text or ("x" if i + 1 in unreadable else ""))
        font = bad_font if i + 1 in unreadable else 3
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode %d 0 R >>" % (bad_font + 1)
    )
    objects.append(b"<< /Length %d >>\nstream\n" % len(_BAD_CMAP) + _BAD_CMAP + b"\nendstream")
    out = BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % off for off in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def write_pdf(
    path: Path,
    pages: list[str],
    password: str | None = None,
    title: str | None = None,
    unreadable: Iterable[int] = (),
) -> Path:
    """A PDF with the given page texts; ``password`` encrypts it ("" = opens without a password);
    pages in ``unreadable`` (1-based) fail text extraction."""
    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf_bytes(pages, unreadable=unreadable))))
    if title is not None:
        writer.add_metadata({"/Title": title})
    if password is not None:
        writer.encrypt(password)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


def write_corrupt_pdf(path: Path) -> Path:
    """A PDF cut off part-way through its first object, as from an interrupted download."""
    path.write_bytes(pdf_bytes(["Some text that never arrives."])[:40])
    return path


def write_docx(
    path: Path,
    sections: list[tuple[str | None, str]],
    title: str | None = None,
    table: list[list[str]] | None = None,
) -> Path:
    """A DOCX with a Heading 1 per section (None = no heading); paragraphs split at blank lines.

    ``title`` goes into the core properties; ``table`` rows are added after the last section.
    """
    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    for heading, text in sections:
        if heading is not None:
            document.add_heading(heading, level=1)
        for paragraph in text.split("\n\n"):
            document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=max(len(row) for row in table))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    document.save(str(path))
    return path


def write_docx_bomb(path: Path, inflated_bytes: int, text: str = "Tiny visible text.") -> Path:
    """A real DOCX (python-docx's template) whose document.xml holds ``text`` and then a run of
    ``inflated_bytes`` zeros in one paragraph: a few KB per MB on disk, the shape of a zip bomb.
    Written in 1 MB steps, so a 1.5 GB bomb never sits in memory."""
    template = BytesIO()
    docx.Document().save(template)
    head = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p><w:p><w:r><w:t>"
    ).encode()
    tail = b"</w:t></w:r></w:p></w:body></w:document>"
    block = b"0" * 1_000_000
    with (
        zipfile.ZipFile(template) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out,
    ):
        for item in src.infolist():
            if item.filename != "word/document.xml":
                out.writestr(item, src.read(item.filename))
                continue
            with out.open("word/document.xml", "w", force_zip64=True) as member:
                member.write(head)
                left = inflated_bytes
                while left > 0:
                    member.write(block[: min(left, len(block))])
                    left -= len(block)
                member.write(tail)
    return path


def write_markdown(path: Path, sections: list[tuple[str | None, str]], level: int = 1) -> Path:
    """Markdown with an ATX heading of ``level`` per section (None = text before any heading)."""
    parts = [(f"{'#' * level} {heading}\n\n" if heading else "") + text for heading, text in sections]
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def write_html(path: Path, sections: list[tuple[str, str]], title: str | None = None) -> Path:
    """An HTML page with an <h2> per section, wrapped in script/style/nav/header/footer/aside/form
    boilerplate that contains BOILERPLATE, which a loader must not keep."""
    body = "\n".join(f"<h2>{heading}</h2>\n<p>{text}</p>" for heading, text in sections)
    head_title = f"<title>{title}</title>" if title else ""
    path.write_text(
        f"""<!doctype html>
<html><head><meta charset="utf-8">{head_title}
<style>body {{ content: "{BOILERPLATE}"; }}</style>
<script>var x = "{BOILERPLATE}";</script></head>
<body>
<header>{BOILERPLATE} site header</header>
<nav><a href="/">{BOILERPLATE} Home</a></nav>
<main>
{body}
</main>
<aside>{BOILERPLATE} related links</aside>
<form><label>{BOILERPLATE} search</label></form>
<noscript>{BOILERPLATE} enable JS</noscript>
<footer>{BOILERPLATE} copyright</footer>
<script>document.write("{BOILERPLATE}");</script>
</body></html>
""",
        encoding="utf-8",
    )
    return path


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def everything(kb, include: tuple[str, ...] = ("documents", "metadatas")) -> dict[str, list]:
    """Every chunk's id (and ``include`` fields) of a knowledge base, read page by page."""
    out: dict[str, list] = {"ids": [], **{key: [] for key in include}}
    for page in kb.pages(include=list(include)):
        for key in out:
            out[key].extend(page[key])
    return out
