"""What ingestion and answering share: settings, embeddings and the knowledge base store.

Importing this package also switches off the telemetry of the libraries we use, so that
nothing phones home (Chroma, Hugging Face, Gradio).
"""

import os

for _name, _value in {
    "ANONYMIZED_TELEMETRY": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)

from kb.settings import ConfigError, Settings, load_settings  # noqa: E402
from kb.store import DocumentRecord, FileProblem, IngestBusy, KnowledgeBase  # noqa: E402

__all__ = [
    "ConfigError",
    "DocumentRecord",
    "FileProblem",
    "IngestBusy",
    "KnowledgeBase",
    "Settings",
    "load_settings",
]
