"""The multi-frame extension: several posed frames of a room (views.py), their items (items.py), training (train_views.py) and evaluation (eval_views.py)."""
