"""E-mail: one message (.eml) or a mailbox of them (.mbox), with their attachments.

A message reads as its Subject, From, To, Cc and Date lines, then its body (the plain-text part,
else the HTML part cleaned as HTML files are). Attachments of a supported type are parsed by
their own loader, with the mail's limits, and follow as further sections of the mail placed
"attachment report.pdf, p. 2": the pipeline indexes one source per file, so a mail and its
attachments are added, replaced and removed together. An attachment that is not indexed
(unsupported type, corrupt, no text) is a line of the mail's text that says why; it never fails
the mail. Each message's attachments are read before the message is handed on, so that line
can be in it: memory holds one message's text at a time, never a whole mailbox's.

Images in a mail are mostly signature logos, icons and banners: OCR would take a second or more
each, usually to find no text. An image part under 20 KB, or one shown in the body (a
``Content-ID`` or ``Content-Disposition: inline``) under 200 KB, is only named ("Attachment
logo.png: not indexed (inline image)"); other images (a scan, a photo, a screenshot; Apple Mail
marks every attachment inline, so size decides there) are read by OCR like image files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

from ingest.loaders import (
    LOADERS,
    DocumentStream,
    Limits,
    LoadError,
    Section,
    SkipFile,
    _decode,
    _normalise,
    _short,
    _stream,
    _with_text,
    html_sections,
    open_document,
)

_HEADERS = ("Subject", "From", "To", "Cc", "Date")
_MAX_DEPTH = 3  # a message attached to a message attached to ...: deeper ones are only named
_FROM_LINE = re.compile(rb"^From [^\n]*\n(?=[!-9;-~]+:)", re.MULTILINE)  # "From " line, then a header
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp", ".webp", ".svg"})
SMALL_IMAGE_BYTES = 20_000  # logos, icons, tracking pixels: never worth an OCR run
INLINE_IMAGE_BYTES = 200_000  # an image shown in the body below this is decoration (logo, banner)


def load_eml(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """One message; title = its subject, else the file name."""
    message = _parse(raw)
    subject = _header(message, "Subject")
    return _stream(subject or path.stem, _with_text(_message(message, limits)), limits)


def load_mbox(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """One section per message, placed "message N", heading = its subject (its attachments after
    it, "message N, attachment x.pdf"). A message starts at a "From " line followed by a header
    line: the stdlib ``mailbox`` splits at every "From " line, so a body line some writer left
    unescaped would cut a message in two (and it reads from a path, loaders from bytes)."""
    starts = [m.start() for m in _FROM_LINE.finditer(raw)]
    if not starts:
        raise LoadError('not an mbox file: no "From " line starts a message')

    def messages() -> Iterator[Section]:
        for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(raw)]), start=1):
            limits.check_time()
            message = _parse(raw[start:end], strict=False)  # e.g. only Received: and X- headers
            yield from _message(message, limits, f"message {number}")

    return _stream(path.stem, _with_text(messages()), limits)


def _parse(raw: bytes, strict: bool = True) -> EmailMessage:
    """The message in ``raw``; ``strict``: refuse bytes with none of a mail's headers."""
    try:
        message = BytesParser(policy=default).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001  (the parser is lenient; this is a damaged structure)
        raise LoadError(f"corrupt e-mail: {_short(exc)}") from None
    if strict and not any(_header(message, name) for name in (*_HEADERS, "Message-ID")):
        raise LoadError("not an e-mail message: no From, To, Subject or Date header")
    return message  # type: ignore[return-value]  (policy=default gives EmailMessage)


def _header(message: EmailMessage, name: str) -> str:
    try:
        return " ".join(str(message.get(name, "")).split())
    except Exception:  # noqa: BLE001  (a header the policy cannot parse is left out)
        return ""


