"""The one settings object, read once at start and passed down.

Every knob is an ``ASSISTANT_*`` environment variable (or a line in ``.env``); the
OpenAI-compatible endpoint uses the standard ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """Bad configuration: the message is one line that says what to fix."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    # --- where things live -------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="Chroma files, record store, uploads, feedback.")
    corpus_dir: Path = Field(PROJECT_ROOT / "corpus", description="The shipped knowledge base.")
    collection: str = Field("documents", min_length=3, max_length=63)
    chroma_host: str | None = Field(None, description="Use a Chroma server instead of embedded files.")
    chroma_port: int = Field(8000, ge=1, le=65535)
    record_db_url: str | None = Field(
        None, description="SQLAlchemy URL of the record store; default: SQLite in the data dir."
    )

    # --- embeddings -----------------------------------------------------------------
    embeddings: Literal["local", "openai"] = "local"
    openai_embedding_model: str = "text-embedding-3-small"
    embedding_batch_size: int = Field(32, ge=1, le=2048)

    # --- ingestion ------------------------------------------------------------------
    chunk_tokens: int = Field(200, ge=32, le=254, description="Chunk size in embedding tokens.")
    chunk_overlap: int = Field(32, ge=0, le=128)
    max_file_mb: float = Field(50.0, gt=0)
    lock_timeout_s: float = Field(600.0, ge=0, description="How long an ingest waits for another.")
    embed_window_chunks: int = Field(
        1024, ge=1, description="Chunks of several files embedded in one pass before they are indexed."
    )
    max_pdf_pages: int = Field(5000, ge=1, description="PDFs with more pages are refused by name.")
    max_unzipped_mb: float = Field(
        200.0, gt=0, description="DOCX and other zip-based files that inflate beyond this are refused."
    )
    max_file_seconds: float = Field(
        3600.0, gt=0, description="A file that takes longer to read, chunk and index fails by name."
    )
    ocr: bool = Field(True, description="Read PDF pages with no text layer, and images, by OCR (Tesseract).")

    # --- retrieval ------------------------------------------------------------------
    top_k: int = Field(5, ge=1, le=50, description="Passages given to the answerer.")
    fetch_k: int = Field(30, ge=1, le=500, description="Candidates from each retriever before fusion.")
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.5, ge=0, description="Measured best on SQuAD and the Solana paper.")
    relevance_floor: float = Field(0.2, ge=0, le=1, description="Minimum dense similarity to use a passage.")

    # --- answering ------------------------------------------------------------------
    extractive_min_confidence: float | None = Field(
        None, ge=0, le=1, description="Extractive mode declines below this confidence (default: fitted)."
    )
    answer_mode: Literal["auto", "extractive", "openai"] = "auto"
    unverified_answers: Literal["mark", "extractive"] = Field(
        "mark", description="A model answer none of whose claims the passages hold: marked, or replaced."
    )
    structured_answers: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Ask the model for JSON answers (response_format); auto: plain text if the server refuses.",
    )
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "ASSISTANT_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("OPENAI_BASE_URL", "ASSISTANT_OPENAI_BASE_URL")
    )
    chat_model: str = "gpt-4o-mini"
    temperature: float = Field(0.0, ge=0, le=2)
    request_timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    answer_max_tokens: int = Field(800, ge=16, le=32_768, description="Longest answer a model writes.")
    condense_max_tokens: int = Field(100, ge=8, le=2_000, description="Longest follow-up rewrite.")
    judge_max_tokens: int = Field(300, ge=16, le=4_000, description="Longest judge reply (evaluation).")
    stop_sequences: list[str] = Field(
        default_factory=list, max_length=4, description="Stop sequences sent with every model call."
    )

    # --- web app --------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    concurrency_limit: int = Field(8, ge=1, le=256, description="Answers computed at once, all routes.")
    queue_size: int = Field(64, ge=0, le=10_000, description="Questions that may wait for a free slot.")
    queue_timeout_s: float = Field(60.0, gt=0, description="Longest wait for a slot before a 503.")
    public_url: str | None = Field(
        None, description="The URL users reach the app at (https: Secure cookies)."
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 90, description="How long a sign-in lasts.")
    users_file: Path | None = Field(None, description="JSON file of users with hashed passwords.")
    users: str | None = Field(None, description="Inline users: 'name:role:argon2hash,...'.")
    require_login: bool = Field(False, description="Viewers must log in to chat.")
    max_upload_mb: float = Field(50.0, gt=0)
    watch: bool = Field(False, description="Ingest changes to the corpus and uploads folders as they happen.")
    example_questions: list[str] = Field(
        default_factory=lambda: [
            "Which partners make up the INNAXE consortium?",
            "What results did the INNAXE project highlight?",
            "How many responses did the joint survey get?",
            "What is the Joint Programme?",
        ],
        description="Shown under the chat (JSON list in the environment).",
    )

    @field_validator("record_db_url")
    @classmethod
    def _db_url(cls, v: str | None) -> str | None:
        if v:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(v)
            except ArgumentError:
                raise ValueError("not a database URL (e.g. postgresql+psycopg://user@host/db)") from None
        return v or None

    @field_validator("openai_base_url", "public_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v or None

    @property
    def effective_answer_mode(self) -> Literal["extractive", "openai"]:
        if self.answer_mode != "auto":
            return self.answer_mode
        return "openai" if (self.openai_api_key or self.openai_base_url) else "extractive"

    def openai_client_kwargs(self) -> dict:
        """Connection settings shared by every OpenAI-compatible client (chat, embeddings, judge)."""
        return {
            "api_key": self.openai_api_key or "not-needed",  # local servers accept any key
            "base_url": self.openai_base_url,
            "timeout": self.request_timeout_s,
            "max_retries": self.max_retries,
        }

    def model_limits(self, max_tokens: int) -> dict:
        """``ChatOpenAI`` arguments that bound one kind of model call. OpenAI takes
        ``max_completion_tokens`` (what langchain sends for ``max_tokens``); the compatible
        servers (llama.cpp's, vLLM, Ollama) take ``max_tokens`` and would silently ignore the
        other, so for them it goes in the body as it is."""
        limits: dict = {"stop": list(self.stop_sequences)} if self.stop_sequences else {}
        if self.openai_base_url:
            limits["extra_body"] = {"max_tokens": max_tokens}
        else:
            limits["max_tokens"] = max_tokens
        return limits

    @property
    def record_url(self) -> str:
        return self.record_db_url or f"sqlite:///{(self.data_dir / 'records.sqlite').resolve()}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"


def load_settings(**overrides) -> Settings:
    """Read the environment and ``.env`` once; turn any mistake into one clear line.

    Tests pass ``_env_file=None`` so a developer's ``.env`` does not leak in.
    """
    try:
        return Settings(**overrides)
    except SettingsError as exc:  # a list or dict setting that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        env = f"ASSISTANT_{field.group(1).upper()}" if field else "a setting"
        raise ConfigError(f'invalid setting {env}: not valid JSON (e.g. ["first", "second"])') from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        env = field if field.isupper() else f"ASSISTANT_{field.upper()}"
        shown = "" if "key" in field.lower() else f" (got {err.get('input')!r})"
        raise ConfigError(f"invalid setting {env}: {err['msg']}{shown}") from None
