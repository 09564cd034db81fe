"""
A reference for the MLLM's depth answers: a plain CNN that regresses log depth from the image alone.

What it answers. The depth task asks for z, the camera-frame depth of the (one) object's centre.
This CNN sees only the pixels (no K, no question, no teacher) of freshly rendered TRAIN scenes of
the default world (loader.data_config(train.TrainConfig()): the training camera, no zoom
augmentation), and is scored like the MLLM: on val (choices) or test scenes, its answers rounded to
two decimals as the MLLM's text answers are, MRA as metrics.mra, the depth gain d log ẑ / d log z
(metrics.depth_gain), mean |log ẑ/z|, and the number of distinct answers. Through zooms
(eval.camera_sweep, exact renders at the zoomed K) it drifts by about −log s, since it sees no K:
the figure says what a camera-blind regressor does.

    net    4 × [conv 3×3 stride 2, GELU] of 32/64/96/128 channels  (128 px -> 8×8)
           avg-pool to 4×4 -> 4·4·128 = 2048 -> linear 128, GELU -> linear 1 = log ẑ     (0.45 M parameters)
    loss   L1 on log z; AdamW lr 2e-3 (cosine to 0 over the budget, or --schedule constant); batches of 16 scenes, each rendered once; one thread

    OMP_NUM_THREADS=1 python -m research.cnn_reference --minutes 3 --split val --out docs/results/cnn_val.json
"""
import argparse
import json
import math
import os
import time
from dataclasses import asdict

import numpy as np
import torch
import torch.nn as nn

import eval as evaluation
import train
from common.metrics import depth_gain, mra
from data import loader, synthetic


def cnn(width=(32, 64, 96, 128), hidden=128) -> nn.Module:
    layers, c_in = [], 3
    for c in width:
        layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GELU()]
        c_in = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * c_in, hidden), nn.GELU(),
                         nn.Linear(hidden, 1))


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float in [-1, 1], as the MLLM's encoder reads them."""
    return images.float() / 127.5 - 1.0


@torch.no_grad()
def predict(net, images, batch=64) -> np.ndarray:
    net.eval()
    out = torch.cat([net(pixels(images[i:i + batch])).squeeze(-1) for i in range(0, len(images), batch)])
    net.train()
    return out.exp().numpy()


def score(preds, targets) -> dict:
    """Answers rounded to two decimals (synthetic.fmt), then MRA, gain, mean |log error|, distinct answers."""
    answers = [float(synthetic.fmt(p)) for p in preds]
    return dict(n=len(answers), mra=float(np.mean([mra(a, t) for a, t in zip(answers, targets)])),
                gain=depth_gain(answers, list(targets)),
                abs_log_err=float(np.mean([abs(math.log(max(a, 1e-3) / t)) for a, t in zip(answers, targets)])),
                distinct=len(set(answers)))


def eval_items(split, n_scenes, zooms):
    """{camera: (images, targets)}: the depth questions of eval.py's items (same scenes and cameras)."""
    scene_cfg = evaluation.eval_scene_config(asdict(train.TrainConfig()),
                                             zooms=zooms, shifts=())
    sweep = evaluation.camera_sweep(scene_cfg, zooms, shifts=(), profiles=False)
    items = evaluation.build_eval_items(scene_cfg, sweep, n_scenes, ('depth',), split)
    by = {}
    for it in items:
        by.setdefault((it['camera'], it['s']), []).append(it)
    return {cam: (torch.stack([it['image'] for it in its]), np.array([it['target'] for it in its]))
            for cam, its in by.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--minutes', type=float, default=3.0, help='training wall time (stops at whichever comes first)')
    p.add_argument('--steps', type=int, default=100000)
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--schedule', default='cosine', choices=('cosine', 'constant'),
                   help='cosine: lr decays to 0 over the budget (time or steps, whichever runs out first)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--n-scenes', type=int, default=256, help='evaluated scenes')
    p.add_argument('--split', default='val', choices=('val', 'test'))
    p.add_argument('--zooms', default='0.5,0.67,0.8,1.0,1.25,1.5,2.0', help="comma-separated; '1' for s = 1 only")
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default='docs/results/cnn_reference.json')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    net = cnn()
    n_params = sum(q.numel() for q in net.parameters())
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr)
    ds = synthetic.SyntheticDataset(loader.data_config(train.TrainConfig()), 'train', synthetic.SPLIT_BASE - 1)
    t0, step, log = time.time(), 0, []
    while step < args.steps and time.time() - t0 < 60 * args.minutes:
        if args.schedule == 'cosine':   # by the share of the budget spent (time or steps, whichever is ahead)
            done = max((time.time() - t0) / (60 * args.minutes), step / args.steps)
            for group in opt.param_groups:
                group['lr'] = args.lr * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
        items = [ds[i] for i in range(step * args.batch_size, (step + 1) * args.batch_size)]
        x = pixels(torch.stack([it['image'] for it in items]))
        z = torch.tensor([it['target'] for it in items], dtype=torch.float32)
        loss = (net(x).squeeze(-1) - z.log()).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            log.append(dict(step=step, loss=loss.item(), s=round(time.time() - t0, 1)))
            print(log[-1], flush=True)
    train_s = time.time() - t0
    zooms = [float(z) for z in args.zooms.split(',')]
    per_camera = {}
    for (cam, s), (images, targets) in eval_items(args.split, args.n_scenes, zooms).items():
        per_camera[cam] = dict(s=s, **score(predict(net, images), targets))
    base = next(v for v in per_camera.values() if v['s'] == 1.0)
    worst = min(v['mra'] for v in per_camera.values())
    out = dict(args=vars(args), params=n_params, steps=step, train_s=round(train_s, 1),
               samples=step * args.batch_size, split=args.split, at_s1=base,
               worst_zoom_ratio=worst / base['mra'] if base['mra'] else None, per_camera=per_camera, log=log)
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=1)
    print(json.dumps(dict(params=n_params, steps=step, train_s=out['train_s'], at_s1=base,
                          worst_zoom_ratio=out['worst_zoom_ratio'],
                          per_zoom={k: round(v['mra'], 3) for k, v in per_camera.items()}), indent=1))


if __name__ == '__main__':
    main()
