"""Documents -> chunks sized in embedding-model tokens, with the metadata citations need."""

from __future__ import annotations

from collections.abc import Iterator

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.loaders import DocumentStream, LoadedDocument
from kb.embeddings import count_tokens
from kb.settings import Settings

# Paragraphs, then lines, then sentences, then clauses: chunks end where a reader would pause.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


def make_splitter(settings: Settings) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=settings.chunk_tokens,
        chunk_overlap=min(settings.chunk_overlap, settings.chunk_tokens // 2),
        length_function=count_tokens,
        separators=SEPARATORS,
        keep_separator="end",
        add_start_index=True,
        strip_whitespace=True,
    )


def iter_chunks(
    doc: DocumentStream | LoadedDocument,
    *,
    source: str,
    file_hash: str,
    ingested_at: str,
    splitter: RecursiveCharacterTextSplitter,
) -> Iterator[Document]:
    """Split each section on its own so a chunk never spans two pages or headings; chunks come
    as sections are read, so a long document is never held whole as chunks."""
    number = 0
    for section in doc.sections:
        if not section.text.strip():
            continue
        for piece in splitter.create_documents([section.text]):
            start = section.offset + piece.metadata["start_index"]
            meta = {
                "source": source,
                "title": doc.title,
                "page": section.page,
                "section": section.heading,
                "place": section.place,
                "ocr": section.ocr or None,
                "chunk": number,
                "start": start,
                "end": start + len(piece.page_content),
                "file_hash": file_hash,
                "ingested_at": ingested_at,
            }
            number += 1
            # Chroma metadata values cannot be None.
            yield Document(
                page_content=piece.page_content, metadata={k: v for k, v in meta.items() if v is not None}
            )


def chunk_document(
    doc: DocumentStream | LoadedDocument,
    *,
    source: str,
    file_hash: str,
    ingested_at: str,
    splitter: RecursiveCharacterTextSplitter,
) -> list[Document]:
    """``iter_chunks`` as a list (small documents, benchmarks)."""
    return list(
        iter_chunks(doc, source=source, file_hash=file_hash, ingested_at=ingested_at, splitter=splitter)
    )
