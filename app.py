"""``python app.py``: the web app on ASSISTANT_HOST:ASSISTANT_PORT (default 127.0.0.1:7860).

It serves at once from the index as it is, and brings ``corpus/`` into the index in the
background (cheap when nothing changed): the chat at "/", sign-in, ``/healthz``, ``POST /api/ask``
and ``/files/<source>``. Everything is in ``webapp/``.
"""

from __future__ import annotations

import logging
import sys

import kb  # noqa: F401  (switches library telemetry off before anything else loads)
from kb.settings import ConfigError, load_settings


def main() -> int:
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
