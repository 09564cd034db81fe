"""Benchmarks: each prints its figures (run from the repository root as python -m bench.NAME)."""
