"""Utilities: gguf.py turns a GGUF LLM into a folder that loads offline."""
