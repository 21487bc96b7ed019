"""What crosses the assistant's boundary: retrieved passages and the answer that cites them."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, Field


class Passage(BaseModel):
    """One retrieved chunk, ranked; ``n`` is the number an answer cites it by ([n])."""

    n: int = 0
    id: str
    text: str
    source: str
    title: str = ""
    page: int | None = None
    section: str | None = None
    place: str | None = None  # "slide 3", "sheet Partners, rows 2-11": where, when not a page
    ocr: bool = False  # read from an image by OCR: the words may hold recognition errors
    start: int | None = None  # character span in the document's extracted text
    end: int | None = None
    score: float = 0.0  # fused score used for ranking
    dense_score: float | None = None  # cosine similarity, 0..1
    bm25_score: float | None = None

    @classmethod
    def from_chunk(cls, cid: str, text: str, meta: dict, **scores: float | None) -> Passage:
        """A passage from a chunk as the vector store holds it (id, text, metadata)."""
        return cls(
            id=cid,
            text=text,
            source=meta.get("source", ""),
            title=meta.get("title", ""),
            page=meta.get("page"),
            section=meta.get("section"),
            place=meta.get("place"),
            ocr=bool(meta.get("ocr")),
            start=meta.get("start"),
            end=meta.get("end"),
            **{k: v for k, v in scores.items() if v is not None},
        )

    @property
    def location(self) -> str:
        """Human label: 'title, p. 3', 'title, slide 2', 'title, § Heading'; '(OCR)' when read
        from an image."""
        label = self.title or self.source
        if self.place:
            label = f"{label}, {self.place}"
        elif self.page is not None:
            label = f"{label}, p. {self.page}"
        elif self.section:
            label = f"{label}, § {self.section}"
        return f"{label} (OCR)" if self.ocr else label


class Citation(BaseModel):
    """A passage the answer actually cites, with the sentence of the answer it supports."""

    n: int
    passage: Passage
    quote: str = ""  # the supporting sentence from the passage, for highlighting


class Timings(BaseModel):
    retrieval_s: float = 0.0
    first_token_s: float | None = None
    total_s: float = 0.0


class SentenceSupport(BaseModel):
    """One sentence of an answer and whether the passages it cites hold it (``assistant.claims``)."""

    text: str
    cites: list[int] = Field(default_factory=list, description="The [n] markers in the sentence.")
    claim: bool = True  # False: it only says what the documents do not hold
    supported: bool = False
    missing: list[str] = Field(default_factory=list, description="Numbers and names no cited passage holds.")
    coverage: float = 0.0  # share of its content terms the passages hold
    similarity: float | None = None  # MiniLM cosine to the closest sentence it cites (when measured)


Verdict = Literal["supported", "partly_supported", "unverified"]


class Confidence(float):
    """How sure an answerer is that its passages answer the question (0..1), yielded among its
    text deltas by an answerer that can tell (the extractive one); a model cannot. ``uncertain``:
    it answers all the same, marked as unsure; ``reason``: which check held it back."""

    uncertain: bool
    reason: str

    def __new__(cls, value: float, uncertain: bool = False, reason: str = "") -> Confidence:
        self = super().__new__(cls, value)
        self.uncertain, self.reason = uncertain, reason
        return self


DeclineReason = Literal["empty_index", "nothing_relevant", "not_in_documents", "error"]


class Answer(BaseModel):
    question: str
    standalone_question: str = ""  # the question after resolving the conversation history
    text: str
    declined: bool = False
    decline_reason: DeclineReason | None = None
    confidence: float | None = None  # the extractive answerer's; None for a model
    # the offline answerer's closest passage below the confidence to be sure, or a model answer whose
    # passages lack a name or number of the question (assistant.extractive.evidence_doubt)
    uncertain: bool = False
    reason: str | None = None  # why the answerer declined or is unsure ("the passages do not mention X")
    citations: list[Citation] = Field(default_factory=list)
    support: list[SentenceSupport] = Field(default_factory=list)  # each sentence, checked
    verdict: Verdict | None = None  # None: declined, or nothing claimed
    passages: list[Passage] = Field(default_factory=list)
    mode: Literal["extractive", "openai"] = "extractive"
    model: str = ""  # chat model name in openai mode
    error: str | None = None  # set when the model could not be reached; text says so kindly
    narrowed_to: list[str] = Field(default_factory=list)  # collections / documents the asker chose
    timings: Timings = Field(default_factory=Timings)

    @property
    def unsupported(self) -> list[str]:
        """Sentences of the answer that claim what no cited passage holds."""
        return [s.text for s in self.support if s.claim and not s.supported]


def file_url(passage: Passage) -> str:
    """The web app's read-only link to the passage's document; a PDF opens at the cited page."""
    return document_url(passage.source, passage.page)


def document_url(source: str, page: int | None = None) -> str:
    """The web app's read-only link to a document (``/files/...``), at ``page`` for a PDF."""
    url = "/files/" + quote(source, safe="/")
    if page is not None and source.lower().endswith(".pdf"):
        url += f"#page={page}"
    return url
