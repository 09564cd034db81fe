"""The data: questions and answers over scenes (synthetic.py), tokens and prompts (tokens.py), loaders laid out by sample index (loader.py), real Omni3D data (omni3d.py)."""
