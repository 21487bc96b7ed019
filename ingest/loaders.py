"""Files -> text: one loader per format, each returning sections with page or heading.

CONTRACT (used by ingest/pipeline.py; a helper is filling in the implementation):

    load_file(path: Path, max_bytes: int) -> LoadedDocument
        raises SkipFile(reason)  -- policy: unsupported type, empty, too large
        raises LoadError(reason) -- cannot be read: corrupt/encrypted PDF, binary named .txt,
                                    unreadable file, symlink loop, ...
    SUPPORTED_SUFFIXES: frozenset[str]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class LoadError(Exception):
    """The file cannot be read; the message is the reason shown to staff."""


class SkipFile(Exception):
    """The file is deliberately not indexed (unsupported, empty, too large)."""


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
        return "\n\n".join(s.text for s in self.sections)


SUPPORTED_SUFFIXES = frozenset({".pdf", ".docx", ".md", ".markdown", ".html", ".htm", ".txt", ".text", ".rst", ".csv"})


def load_file(path: Path, max_bytes: int) -> LoadedDocument:
    raise NotImplementedError
