"""Shared plumbing: checkpoints, the optimiser, metrics as the peers compute them, bootstrap intervals and reports."""
