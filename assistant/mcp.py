"""The knowledge base as a tool for other assistants: an MCP (Model Context Protocol) server.

Tools: ``search``, ``ask``, ``list_documents`` (a cursor), ``get_passage`` (with its neighbours);
resources: each document as ``doc://<source>`` (its text as indexed). Two transports:

* stdio, ``python -m assistant.mcp``, for a client on this machine. It reads the data dir
  directly, so it sees every document (``--collections`` limits it to some);
* streamable HTTP at ``/mcp`` in the web app (``webapp.mcp_http``), where each call acts as the
  user of its API key, through the same ``kb.access.Scope`` as the chat.

Built on the official SDK's ``MCPServer``, not on Gradio's ``mcp_server=True``: Gradio turns the
page's events into tools, with the page's inputs and outputs (chat history, picker values) and its
one-at-a-time queue, and knows nothing of our API keys; these tools have their own schemas, a
cursor and resources, and read the caller from each request.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ListResourcesResult, PaginatedRequestParams, Resource, ToolAnnotations
from pydantic import BaseModel, Field

from assistant.core import Assistant
from assistant.models import Answer, DeclineReason, Passage, Verdict, document_url, file_url
from kb.access import Scope, collection_of, valid_collection
from kb.store import DocumentRecord

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
MAX_TURNS = 50
PAGE_SIZE = 50  # documents per list_documents page
MAX_DOC_CHARS = 500_000  # text of one doc:// resource
NO_SUCH_PASSAGE = "No passage with that id (it may have been re-indexed: search again)."

INSTRUCTIONS = (
    "The organisation's project documents. Use `search` for passages to read and quote, `ask` "
    "for a cited answer, `list_documents` to see what exists, `get_passage` to read around a "
    "passage. Cite passages by their source and location."
)


# --- what the tools return ------------------------------------------------------------------
class PassageOut(BaseModel):
    id: str = Field(description="Stable passage id, for get_passage (changes when its document does).")
    text: str
    source: str = Field(description="The document, as listed by list_documents.")
    title: str
    location: str = Field(description="Human label: title with page or section.")
    page: int | None = None
    section: str | None = None
    score: float | None = Field(None, description="Fused retrieval score (search only).")
    uri: str = Field(description="The document as an MCP resource.")
    url: str | None = Field(None, description="Opens the document in the web app (a PDF at the page).")


class SearchResult(BaseModel):
    passages: list[PassageOut]


class CitationOut(BaseModel):
    n: int = Field(description="The [n] marker in the answer text.")
    passage_id: str
    source: str
    location: str
    quote: str = Field(description="The sentence of the passage that supports the answer.")
    url: str | None = None


class AskResult(BaseModel):
    text: str = Field(description="The answer, with [n] markers that match `citations`.")
    declined: bool = Field(description="True when the documents do not hold the answer.")
    decline_reason: DeclineReason | None = None
    confidence: float | None = Field(None, description="0..1, the offline answerer's; None for a model.")
    uncertain: bool = Field(False, description="Answered with the closest passage, marked as unsure.")
    reason: str | None = Field(None, description="Why the answerer declined or is unsure.")
    verdict: Verdict | None = Field(
        None, description="Do the cited passages hold its claims: supported, partly_supported, unverified."
    )
    unsupported: list[str] = Field(description="Sentences of the answer no cited passage holds.")
    citations: list[CitationOut]
    narrowed_to: list[str] = Field(description="The collections the question was limited to.")
    mode: str = Field(description="extractive (no language model) or openai.")


class DocumentOut(BaseModel):
    source: str
    title: str
    collections: list[str] = Field(
        description="Its home collection (its folder) first, then others staff added."
    )
    chunks: int
    ingested_at: float = Field(description="Unix time of its last ingest.")
    uri: str
    url: str | None = None


class DocumentPage(BaseModel):
    documents: list[DocumentOut]
    next_cursor: str | None = Field(None, description="Pass it back for the next page; None: the last page.")


class PassageInContext(BaseModel):
    passage: PassageOut
    before: PassageOut | None = Field(None, description="The passage before it in the document.")
    after: PassageOut | None = Field(None, description="The passage after it in the document.")


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


# --- the server -------------------------------------------------------------------------------
ScopeOf = Callable[[Context], Scope]
BaseUrlOf = Callable[[Context], str | None]


def doc_uri(source: str) -> str:
    return f"doc://{source}"


def encode_cursor(source: str) -> str:
    return base64.urlsafe_b64encode(source.encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise ToolError("That cursor is not one list_documents gave: start again without it.") from None


class _Server(MCPServer):
    """``MCPServer`` whose resource list is the caller's documents, paged (the SDK lists only
    resources registered up front)."""

    list_page: Callable[[Context, str | None], tuple[list[DocumentRecord], str | None, Scope]]

    async def _handle_list_resources(
        self, ctx: Any, params: PaginatedRequestParams | None
    ) -> ListResourcesResult:

        context = Context(request_context=ctx, mcp_server=self)
        cursor = params.cursor if params else None
        try:
            documents, next_cursor, _ = await anyio.to_thread.run_sync(self.list_page, context, cursor)
        except ToolError as exc:
            raise ResourceError(str(exc)) from None
        resources = [
            Resource(uri=doc_uri(d.source), name=d.source, title=d.title, mime_type="text/plain")
            for d in documents
        ]
        return ListResourcesResult(resources=resources, next_cursor=next_cursor)


def build_server(
    assistant: Assistant,
    scope_of: ScopeOf,
    base_url_of: BaseUrlOf = lambda ctx: None,
    answer_slot: Callable[[], AbstractContextManager] = contextlib.nullcontext,
) -> MCPServer:
    """The MCP server over ``assistant``'s knowledge base. ``scope_of``: what the calling request
    may read; ``base_url_of``: the web app's address for links (None: no links);
    ``answer_slot``: held while ``ask`` answers (the web app's answering gate)."""
    kb = assistant.kb
    server = _Server("documents-assistant", instructions=INSTRUCTIONS, log_level="WARNING")

    def passage_out(p: Passage, base: str | None, score: bool = True) -> PassageOut:
        return PassageOut(
            id=p.id,
            text=p.text,
            source=p.source,
            title=p.title,
            location=p.location,
            page=p.page,
            section=p.section,
            score=round(p.score, 6) if score else None,
            uri=doc_uri(p.source),
            url=base + file_url(p) if base else None,
        )

    def scope_with(ctx: Context, collections: list[str] | None) -> Scope:
        for name in collections or ():
            if not valid_collection(name):
                raise ToolError(f"{name!r} is not a collection name.")
        return scope_of(ctx).narrowed(collections=collections or ())

    def list_page(
        ctx: Context, cursor: str | None, collection: str | None = None, limit: int = PAGE_SIZE
    ) -> tuple[list[DocumentRecord], str | None, Scope]:
        scope = scope_with(ctx, [collection] if collection else None)
        after = decode_cursor(cursor) if cursor else None
        documents = kb.documents_page(after=after, limit=limit + 1, scope=scope)
        more = len(documents) > limit
        documents = documents[:limit]
        return documents, encode_cursor(documents[-1].source) if more else None, scope

    server.list_page = list_page

    @server.tool(annotations=READ_ONLY)
    def search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)],
        ctx: Context,
        k: Annotated[int, Field(ge=1, le=20)] = 5,
        collections: list[str] | None = None,
    ) -> SearchResult:
        """Find the passages of the documents that best match a query (hybrid keyword and
        semantic search), best first. Use for facts to read and quote. `collections` limits the
        search to those collections."""
        with _errors("search"):
            scope = scope_with(ctx, collections)
            base = base_url_of(ctx)
            passages = assistant.retriever.retrieve(query, k=k, scope=scope)
            return SearchResult(passages=[passage_out(p, base) for p in passages])

    @server.tool(annotations=READ_ONLY)
    def ask(
        question: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)],
        ctx: Context,
        history: Annotated[list[Turn] | None, Field(max_length=MAX_TURNS)] = None,
        collections: list[str] | None = None,
    ) -> AskResult:
        """Answer a question from the documents, with [n] citations of the passages it rests on,
        or decline (declined=true) when the documents do not hold the answer. `history`: the
        conversation so far, for follow-up questions."""
        with _errors("ask"):
            scope = scope_with(ctx, collections)
            base = base_url_of(ctx)
            turns = [t.model_dump() for t in history or ()]
            with answer_slot():
                answer = assistant.ask(question, turns, scope)
            return ask_result(answer, base)

    @server.tool(annotations=READ_ONLY)
    def list_documents(
        ctx: Context,
        collection: str | None = None,
        cursor: str | None = None,
        limit: Annotated[int, Field(ge=1, le=200)] = PAGE_SIZE,
    ) -> DocumentPage:
        """The indexed documents, by source, `limit` a page. Pass `next_cursor` back as `cursor`
        for the next page: no document is repeated or skipped, even while others are added."""
        with _errors("list_documents"):
            documents, next_cursor, scope = list_page(ctx, cursor, collection, limit)
            base = base_url_of(ctx)
            return DocumentPage(
                documents=[document_out(d, base, scope) for d in documents], next_cursor=next_cursor
            )

    @server.tool(annotations=READ_ONLY)
    def get_passage(
        passage_id: Annotated[str, Field(min_length=1, max_length=200)], ctx: Context
    ) -> PassageInContext:
        """A passage by its id (from search or ask), with the passages just before and after it
        in its document."""
        with _errors("get_passage"):
            got = kb.get_chunks([passage_id], include=["documents", "metadatas"])
            if not got["ids"]:
                raise ToolError(NO_SUCH_PASSAGE)
            text, meta = got["documents"][0], got["metadatas"][0] or {}
            source = meta.get("source", "")
            if not scope_of(ctx).allows(source):
                raise ToolError(NO_SUCH_PASSAGE)  # as absent as a passage that does not exist
            base = base_url_of(ctx)
            number = meta.get("chunk")
            around = kb.passages_of(source, [number - 1, number + 1]) if isinstance(number, int) else {}

            def out(cid: str, text: str, meta: dict) -> PassageOut:
                return passage_out(Passage.from_chunk(cid, text, meta), base, score=False)

            return PassageInContext(
                passage=out(passage_id, text, meta),
                before=out(*around[number - 1]) if number is not None and number - 1 in around else None,
                after=out(*around[number + 1]) if number is not None and number + 1 in around else None,
            )

    @server.resource("doc://{+source}", name="document", mime_type="text/plain")
    def document(source: str, ctx: Context) -> str:
        """A document's text as indexed (its passages in order)."""
        if not scope_of(ctx).allows(source) or kb.get_document(source) is None:
            raise ResourceError(f"No document {source!r}.")
        text, cut = kb.document_text(source, MAX_DOC_CHARS)
        if cut:
            text += f"\n\n[... cut at {MAX_DOC_CHARS:,} characters: use search or get_passage for the rest]"
        return text

    return server


