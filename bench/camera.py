"""
Time CameraEmbedding forward + backward at the tiny model's sizes (batch 8, 8×8 = 64 tokens,
out_dim 128, 128×128 images), to compare with one training step (the target: < 2 % of it).

    python -m bench.camera                 # defaults below, CPU, prints the median in ms
    python -m bench.camera --threads 1 --batch 8 --grid 8 --out-dim 128

Median over --iters timed runs after --warmup untimed ones; the K differ per sample and per run,
as with augmented batches, so nothing can be cached.
"""
import argparse
import time

import torch

from camera_embed import CameraEmbedConfig, CameraEmbedding


def bench(batch=8, grid=8, out_dim=128, image=128, iters=200, warmup=20) -> float:
    """Median milliseconds of one forward + backward of CameraEmbedding."""
    torch.manual_seed(0)
    emb = CameraEmbedding(out_dim, CameraEmbedConfig())
    torch.nn.init.normal_(emb.proj.weight, std=0.02)                     # as after some training
    K = torch.tensor([[image * 0.87, 0, image / 2], [0, image * 0.87, image / 2], [0, 0, 1]])
    times = []
    for i in range(warmup + iters):
        Kb = K.repeat(batch, 1, 1)
        Kb[:, :2, :2] *= 0.5 + 1.5 * torch.rand(batch, 1, 1)             # a fresh zoom per sample
        t0 = time.perf_counter()
        out = emb(Kb, (image, image), (grid, grid))                      # (B, N, out_dim)
        out.square().mean().backward()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2]


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--grid', type=int, default=8, help='tokens per side: N = grid²')
    p.add_argument('--out-dim', type=int, default=128)
    p.add_argument('--iters', type=int, default=200)
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s choice)')
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    ms = bench(a.batch, a.grid, a.out_dim, iters=a.iters)
    n = sum(t.numel() for t in CameraEmbedding(a.out_dim).parameters())
    print(f"CameraEmbedding fwd+bwd: batch {a.batch}, {a.grid * a.grid} tokens, out_dim {a.out_dim}, "
          f"{n} params, {torch.get_num_threads()} threads: {ms:.3f} ms (median of {a.iters})")
