"""
Fingerprints of what a refactor must not change: renders, dataset items (single images and posed
frames, training and evaluation), a forward loss of the default model, and the first 50 logged
losses of the default `python train.py` run. Print them before and after a change and diff.

    python scripts/behaviour_hash.py > before.json      # ... change the code ...
    python scripts/behaviour_hash.py > after.json && diff before.json after.json
    python scripts/behaviour_hash.py --no-train          # without the 50 training steps (seconds)
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import train  # noqa: E402  (the repository root on the path first)
from train import TrainConfig  # noqa: E402


def digest(*values) -> str:
    h = hashlib.sha256()
    for v in values:
        if torch.is_tensor(v):
            v = v.detach().cpu().numpy()
        if isinstance(v, np.ndarray):
            h.update(str((v.dtype, v.shape)).encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, dict):
            for k in sorted(v):
                h.update(k.encode())
                h.update(digest(v[k]).encode())
        elif isinstance(v, (list, tuple)):
            for x in v:
                h.update(digest(x).encode())
        else:
            h.update(repr(v).encode())
    return h.hexdigest()[:16]


def fingerprints() -> dict:
    from world import raycast, scenes
    from data.loader import data_config, datasets
    from multiframe.items import ViewsDataset
    from multiframe.views import ViewsConfig
    import eval as evaluation
    cfg = TrainConfig()
    dcfg = data_config(cfg)
    out = {}
    out['renders'] = digest([raycast.render(scenes.sample_scene(s, dcfg.scene)) for s in range(8)])
    train_ds, val_ds = datasets(cfg, dcfg)
    out['train_items'] = digest([train_ds[i] for i in range(16)])
    out['val_items'] = digest([val_ds[i] for i in range(8)])
    views_ds = ViewsDataset(ViewsConfig(frames=4, image_hw=(64, 64)), 'train', 8)
    out['views_items'] = digest([views_ds[i] for i in range(4)])
    sweep = evaluation.camera_sweep(dcfg.scene)
    out['eval_items'] = digest(evaluation.build_eval_items(dcfg.scene, sweep, 4))
    torch.manual_seed(0)
    _, teacher, model = train.build(cfg, False, True, torch.device('cpu'))
    from data.loader import collate_encode
    batch = collate_encode([train_ds[i] for i in range(8)], model.encoder(), teacher=teacher, grid_hw=model.enc_grid_hw)
    _, loss, _ = model({k: v for k, v in batch.items() if torch.is_tensor(v)}, teacher=batch['teacher'])
    out['forward_loss'] = f'{loss.item():.10f}'
    out['weights'] = digest(dict(model.state_dict()))
    return out


def train_losses(n: int = 50) -> list:
    """The first n logged losses of the default run (logged every step; logging changes nothing)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, 'log.jsonl')
        p = subprocess.Popen([sys.executable, 'train.py', '--log-every', '1', '--out', tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        try:
            while p.poll() is None:
                if os.path.exists(log) and sum(1 for _ in open(log)) >= n:
                    break
                time.sleep(1)
        finally:
            p.kill()
            p.wait()
        return [f"{json.loads(line)['loss']:.8f}" for line in open(log).readlines()[:n]]


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--no-train', action='store_true', help='skip the 50 training steps')
    args = ap.parse_args()
    out = fingerprints()
    if not args.no_train:
        losses = train_losses()
        out['train_losses'] = digest(losses)
        out['train_losses_first_last'] = [losses[0], losses[-1]]
    print(json.dumps(out, indent=1))
