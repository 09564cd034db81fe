"""
Is the zoom-out loss about the camera or about the pixels? Depth MRA by the queried object's size
in pixels, camera by camera of a sweep.

A zoom by s about the principal point scales an object's image by s: at s = 0.5 it covers a quarter
of the pixels it covers at s = 1, often less than one 16-pixel patch. Two readings of a model that
loses accuracy at s < 1:
    pixels   it reads depth worse from fewer pixels, whatever the lens: at equal pixel size, an
             object shrunk by the zoom scores like an object that is small at s = 1;
    camera   it misreads the zoomed K: at equal pixel size, the zoomed-out object scores worse.
So: bin every answer by the object's projected size p = sqrt(box width · box height) in pixels at its
own camera, and compare the cameras within a bin (bootstrap over the answers of a cell, 95 %).

A third reading, tested with --warped: the lens it was trained on. Training zooms out by warping
(augment.zoom: the s = 1 image shrunk about the principal point, the border padded with black),
while the sweep renders a zoomed-out camera exactly (a wider view of the room). --warped asks the
same test scenes through both at s < 1: if the warped ones score like s = 1, the loss is the gap
between the augmentation's zoom-out and a real wide lens, not the reading of K.

    python -m research.resolution out/default_test                        # an eval.py --camera-shift folder
    python -m research.resolution out/default_test --warped runs/default --n 256
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import augment  # noqa: E402
import eval as evaluation  # noqa: E402
from common.checkpoint import read_json  # noqa: E402
from common.intervals import interval  # noqa: E402
from world import pinhole, scenes  # noqa: E402

EDGES = (0, 6, 9, 12, 16, 24, 1e9)   # pixels: object sizes p, bins [a, b)


def pixel_size(scene, s: float) -> float:
    """sqrt of the area of the queried (only) object's projected 3D box through the zoom s, in pixels."""
    o = scene.objects[0]
    K = pinhole.zoom_K(scene.K, s)
    u0, v0, u1, v1 = scenes._box2d(K, scenes.box_corners(o.center, o.size, o.R_cam if o.R_cam is not None else o.yaw))
    return float(np.sqrt(max(u1 - u0, 0) * max(v1 - v0, 0)))


def scene_config(folder: str):
    """(label, SceneConfig) of the one run an eval.py output folder holds."""
    res = read_json(os.path.join(folder, 'results.json'))
    if len(res['results']) != 1:
        raise ValueError(f'{folder}: results of {len(res["results"])} runs; this probe reads one')
    (label, run), = res['results'].items()
    sc = run['scene_config']
    return label, scenes.SceneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in sc.items()})


def sized_records(folder: str) -> list:
    """The depth answers of the zoom cameras, each with the object's pixel size at its camera."""
    label, cfg = scene_config(folder)
    recs = [json.loads(line) for line in open(os.path.join(folder, f'records_{label}.jsonl'))]
    recs = [r for r in recs if r['task'] == 'depth' and r['camera'].startswith('zoom_')]
    cache = {}
    for r in recs:
        if r['seed'] not in cache:                      # seven zooms of one scene: drawn once
            cache[r['seed']] = scenes.sample_scene(r['seed'], cfg)
        scene = cache[r['seed']]
        if len(scene.objects) != 1:
            raise ValueError(f'{folder}: scene {r["scene"]} has {len(scene.objects)} objects; this probe asks one-object scenes')
        r['pixels'] = pixel_size(scene, r['s'])
    return recs


def by_size(recs, n_boot: int = 1000, seed: int = 0) -> dict:
    """{(camera, bin): (n, mean MRA, lo, hi)}: bootstrap over the answers of each cell."""
    rng, out = np.random.default_rng(seed), {}
    for cam in sorted({r['camera'] for r in recs}, key=lambda c: float(c.split('_')[1])):
        for a, b in zip(EDGES[:-1], EDGES[1:]):
            m = np.array([r['mra'] for r in recs if r['camera'] == cam and a <= r['pixels'] < b])
            if len(m) >= 10:
                draws = rng.choice(m, (n_boot, len(m))).mean(1)
                lo, hi = interval(draws[:, None])
                out[cam, (a, b)] = (len(m), float(m.mean()), float(lo[0]), float(hi[0]))
    return out


def warped_against_rendered(ckpt: str, cfg, n: int, zooms=(0.5, 0.67, 0.8)) -> dict:
    """{s: (MRA rendered, MRA warped, difference [lo, hi])} on the depth question of n test scenes:
    the zoomed camera rendered exactly against the s = 1 render warped by augment.zoom (black border)."""
    model, _ = evaluation.load_checkpoint(ckpt)
    sweep = [c for c in evaluation.camera_sweep(cfg, (1.0,) + tuple(zooms), (), profiles=False)]
    items = evaluation.build_eval_items(cfg, sweep, n, ['depth'])
    base = [it for it in items if it['s'] == 1.0]
    out, rng = {}, np.random.default_rng(0)
    for s in zooms:
        rendered = [it for it in items if it['s'] == s]
        warped = []
        for it in base:
            image, K = augment.zoom(it['image'], it['K'], s)
            warped.append(dict(it, image=image, K=K.float(), camera=f'warp_{s:.2f}', s=s))
        a = np.array([r['mra'] for r in evaluation.evaluate(model, rendered, progress=False)])
        b = np.array([r['mra'] for r in evaluation.evaluate(model, warped, progress=False)])
        idx = rng.integers(0, len(a), (1000, len(a)))                         # paired: the same scenes
        lo, hi = interval((b[idx] - a[idx]).mean(1)[:, None])
        out[s] = (float(a.mean()), float(b.mean()), float(b.mean() - a.mean()), float(lo[0]), float(hi[0]))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('folder', help='an eval.py --camera-shift output folder of one run (results.json, records_*.jsonl)')
    p.add_argument('--warped', metavar='RUN', help="the run that folder scored: also ask its test scenes through "
                   "augment.zoom's warp at s < 1")
    p.add_argument('--n', type=int, default=256, help='--warped: test scenes')
    args = p.parse_args(argv)
    if args.warped:
        print('depth MRA at s < 1, the zoomed camera rendered against the s = 1 image warped (augment.zoom)\n')
        print('| s | rendered | warped | warped − rendered [95 %] |\n|---|---|---|---|')
        for s, (a, b, d, lo, hi) in warped_against_rendered(args.warped, scene_config(args.folder)[1], args.n).items():
            print(f'| {s:.2f} | {a:.2f} | {b:.2f} | {d:+.2f} [{lo:+.2f}, {hi:+.2f}] |')
        print()
    cells = by_size(sized_records(args.folder))
    cams = list(dict.fromkeys(c for c, _ in cells))
    bins = [(a, b) for a, b in zip(EDGES[:-1], EDGES[1:])]
    print('depth MRA [95 %] (answers) by the object\'s size in pixels (rows) and camera (columns)\n')
    print('| pixels | ' + ' | '.join(cams) + ' |\n|---|' + '---|' * len(cams))
    for a, b in bins:
        row = [f'{cells[c, (a, b)][1]:.2f} [{cells[c, (a, b)][2]:.2f}, {cells[c, (a, b)][3]:.2f}] ({cells[c, (a, b)][0]})'
               if (c, (a, b)) in cells else '' for c in cams]
        print(f"| {a:g}–{b:g} | " + ' | '.join(row) + ' |' if b < 1e9 else f"| ≥ {a:g} | " + ' | '.join(row) + ' |')


if __name__ == '__main__':
    main()