def ask_result(answer: Answer, base: str | None) -> AskResult:
    return AskResult(
        text=answer.text,
        declined=answer.declined,
        decline_reason=answer.decline_reason,
        confidence=answer.confidence,
        uncertain=answer.uncertain,
        reason=answer.reason,
        verdict=answer.verdict,
        unsupported=answer.unsupported,
        citations=[
            CitationOut(
                n=c.n,
                passage_id=c.passage.id,
                source=c.passage.source,
                location=c.passage.location,
                quote=c.quote,
                url=base + file_url(c.passage) if base else None,
            )
            for c in answer.citations
        ],
        narrowed_to=answer.narrowed_to,
        mode=answer.mode,
    )


def document_out(d: DocumentRecord, base: str | None, scope: Scope) -> DocumentOut:
    home = collection_of(d.source)
    return DocumentOut(
        source=d.source,
        title=d.title,
        collections=[home, *sorted(scope.collections_of(d.source) - {home} - scope.denied)],
        chunks=d.chunks,
        ingested_at=d.ingested_at,
        uri=doc_uri(d.source),
        url=base + document_url(d.source) if base else None,
    )


@contextlib.contextmanager
def _errors(tool: str) -> Iterator[None]:
    """A clear message for the client, never a traceback; the traceback goes to the log."""
    try:
        yield
    except ToolError:
        raise
    except Exception:
        log.exception("MCP tool %s failed", tool)
        raise ToolError(f"{tool} failed on the server; the server's log says why.") from None


# --- stdio ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m assistant.mcp",
        description="Serve the knowledge base to an MCP client over stdio (for a client on this machine).",
    )
    ap.add_argument(
        "--collections",
        metavar="NAME",
        nargs="+",
        help="serve only these collections (default: every document in the data dir)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)  # stdout carries the protocol

    import kb  # noqa: F401  (telemetry off before the libraries load)
    from kb import ConfigError
    from kb.settings import load_settings

    try:
        settings = load_settings()
        assistant = Assistant.from_settings(settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scope = Scope().narrowed(collections=args.collections or ())
    base = settings.public_url.rstrip("/") if settings.public_url else None
    build_server(assistant, lambda ctx: scope, lambda ctx: base).run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
