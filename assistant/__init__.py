"""Answering questions from the knowledge base: ``Assistant.from_settings().ask(question)``."""

from assistant.core import Assistant
from assistant.models import Answer, Citation, Passage

__all__ = ["Answer", "Assistant", "Citation", "Passage"]
