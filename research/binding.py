"""
Does a model know which named object is where? Its distance answers within one room.

abs_distance ("What is the distance in metres between the centres of the A and the B?") is asked of
every pair of seen objects in held-out rooms of three seen objects: three questions about the same
frames that differ only in the names. A model that finds each named object answers the three
differently, as the truth differs; one that has learned only how far apart things are in this room
answers them alike. Three figures:

    overall r       correlation of log answer and log truth over all the questions
    within-room r   the same after subtracting each room's mean (prediction and truth alike): only
                    what tells the pairs of one room apart is left; 0 for a model blind to the names
    nearest pair    how often the pair it answers nearest is the nearest (chance 1/3), and the 95 %
                    bootstrap interval over rooms of that minus 1/3

Relative distance ("which of A, B is closest to X?") needs exactly this: two distances from one
room, told apart.

    python -m research.binding runs/views/reasons_more2 [--n 400] [--batch 16]
"""
import itertools
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common.intervals import interval  # noqa: E402
from common.metrics import parse_answer  # noqa: E402
from data import synthetic  # noqa: E402
from eval import evaluate, load_checkpoint  # noqa: E402
from multiframe import views  # noqa: E402
from multiframe.eval_views import gap_interval, item, views_config  # noqa: E402
from research.reads import run_args  # noqa: E402


def pair_items(cfg: views.ViewsConfig, n_rooms: int) -> list:
    """abs_distance items for every pair of seen objects of the test rooms (of the first n_rooms) that
    show exactly three objects, through the base lens; scene = the room."""
    items = []
    for i in range(n_rooms):
        seed = synthetic.scene_seed('test', i)
        v, frames = views.sample_views(seed, cfg)
        objs = [o for o, _ in views.seen_objects(v)]
        if len(objs) != 3:
            continue
        K = np.broadcast_to(v.K, (cfg.frames, 3, 3))
        for a, b in itertools.combinations(objs, 2):
            d = float(np.linalg.norm(a.center - b.center))
            qa = dict(question=views.PHRASES['abs_distance'][0].format(a=a.name, b=b.name), answer=synthetic.fmt(d),
                      task='abs_distance', target=d, options=[], objects=[a.name, b.name], measured='')
            items.append(item(qa, frames, K, v.c2w, i, seed, 'base', 1.0))
    return items


def within_room(pred, true, room) -> np.ndarray:
    """(pred, true) with each room's mean subtracted from both: (2, n)."""
    out = np.stack([pred, true]).astype(float)
    for r in np.unique(room):
        out[:, room == r] -= out[:, room == r].mean(1, keepdims=True)
    return out


def binding_scores(pred, true, room, n_boot=1000, seed=0) -> dict:
    """The three figures of the module docstring from log answers pred, log truths true (n,) and rooms
    (n,), three questions per room; rooms with an unparsed answer (nan) are left out and counted."""
    pred, true, room = (np.asarray(x) for x in (pred, true, room))
    bad = np.unique(room[~np.isfinite(pred)])
    keep = ~np.isin(room, bad)
    pred, true, room = pred[keep], true[keep], room[keep]
    rooms = np.unique(room)
    if len(rooms) < 2:
        return dict(rooms=len(rooms), unparsed_rooms=len(bad), overall_r=np.nan, within_r=np.nan,
                    within_ci=(np.nan, np.nan), nearest=np.nan, nearest_gap=(np.nan, np.nan))
    p, t = within_room(pred, true, room)
    nearest = np.array([np.argmin(pred[room == r]) == np.argmin(true[room == r]) for r in rooms], float)
    by_room = [np.flatnonzero(room == r) for r in rooms]
    boot = []
    for draw in np.random.default_rng(seed).integers(len(rooms), size=(n_boot, len(rooms))):   # rooms resampled
        ix = np.concatenate([by_room[j] for j in draw])
        boot.append(np.corrcoef(p[ix], t[ix])[0, 1])
    return dict(rooms=len(rooms), unparsed_rooms=len(bad), overall_r=float(np.corrcoef(pred, true)[0, 1]),
                within_r=float(np.corrcoef(p, t)[0, 1]), within_ci=tuple(float(x) for x in interval(np.array(boot))),
                nearest=float(nearest.mean()), nearest_gap=gap_interval(nearest, np.full(len(rooms), 1 / 3)))


def binding(path: str, n: int = 400, batch_size: int = 16) -> dict:
    model, train_cfg = load_checkpoint(path)
    cfg = views_config(train_cfg)
    items = pair_items(cfg, n)
    recs = evaluate(model, items, batch_size, progress=False)
    value = [parse_answer('abs_distance', r['pred_text']) for r in recs]
    pred = np.log([x if isinstance(x, float) and x > 0 else np.nan for x in value])
    out = binding_scores(pred, np.log([it['target'] for it in items]), [it['scene'] for it in items])
    return out


def main(argv=None):
    args = run_args(argv, __doc__, 400, 'held-out rooms (the test split); those of three seen objects are asked')
    for path in args.run:
        r = binding(path, args.n, args.batch)
        lo, hi = r['within_ci']
        glo, ghi = r['nearest_gap']
        print(f"{path}: {r['rooms']} rooms of three objects ({r['unparsed_rooms']} left out: an answer unparsed)\n"
              f"  overall r {r['overall_r']:.2f}   within-room r {r['within_r']:+.2f} [{lo:+.2f}, {hi:+.2f}]   "
              f"nearest pair {r['nearest']:.2f} (chance 0.33; {r['nearest'] - 1 / 3:+.2f} [{glo:+.2f}, {ghi:+.2f}])")


if __name__ == '__main__':
    main()
