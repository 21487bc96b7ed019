"""One limit on answers computed at once, shared by every answering route.

The Gradio chat, ``POST /api/ask`` (and the API routes to come) all take a slot here before they
retrieve and answer. At most ``ASSISTANT_CONCURRENCY_LIMIT`` answers run at once; up to
``ASSISTANT_QUEUE_SIZE`` more wait (at most ``ASSISTANT_QUEUE_TIMEOUT_S``), and any beyond that
are refused at once with ``Busy`` (HTTP 429, or 503 after a wait that timed out), both with a
``Retry-After``. Bounding the answers in flight is what bounds memory: each one holds model
activations, passages and parses, and a thread pool of 40 answering at once grew the process
by gigabytes.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

from kb.settings import Settings


class Busy(Exception):
    """No slot: ``status`` is 429 (the waiting line is full) or 503 (waited too long)."""

    def __init__(self, status: int, retry_after_s: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


BUSY_TEXT = "The assistant is answering many questions right now; please ask again in a few seconds."


class AnswerGate:
    """A counting semaphore with a bounded, timed waiting line (thread-safe, blocking)."""

    def __init__(self, limit: int, queue_size: int, timeout_s: float) -> None:
        self.limit = limit
        self.queue_size = queue_size
        self.timeout_s = timeout_s
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._waiting = 0
        self._running = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> AnswerGate:
        return cls(settings.concurrency_limit, settings.queue_size, settings.queue_timeout_s)

    @property
    def capacity(self) -> int:
        """Requests the gate holds at most: running plus waiting."""
        return self.limit + self.queue_size

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"running": self._running, "waiting": self._waiting, "limit": self.limit}

    def _retry_after(self) -> int:
        # a rough guess: the line ahead of a new caller, a second per answer per slot
        return max(1, math.ceil((self._waiting + 1) / self.limit))

    def check_room(self) -> None:
        """Raise ``Busy`` (429) at once when the waiting line is full: lets an async route refuse
        before it takes a worker thread for a request that could only be refused there."""
        with self._lock:
            if self._running >= self.limit and self._waiting >= self.queue_size:
                raise Busy(429, self._retry_after(), BUSY_TEXT)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one answering slot for the ``with`` block, waiting in line if need be."""
        with self._lock:
            if self._slots.acquire(blocking=False):
                self._running += 1
                acquired = True
            elif self._waiting >= self.queue_size:
                raise Busy(429, self._retry_after(), BUSY_TEXT)
            else:
                self._waiting += 1
                acquired = False
        if not acquired:
            try:
                acquired = self._slots.acquire(timeout=self.timeout_s)
            finally:
                with self._lock:
                    self._waiting -= 1
                    if acquired:
                        self._running += 1
            if not acquired:
                raise Busy(503, self._retry_after(), BUSY_TEXT)
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
            self._slots.release()
