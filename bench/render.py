"""
Renderer benchmark: scenes per CPU-second on one core (target >= 300 at 128x128 with 4 objects).

    python -m bench.render                 # sample, render, and both, 128x128, 4 objects; level, tilted
    python -m bench.render --stats         # + object depths under visible_zoom=(0.5, 2.0)

The sweep over scenes is what SyntheticDataset does per item (sample_scene + render), so
"sample+render" is the figure that bounds data loading; the dataset line adds the question,
the tensors and (optionally) the camera augmentation.
"""
import os

os.environ.setdefault('OMP_NUM_THREADS', '1')           # before numpy / torch load their pools
import argparse
import time

import numpy as np
import torch

import augment
from data import synthetic
from world import raycast, scenes

torch.set_num_threads(1)


def rate(fn, n, repeats=3):
    """Calls per second, best of `repeats` runs of n calls (timeit's rule: other jobs on a shared
    machine only ever slow a run down), in CPU time of this process (one thread) and wall-clock."""
    best = (0.0, 0.0)
    for _ in range(repeats):
        t, w = time.process_time(), time.perf_counter()
        for i in range(n):
            fn(i)
        best = max(best, (n / (time.process_time() - t), n / (time.perf_counter() - w)))
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--n', type=int, default=200)
    p.add_argument('--size', type=int, default=128)
    p.add_argument('--objects', type=int, default=4)
    p.add_argument('--stats', action='store_true')
    args = p.parse_args()
    hw, k = (args.size, args.size), args.objects
    tilt = dict(pitch_range=(-10.0, 20.0), roll_range=(-15.0, 15.0))    # a tilted hand-held camera
    for vz, pose in ((None, {}), (augment.ZOOM_RANGE, {}), (augment.ZOOM_RANGE, tilt)):
        cfg = scenes.SceneConfig(image_hw=hw, n_objects=(k, k), visible_zoom=vz, **pose)
        S = [scenes.sample_scene(i, cfg) for i in range(args.n)]          # warm-up and inputs
        s, r = rate(lambda i: scenes.sample_scene(i, cfg), args.n)[0], rate(lambda i: raycast.render(S[i]), args.n)[0]
        both, wall = rate(lambda i: raycast.render(scenes.sample_scene(i, cfg)), args.n)
        label = f"visible_zoom={vz}" + (f", pitch {pose['pitch_range']}, roll {pose['roll_range']}" if pose else '')
        print(f"{hw[0]}x{hw[1]}, {k} objects, {label}: sample {s:5.0f}/s  render {r:5.0f}/s  "
              f"sample+render {both:4.0f} scenes/s (CPU time; wall-clock {wall:.0f}/s)")
        ds = synthetic.SyntheticDataset(synthetic.DataConfig(scene=cfg), 'train', args.n)
        dsa = synthetic.SyntheticDataset(synthetic.DataConfig(scene=cfg), 'train', args.n, augment=augment.AugmentConfig())
        print(f"  SyntheticDataset items: {rate(lambda i: ds[i], args.n)[0]:.0f}/s, "
              f"with augment.AugmentConfig(): {rate(lambda i: dsa[i], args.n)[0]:.0f}/s (CPU time)")
    if args.stats:
        for camera in ('standard', 'wide', 'tele'):
            cfg = scenes.SceneConfig(camera=camera, visible_zoom=augment.ZOOM_RANGE)
            try:
                S = [scenes.sample_scene(i, cfg) for i in range(200)]
            except ValueError as e:
                print(f"{camera}: {e}")
                continue
            z = np.array([o.center[2] for s in S for o in s.objects])
            h = np.array([s.camera_height for s in S])
            print(f"{camera}, visible_zoom=(0.5, 2.0), 200 scenes, {len(z)} objects: centre depth "
                  f"min {z.min():.2f} median {np.median(z):.2f} max {z.max():.2f} m; "
                  f"camera height median {np.median(h):.2f} m")


if __name__ == '__main__':
    main()
