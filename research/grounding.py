"""
Can a model name what each frame shows? The grounding question (views.frame_listing, trained with
--tasks ...,frame_objects) asked of held-out rooms, its greedy answer scored per frame:

    exact        the frame's list exactly right (names and left-to-right order)
    names F1     2|A ∩ B| / (|A| + |B|) between the true and the answered names of the frame
    colours F1   the same over the colours alone (the one word that tells a room's objects apart)
    next to each, the same score of the best constant answer (the listing most common in the rooms)

Binding a name to its pixels is what counting and the three choices need (docs/multiframe.md).
A model that cannot list the objects of a frame cannot pick the one a question names.

    python -m research.grounding runs/views/obj_full [--n 96] [--batch 16]   # a train.py run or checkpoint
"""
import collections
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from eval import load_checkpoint  # noqa: E402
from multiframe.eval_views import base_items, views_config  # noqa: E402
from research.reads import run_args  # noqa: E402


def frames_of(listing: str) -> dict:
    """'1: a, b; 2: none' -> {'1': ['a', 'b'], '2': []} (malformed parts dropped: they score 0)."""
    out = {}
    for row in listing.split(';'):
        if ':' in row:
            k, names = row.split(':', 1)
            out[k.strip()] = [n.strip() for n in names.split(',') if n.strip() not in ('', 'none')]
    return out


def f1(true: list, got: list) -> float:
    a, b = collections.Counter(true), collections.Counter(got)
    return 1.0 if not a and not b else 2 * sum((a & b).values()) / (sum(a.values()) + sum(b.values()))


def scores(truth: str, answer: str) -> np.ndarray:
    """(frames, 3): exact, names F1, colours F1 per frame of the true listing."""
    t, a = frames_of(truth), frames_of(answer)
    colour = lambda names: [n.split()[0] for n in names]
    return np.array([[a.get(k) == v, f1(v, a.get(k, [])), f1(colour(v), colour(a.get(k, [])))]
                     for k, v in t.items()], float)


def grounding(path: str, n: int = 96, batch_size: int = 16) -> dict:
    """{'model': (3,) mean exact / names F1 / colours F1 per frame, 'constant': the same of the most
    common listing, 'examples': [(truth, answer)]} over n held-out rooms."""
    model, train_cfg = load_checkpoint(path)
    cfg = views_config(train_cfg)
    items = base_items(cfg, n, ('frame_objects',))
    answers = []
    for s in range(0, n, batch_size):
        b = items[s:s + batch_size]
        answers += model.generate(torch.stack([it['image'] for it in b]), torch.stack([it['K'] for it in b]),
                                  [it['question'] for it in b], max_new_tokens=64,
                                  c2w=torch.stack([it['c2w'] for it in b]))
    truths = [it['answer'] for it in items]
    constant = collections.Counter(truths).most_common(1)[0][0]
    return dict(model=np.concatenate([scores(t, a) for t, a in zip(truths, answers)]).mean(0),
                constant=np.concatenate([scores(t, constant) for t in truths]).mean(0),
                examples=list(zip(truths, answers))[:4])


def main(argv=None):
    args = run_args(argv, __doc__, 96, 'held-out rooms (the test split)')
    for path in args.run:
        res = grounding(path, args.n, args.batch)
        print(f'{path}: per frame, model (constant)  exact {res["model"][0]:.2f} ({res["constant"][0]:.2f})  '
              f'names F1 {res["model"][1]:.2f} ({res["constant"][1]:.2f})  '
              f'colours F1 {res["model"][2]:.2f} ({res["constant"][2]:.2f})')
        for truth, answer in res['examples']:
            print(f'  {truth}  |  {answer}')


if __name__ == '__main__':
    main()
