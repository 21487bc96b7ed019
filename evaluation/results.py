"""What an evaluation run produces, per question and in all: the types the runner fills and the
report writers read (kept apart so neither imports the other)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PassageResult(BaseModel):
    n: int
    source: str
    location: str
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None
    relevant: bool | None = None  # None: the question names no reference contexts or sources
    text: str


class CitationResult(BaseModel):
    n: int
    source: str
    location: str
    quote: str = ""


class QuestionResult(BaseModel):
    """One question as asked and answered, with its scores (None: does not apply)."""

    id: str
    question: str
    history: list[dict[str, str]] = Field(default_factory=list)
    answerable: bool = True
    reference_answer: list[str] = Field(default_factory=list)
    answer_must_include: list[list[str]] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    standalone_question: str = ""
    answer: str = ""
    declined: bool = False
    verdict: str | None = None  # "supported", "partly_supported" or "unverified" (assistant.claims)
    unsupported: list[str] = Field(default_factory=list)  # sentences no cited passage holds
    uncertain: bool = False  # answered with the closest passage, marked as unsure
    reason: str | None = None  # why the answerer declined or is unsure
    error: str | None = None
    citations: list[CitationResult] = Field(default_factory=list)
    passages: list[PassageResult] = Field(default_factory=list)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    missing: list[list[str]] = Field(default_factory=list)  # answer_must_include groups not found
    timings: dict[str, float | None] = Field(default_factory=dict)
    judge_reason: str = ""
    quality: float = 0.0  # the score the report ranks "worst questions" by

    @property
    def correct_refusal(self) -> bool:
        return self.declined != self.answerable

    @property
    def flagged(self) -> bool:
        """Declined, shown with the warning that no passage holds what it says, or marked unsure."""
        return self.declined or self.verdict == "unverified" or self.uncertain


class EvaluationReport(BaseModel):
    """Everything a run produced; ``summary`` holds the averaged metrics by name."""

    name: str
    questions_file: str
    format: str
    created_at: str
    mode: str
    model: str = ""
    k: int
    settings: dict[str, Any]
    corpus: dict[str, Any]
    summary: dict[str, float | None]
    counts: dict[str, int]
    notes: list[str] = Field(default_factory=list)
    results: list[QuestionResult]
    baseline: dict[str, Any] | None = None
    paths: dict[str, str] = Field(default_factory=dict)  # report files written: json, md, html
    wall_s: float = 0.0
