"""
Is the geometry head's object depth accurate? The depth a run's geometry head predicts for the
queried object, read without the LLM: on each scene (eval.py's items, val or test split, through
the zooms), the object-depth channel exp(g_2) averaged over the tokens the head itself calls
object (predicted object fraction g_1 >= 0.25; the token of largest g_1 if none), rounded to two
decimals as a text answer is, and scored as research/cnn_reference.py scores the CNN. Next to the
LLM's answers it tells whether the vision tower or the transcription into digits limits a run.

    OMP_NUM_THREADS=1 python -m research.geo_probe runs/pilots/NAME --split val --n-scenes 256
"""
import argparse
import json

import numpy as np
import torch

import eval as evaluation
from research.cnn_reference import score


@torch.no_grad()
def probe(model, items, batch=64):
    out = []
    for k in range(0, len(items), batch):
        its = items[k:k + batch]
        images, K = torch.stack([it['image'] for it in its]), torch.stack([it['K'] for it in its])
        c2w = torch.stack([it['c2w'] for it in its])
        _, geo = model.visual_tokens(images, K, c2w)                       # (B, N, GEO_DIM)
        frac, logz = geo[..., 1], geo[..., 2]
        w = (frac >= 0.25).float()
        w = torch.where(w.sum(1, keepdim=True) > 0, w, (frac == frac.max(1, keepdim=True).values).float())
        out += ((logz * w).sum(1) / w.sum(1)).exp().tolist()
    return np.array(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('ckpt')
    p.add_argument('--split', default='val', choices=('val', 'test'))
    p.add_argument('--n-scenes', type=int, default=256)
    p.add_argument('--zooms', default='0.5,1.0,2.0')
    p.add_argument('--out', default='')
    a = p.parse_args(argv)
    model, train_cfg = evaluation.load_checkpoint(a.ckpt)
    model.eval()
    zooms = [float(z) for z in a.zooms.split(',')]
    scene_cfg = evaluation.eval_scene_config(train_cfg, zooms=zooms, shifts=evaluation.SHIFTS)
    sweep = evaluation.camera_sweep(scene_cfg, zooms, shifts=(), profiles=False)
    items = evaluation.build_eval_items(scene_cfg, sweep, a.n_scenes, ('depth',), a.split)
    res = {}
    for name, s, _ in sweep:
        its = [it for it in items if it['camera'] == name]
        res[name] = dict(s=s, **score(probe(model, its), np.array([it['target'] for it in its])))
    print(json.dumps(res, indent=1))
    if a.out:
        json.dump(res, open(a.out, 'w'), indent=1)


if __name__ == '__main__':
    main()
