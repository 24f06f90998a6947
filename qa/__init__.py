"""Extractive question answering over news articles."""
