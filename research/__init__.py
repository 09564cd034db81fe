"""Probes used by the research log (docs/log.md): why a model does or does not answer. Never imported by the chapters."""
