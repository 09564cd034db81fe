"""The synthetic world: the pinhole rules (pinhole.py), rooms of metric objects (scenes.py) and the exact renderer (raycast.py)."""