def _message(
    message: EmailMessage, limits: Limits, place: str | None = None, depth: int = 0
) -> Iterator[Section]:
    """The message's own section (headers, body, notes on attachments not indexed), then its
    attachments' sections. ``place`` names the message within a mailbox."""
    body = message.get_body(preferencelist=("plain", "html"))
    lines = [f"{name}: {value}" for name in _HEADERS if (value := _header(message, name))]
    parts = ["\n".join(lines), _body_text(body) if body is not None else ""]
    attached: list[Section] = []
    for part in _attachments(message, body):
        name = Path(part.get_filename() or "message.eml").name or "attachment"
        where = f"{place}, attachment {name}" if place else f"attachment {name}"
        try:
            sections = _attachment(part, name, limits, depth)
        except Exception as exc:  # noqa: BLE001  (whatever it is, it fails the attachment only)
            limits.check_time()  # but the mail's own deadline fails the mail
            why = (
                str(exc)
                if isinstance(exc, LoadError | SkipFile)
                else f"could not parse: {type(exc).__name__}"
            )
            parts.append(f"Attachment {name}: not indexed ({why})")
            continue
        attached += [_placed_in(s, where) for s in sections]
    heading = (_header(message, "Subject") or None) if place else None  # an .eml's subject is its title
    yield Section(text=_normalise("\n\n".join(p for p in parts if p)), heading=heading, place=place)
    yield from attached


def _body_text(part: EmailMessage) -> str:
    """A text part's content, decoded by its charset (or guessed); HTML cleaned to its text."""
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or wrong charset: guess as for text files
        text = _decode(part.get_payload(decode=True) or b"")
    if part.get_content_subtype() == "html":
        return "\n\n".join(s.text for s in html_sections(text)[1] if s.text)
    return text


def _attachments(part: EmailMessage, body: EmailMessage | None) -> Iterator[EmailMessage]:
    """Parts that are files (they have a name) or attached messages, however deeply nested in
    multiparts; an attached message is one attachment, its own parts are its business."""
    for sub in part.iter_parts():
        if sub is body:
            continue
        if sub.get_content_type() == "message/rfc822" or (not sub.is_multipart() and sub.get_filename()):
            yield sub
        elif sub.is_multipart():
            yield from _attachments(sub, body)


def _attachment(part: EmailMessage, name: str, limits: Limits, depth: int) -> list[Section]:
    """An attachment's sections, read by the loader of its type; raises SkipFile/LoadError."""
    suffix = Path(name).suffix.lower()
    if part.get_content_type() == "message/rfc822":
        if depth >= _MAX_DEPTH:
            raise SkipFile("mails nested too deeply")
        inner = part.get_content()
        return list(_with_text(_message(inner, limits, depth=depth + 1)))
    if part.get_content_maintype() == "image" or suffix in _IMAGE_SUFFIXES:
        _check_image(part)
    if suffix not in LOADERS:
        raise SkipFile(f"unsupported file type {suffix or '(no extension)'}")
    raw = part.get_payload(decode=True) or b""
    if not raw.strip():
        raise SkipFile("empty file")
    return list(_with_text(open_document(Path(name), raw, limits).sections))


def _check_image(part: EmailMessage) -> None:
    """Refuse (``SkipFile``) an image that is the mail's decoration rather than a document: one
    shown in the body (``Content-ID``, ``Content-Disposition: inline``) under
    ``INLINE_IMAGE_BYTES``, or any under ``SMALL_IMAGE_BYTES`` (an empty one is left to the
    empty-file check)."""
    raw = part.get_payload(decode=True) or b""
    if not raw.strip():
        return
    inline = part.get("Content-ID") is not None or part.get_content_disposition() == "inline"
    if inline and len(raw) < INLINE_IMAGE_BYTES:
        raise SkipFile("inline image")
    if len(raw) < SMALL_IMAGE_BYTES:
        raise SkipFile(f"small image, under {SMALL_IMAGE_BYTES // 1000} KB")


def _placed_in(section: Section, where: str) -> Section:
    """An attachment's section, placed within the mail: "attachment deck.pptx, slide 2"."""
    inner = section.place or (f"p. {section.page}" if section.page is not None else None)
    return Section(
        text=section.text,
        heading=section.heading,
        place=f"{where}, {inner}" if inner else where,
        ocr=section.ocr,
    )
