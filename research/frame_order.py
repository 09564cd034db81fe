"""
How does a model know which frame comes first? Appearance order ("Which object is seen first?
A. ... B. ...") asked of held-out rooms with the frames in their order and their poses changed:

    own        each frame with its own pose
    rolled     the poses rolled by one frame: frame k gets frame k−1's pose (the first gets the last's)
    reversed   the poses in the reverse order

The pixels, the frame markers of the prompt ("Frame 1: ... Frame 2: ...") and the token positions
stay. A model that orders its frames by those answers as before; one that orders them by their
poses (E_cam's Plücker moments carry where each camera stood, and the path starts under the world
origin) follows the poses, and its accuracy falls below chance where they disagree. A camera-blind
model cannot see the poses: its three rows are the same, a built-in control. With a --reasons run,
the first frames it states are counted too.

    python -m research.frame_order runs/views/reasons_more [--n 512] [--batch 16]
"""
import collections
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from eval import evaluate, load_checkpoint  # noqa: E402
from multiframe import views  # noqa: E402
from multiframe.eval_views import base_items, gap_interval, views_config  # noqa: E402
from research.reads import run_args  # noqa: E402

POSES = dict(own=lambda c2w: c2w, rolled=lambda c2w: c2w.roll(1, 0), reversed=lambda c2w: c2w.flip(0))


def frame_order(path: str, n: int = 512, batch_size: int = 16) -> dict:
    """{how: dict(acc, scores (per question), stated (a Counter of the first frames it states))} over the
    appearance-order questions of n held-out rooms (the base lens)."""
    model, train_cfg = load_checkpoint(path)
    cfg = views_config(train_cfg)
    items = base_items(cfg, n, ('appearance_order',))
    out = {}
    for how, pose in POSES.items():
        recs = evaluate(model, [dict(it, c2w=pose(it['c2w'])) for it in items], batch_size, progress=False)
        stated = collections.Counter(int(x) for r in recs for x in views.read_reasons(r['pred_text']) or [])
        out[how] = dict(acc=float(np.mean([r['acc'] for r in recs])), scores=[r['acc'] for r in recs], stated=stated)
    return out


def main(argv=None):
    args = run_args(argv, __doc__, 512, 'held-out rooms (the test split)')
    for path in args.run:
        res = frame_order(path, args.n, args.batch)
        print(f"{path}: appearance order, {len(res['own']['scores'])} questions")
        for how, r in res.items():
            lo, hi = gap_interval(r['scores'], res['own']['scores'])
            first = ', '.join(f'{k}: {c}' for k, c in sorted(r['stated'].items()))
            print(f"  poses {how:9s} accuracy {r['acc']:.2f}  − own {r['acc'] - res['own']['acc']:+.2f} "
                  f"[{lo:+.2f}, {hi:+.2f}]" + (f'  first frames stated ({first})' if first else ''))


if __name__ == '__main__':
    main()
