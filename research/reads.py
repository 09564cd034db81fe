"""
Does a trained model read its input? The held-out answer loss per task with three inputs:

    own     each sample's own image (or frames)
    other   the images of another sample of the batch (rolled by one): the question stays, the
            pixels and the camera no longer fit it
    black   all-black images with the sample's own camera
    poses   (posed frames) each sample's own frames, with its poses rolled by one frame: frame k is
            given frame k+1's pose. A model that tells its frames apart by their poses (which frame
            comes first) loses here; a camera-blind one cannot (its loss stays the own one)

A model that reads its input has own < other and own < black; a model that answers from the
question alone gives the three the same loss (to the third decimal), however low it is. Next to
it, the "common part" of the visual tokens that reach the LLM: |mean token| / mean |token|, the
mean over every token of every sample. Near 1, the tokens are one shared vector plus a little
variation, which is what an unread image collapses to; the variation between samples at the same
token position is the last column. Worked number: a model answering depth from its image gave
1.298 / 1.389 / 1.367 (docs/log.md), one answering from the question 0.349 / 0.349 / 0.349.

    python -m research.reads runs/views/mt_13 [--n 64] [--batch 16]     # a train.py run or checkpoint folder
"""
import argparse
import collections
import os
import sys
from dataclasses import replace

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common.checkpoint import find_checkpoint, read_json, saved_config  # noqa: E402
from data import synthetic  # noqa: E402
from data import loader  # noqa: E402
from eval import load_checkpoint  # noqa: E402
from multiframe import items  # noqa: E402
from multiframe.train_views import ViewsTrainConfig  # noqa: E402
from train import TrainConfig  # noqa: E402

INPUTS = ('own', 'other', 'black', 'poses')


def swapped(batch: dict, how: str) -> dict:
    """The batch with its images replaced: 'own' (unchanged), 'other' (rolled by one sample), 'black';
    or 'poses': its poses (B, N, 4, 4) rolled by one frame."""
    if how == 'own':
        return batch
    if how == 'poses':
        return dict(batch, c2w=batch['c2w'].roll(1, 1))
    images = batch['images'].roll(1, 0) if how == 'other' else torch.zeros_like(batch['images'])
    return dict(batch, images=images)


@torch.no_grad()
def answer_losses(model, batch: dict) -> list[float]:
    """Per-sample answer cross-entropy (mean over its answer tokens and eos), as train.py's loss."""
    enc = model.encode(batch)                                              # tokenised once, for both
    logits, _, _ = model(dict(batch, **enc))                               # (B, A, V)
    target = enc['answer_ids']                                             # (B, A)
    nll = F.cross_entropy(logits.float().transpose(1, 2), target, reduction='none')
    return (nll.sum(1) / (target != -100).sum(1).clamp(min=1)).tolist()


@torch.no_grad()
def common_part(model, batch: dict) -> tuple[float, float, float]:
    """(|mean token|, mean |token|) over all tokens of the batch, and the variation between samples:
    mean |token − the mean over samples at its position|."""
    vis, _ = model.visual_tokens(batch['images'], batch['K'], batch.get('c2w'))   # (B, n, D)
    flat = vis.flatten(0, 1)
    return flat.mean(0).norm().item(), flat.norm(dim=-1).mean().item(), (vis - vis.mean(0)).norm(dim=-1).mean().item()


def reads(path: str, n: int = 64, batch_size: int = 16) -> dict:
    """{task: {input: mean answer loss, 'n': samples}} over n held-out samples, 'ALL' included, and
    'common': common_part of the first batch."""
    model, _ = load_checkpoint(path)
    model.eval()
    ckpt = find_checkpoint(path) or path
    frames = 'frames' in read_json(os.path.join(ckpt, 'train_config.json'))     # a multi-frame run
    config_type, data = (ViewsTrainConfig, items) if frames else (TrainConfig, loader)
    cfg = replace(config_type(**saved_config(ckpt, config_type)), val_samples=n)
    _, val = data.datasets(cfg)
    losses = collections.defaultdict(lambda: collections.defaultdict(list))
    common = None
    for s in range(0, n, batch_size):
        batch = synthetic.collate([val[i] for i in range(s, min(s + batch_size, n))])
        common = common or common_part(model, batch)
        for how in (h for h in INPUTS if h != 'poses' or 'c2w' in batch):
            for task, loss in zip(batch['task'], answer_losses(model, swapped(batch, how))):
                losses[task][how].append(loss)
                losses['ALL'][how].append(loss)
    out = {t: {how: sum(v) / len(v) for how, v in d.items()} | {'n': len(d['own'])} for t, d in losses.items()}
    return out | {'common': common}


def run_args(argv, doc: str, n: int, what: str):
    """The command line of a tool over runs: run folders, --n (n of `what`), --batch; one thread."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('run', nargs='+', help='train.py run folders or checkpoint folders')
    p.add_argument('--n', type=int, default=n, help=what)
    p.add_argument('--batch', type=int, default=16)
    torch.set_num_threads(1)
    return p.parse_args(argv)


def main(argv=None):
    args = run_args(argv, __doc__, 64, "held-out samples (the run's validation split)")
    for path in args.run:
        res = reads(path, args.n, args.batch)
        mean, norm, spread = res.pop('common')
        print(f'{path}: common part |mean token| / mean |token| = {mean:.1f} / {norm:.1f}, '
              f'variation between samples {spread:.2f}')
        for task, d in sorted(res.items(), key=lambda kv: kv[0] == 'ALL'):
            print(f"  {task:18s} n={d['n']:3d}  " + '  '.join(f'{how} {d[how]:.3f}' for how in INPUTS if how in d))


if __name__ == '__main__':
    main()
