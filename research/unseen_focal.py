"""
What does a camera embedding trained on one camera do at a focal length it never saw?

Without augmentation every training image has the same K, so the camera embedding E_cam sees one
input and learns nothing about K; at a test zoom s its input moves off that point (log fx/W by
log s) and E_cam adds whatever its random-ish response there is to every visual token. The
ablation's shortcut index fits one slope over the zooms, and such an off-camera response can pull
that slope anywhere (it shows as a wide interval over seeds), while the model reads no K at all.

The test: for each run and zoom, the depth question of n test scenes (the ablation's scenes,
rendered through the zoomed camera) answered twice:
    true K      the zoomed camera's K, as eval.py gives it;
    training K  the same pixels with the training camera's K: E_cam sees its training input.
Reported: the mean log(ẑ/z) of each, with a 95 % bootstrap interval over scenes, and their paired
difference (what E_cam's response to the new K adds). A camera-blind model answers −log s with
either K; a model that reads K answers 0 with the true K and −log s with the training one; an
embedding that only extrapolates moves the true-K answers away from −log s with no sign of 0.

    python -m research.unseen_focal runs/ablation/camera_embed_s0 runs/ablation/camera_embed_s1 [--n 256]
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import eval as evaluation  # noqa: E402
from common.intervals import mean_interval  # noqa: E402


def log_errors(records) -> np.ndarray:
    """log(ẑ/z) of each depth answer; nan where the answer did not parse to a positive depth."""
    return np.array([math.log(r['pred'] / r['target']) if r['pred'] and r['pred'] > 0 else np.nan for r in records])


def with_training_K(items) -> list:
    """Each item with its scene's s = 1 camera: the pixels stay zoomed, the embedding is told nothing changed."""
    K1 = {it['seed']: it['K'] for it in items if it['s'] == 1.0}
    return [dict(it, K=K1[it['seed']]) for it in items]


def probe(run: str, n: int, zooms=(0.5, 1.0, 2.0)) -> dict:
    """{s: dict(true=(mean, lo, hi), train=..., diff=...)} of mean log(ẑ/z) for one run."""
    model, train_cfg = evaluation.load_checkpoint(run)
    cfg = evaluation.eval_scene_config(train_cfg, image_size=model.image_size, zooms=evaluation.ZOOMS,
                                       shifts=evaluation.SHIFTS)        # the sweep's scenes, as the ablation asks them
    sweep = evaluation.camera_sweep(cfg, tuple(zooms), (), profiles=False)
    items = evaluation.build_eval_items(cfg, sweep, n, ['depth'])
    true = log_errors(evaluation.evaluate(model, items, progress=False))
    train = log_errors(evaluation.evaluate(model, with_training_K(items), progress=False))
    s_of = np.array([it['s'] for it in items])
    out = {}
    for s in zooms:
        a, b = true[s_of == s], train[s_of == s]
        out[s] = dict(true=mean_interval(a), train=mean_interval(b), diff=mean_interval(a - b))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('runs', nargs='+', help='train.py run folders (or checkpoints) of camera-embedding models')
    p.add_argument('--n', type=int, default=256, help='test scenes (the first n of the test split)')
    p.add_argument('--zooms', default='0.5,1,2', help='comma-separated s')
    args = p.parse_args(argv)
    zooms = tuple(float(z) for z in args.zooms.split(','))
    cell = lambda m: f'{m[0]:+.2f} [{m[1]:+.2f}, {m[2]:+.2f}]'   # noqa: E731
    print('mean log(ẑ/z) of the depth answers [95 %]; a camera-blind model: −log s with either K\n')
    print('| run | s | −log s | true K | training K | true − training |\n|---|---|---|---|---|---|')
    results = {}
    for run in args.runs:
        results[run] = probe(run, args.n, zooms)
        for s, r in results[run].items():
            print(f"| {os.path.basename(run.rstrip('/'))} | {s:g} | {-math.log(s):+.2f} | {cell(r['true'])} | "
                  f"{cell(r['train'])} | {cell(r['diff'])} |")
    return results


if __name__ == '__main__':
    main()
