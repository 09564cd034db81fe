"""
Time one training step of the tiny default model (issue 4: <= 0.3 s at batch 8 on 2 CPU cores)
and the cost of the camera-aware parts (full step / RGB-only step <= 1.05).

    python bench_model.py                       # 2 threads, batch 8, prints medians and the ratio
    python bench_model.py --threads 1 --steps 40

A step is forward + backward + AdamW on a real batch (SyntheticDataset, all tasks, augmented).
"full": camera embedding + geometry branch + RenderedTeacher targets (computed inside the step);
"rgb": camera_embed=False, geometry=False, no teacher. Both models start from one seed and see
the same batches; their steps alternate (order flipped every round) so that load from other
processes on a shared machine hits both alike. Reported: medians over --steps rounds.
"""
import argparse
import os
import statistics
import time

import torch

from augment import AugmentConfig
from data import DataConfig, SyntheticDataset, collate
from distill import RenderedTeacher
from model import CameraAwareMLLM, ModelConfig


def make_batches(n_batches: int, batch_size: int) -> list:
    ds = SyntheticDataset(DataConfig(), split='train', length=n_batches * batch_size, augment=AugmentConfig())
    return [collate([ds[b * batch_size + i] for i in range(batch_size)]) for b in range(n_batches)]


def make_step(full: bool):
    """A closure running one training step of a fresh tiny model on a batch; returns seconds."""
    torch.manual_seed(0)
    model = CameraAwareMLLM(ModelConfig(camera_embed=full, geometry=full))
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


def main(threads=2, batch_size=8, steps=30, warmup=5):
    torch.set_num_threads(threads)
    batches = make_batches(8, batch_size)
    (full, model), (rgb, _) = make_step(True), make_step(False)
    times = {'full': [], 'rgb': []}
    for r in range(warmup + steps):
        batch = batches[r % len(batches)]
        order = [('full', full), ('rgb', rgb)][::1 if r % 2 else -1]
        for name, step in order:
            dt = step(batch)
            if r >= warmup:
                times[name].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = [f / g for f, g in zip(times['full'], times['rgb'])]   # paired: same batch, same moment
    n = sum(p.numel() for p in model.parameters())
    lengths = [len(a) for b in batches for a in b['answer']]
    print(f'tiny default: {n / 1e6:.2f}M params, grid {model.grid_hw}, batch {batch_size}, {threads} threads, '
          f'answers {min(lengths)}-{max(lengths)} chars, load average {os.getloadavg()[0]:.2f}')
    print(f'training step (full camera-aware, teacher on): {1000 * med["full"]:.1f} ms  (median of {steps})')
    print(f'training step (RGB-only):                      {1000 * med["rgb"]:.1f} ms')
    print(f'ratio full / RGB-only: {med["full"] / med["rgb"]:.3f} (of medians), '
          f'{statistics.median(ratios):.3f} (median of paired ratios)')
    return med, statistics.median(ratios)


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--steps', type=int, default=30)
    a = p.parse_args()
    main(a.threads, a.batch, a.steps)
