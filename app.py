"""``python app.py``: the web app on ASSISTANT_HOST:ASSISTANT_PORT (default 127.0.0.1:7860).

On start it brings ``corpus/`` into the index (cheap when nothing changed), then serves the chat
at "/", ``/healthz``, ``POST /api/ask`` and ``/files/<source>``. Everything is in ``webapp/``.
"""

from __future__ import annotations

import logging
import sys

import kb  # noqa: F401  (switches library telemetry off before anything else loads)
from kb.settings import ConfigError, load_settings


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates at once its own heap (up to 8 per core) and keeps
    their freed memory: answering threads grew the process by hundreds of MB that never came
    back. Two heaps cost nothing measurable here. (No-op where the C library is not glibc.)"""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX


def main() -> int:
    limit_malloc_arenas()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        from webapp.services import Services

        services = Services.start(settings)  # stores and models: a bad setting fails before Gradio loads
        from webapp.server import create_app

        app = create_app(settings, services)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    print(f"Documents assistant on http://{settings.host}:{settings.port}", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
