"""Ingestion: files -> documents -> chunks -> index."""
