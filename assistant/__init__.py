"""Answering questions from the knowledge base."""
