"""
Time one training step of train.py's default model (the target: <= 0.3 s at batch 8 on 2 CPU cores)
and the cost of the camera-aware parts (full step / RGB-only step <= 1.05).

    python -m bench.step                       # 2 threads, batch 8, prints medians and the ratio
    python -m bench.step --threads 1 --rounds 40

A step is forward + backward + AdamW on a real batch (SyntheticDataset, all tasks, augmented).
"full": camera embedding + geometry branch + RenderedTeacher targets (computed inside the step);
"rgb": camera_embed=False, geometry=False, no teacher. Both models start from one seed and see
the same batches; their steps alternate (order flipped every round) so that load from other
processes on a shared machine hits both alike. Per batch we keep the median and the best (minimum)
time over the rounds, and average over the batches (answers of 4 to ~190 characters make steps
differ). The best is the machine's intrinsic cost, which other processes can only inflate
(timeit's advice); the median is what a training run on a shared machine sees. Last, the
camera-aware parts are timed alone (best of many short runs): on a busy 2-core machine a whole
100 ms step rarely escapes every stall of OpenMP's second thread, a 1 ms piece often does.
"""
import argparse
import os
import statistics
import time

import torch

from augment import AugmentConfig
from data.synthetic import DataConfig, SyntheticDataset, collate
from distill import RenderedTeacher, matching_loss
from model import CameraAwareMLLM, geometry_features
from train import TrainConfig, model_config, tiny_tokenizer


def make_batches(n_batches: int, batch_size: int) -> list:
    ds = SyntheticDataset(DataConfig(), split='train', length=n_batches * batch_size, augment=AugmentConfig())
    return [collate([ds[b * batch_size + i] for i in range(batch_size)]) for b in range(n_batches)]


def make_step(full: bool):
    """A closure running one training step of a fresh tiny model on a batch; returns seconds."""
    torch.manual_seed(0)
    cfg = TrainConfig()                             # the default recipe; RGB-only drops the camera parts
    mcfg = model_config(cfg)
    mcfg.camera_embed = mcfg.geometry = full
    model = CameraAwareMLLM(mcfg, tokenizer=tiny_tokenizer(cfg))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    teacher = RenderedTeacher() if full else None

    def step(batch) -> float:
        t0 = time.perf_counter()
        target = teacher(batch, model.grid_hw) if teacher else None
        _, loss, _ = model(batch, teacher=target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0
    return step, model


def best_ms(f, n=20, reps=7) -> float:
    """Best (minimum) mean milliseconds of f over reps runs of n calls."""
    for _ in range(3):
        f()
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        runs.append((time.perf_counter() - t0) / n)
    return 1000 * min(runs)


def extras_ms(model, batch) -> dict:
    """The camera-aware parts alone: teacher targets, camera embedding and geometry branch
    (forward + backward, with the matching loss), on the batch's K and random features."""
    teacher, target = RenderedTeacher(), RenderedTeacher()(batch, model.grid_hw)
    S, grid = model.image_size, model.enc_grid_hw
    feats = torch.randn(batch['K'].shape[0], grid[0] * grid[1], model.vision.config.hidden_size)

    def geometry():
        f = feats.clone().requires_grad_()
        g = model.geo_head(f)
        e = model.geo_embed(geometry_features(g, model.cfg.geometry_periods))
        ((f + e).sum() + matching_loss(g, *target)).backward()
    return dict(teacher=best_ms(lambda: teacher(batch, model.grid_hw)),
                camera=best_ms(lambda: model.camera(batch['K'], (S, S), grid).sum().backward()),
                geometry=best_ms(geometry))


def main(threads=2, batch_size=8, rounds=30, n_batches=4, warmup=2):
    torch.set_num_threads(threads)
    batches = make_batches(n_batches, batch_size)
    (full, model), (rgb, _) = make_step(True), make_step(False)
    times = {(name, i): [] for name in ('full', 'rgb') for i in range(n_batches)}
    for r in range(warmup + rounds):
        for i, batch in enumerate(batches):
            for name, step in [('full', full), ('rgb', rgb)][::1 if r % 2 else -1]:
                dt = step(batch)
                if r >= warmup:
                    times[name, i].append(dt)
    per_step = lambda name, f: sum(f(times[name, i]) for i in range(n_batches)) / n_batches
    med = {name: per_step(name, statistics.median) for name in ('full', 'rgb')}
    best = {name: per_step(name, min) for name in ('full', 'rgb')}
    n = sum(p.numel() for p in model.parameters())
    lengths = [len(a) for b in batches for a in b['answer']]
    print(f'train.py default model: {n / 1e6:.2f}M params, grid {model.grid_hw}, batch {batch_size}, {threads} threads, '
          f'answers {min(lengths)}-{max(lengths)} chars, load average {os.getloadavg()[0]:.2f}')
    print(f'training step, full camera-aware (teacher on): median {1000 * med["full"]:.1f} ms, best {1000 * best["full"]:.1f} ms')
    print(f'training step, RGB-only:                       median {1000 * med["rgb"]:.1f} ms, best {1000 * best["rgb"]:.1f} ms')
    print(f'ratio full / RGB-only: {best["full"] / best["rgb"]:.3f} (best), {med["full"] / med["rgb"]:.3f} (median)')
    extra = extras_ms(model, batches[0])
    print('camera-aware parts alone (best): ' + ', '.join(f'{k} {v:.2f} ms' for k, v in extra.items()) +
          f' = {sum(extra.values()):.2f} ms, ratio {1 + sum(extra.values()) / (1000 * best["rgb"]):.3f} on the best RGB-only step')
    return med, best, extra


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--rounds', type=int, default=30, help='timed passes over the batches')
    a = p.parse_args()
    main(a.threads, a.batch, a.rounds)
