"""
Is data loading off the critical path? One training step at the real preset's image size (224 px)
fed by train.py's DataLoader (worker processes render, augment, stack, tokenise and compute the
teacher targets of the next micro-batches while the step computes), against the same steps on
batches built beforehand. Target: step time with the DataLoader <= 1.1 x on pre-built batches.

    python -m bench.loader                        # 1 training thread + 1 worker: a 2-core machine
    python -m bench.loader --threads 2 --workers 2

The model is train.py's default recipe with 224 px images (patch 16: 196 visual tokens), batch 8,
the depth question with augmentation and the rendered teacher; both passes start from one seed and
train on the same batches, so they compute the same thing; the passes alternate in rounds, so that
load from other processes on a shared machine hits both alike. A step's time includes waiting for
its batch (a round's loader starts its worker afresh; the warm-up steps absorb that); per pass we
print the median and the best step.
"""
import argparse
import statistics
import time
from functools import partial

import torch

from common.optim import configure_optimizer
from data.loader import StepSampler, collate_encode, data_config, datasets, make_loader
from distill import RenderedTeacher
from model import CameraAwareMLLM
from train import TrainConfig, model_config, tiny_tokenizer


def fresh_step(cfg: TrainConfig):
    """(a closure running one training step on a batch, the model's collate function)."""
    torch.manual_seed(0)
    model = CameraAwareMLLM(model_config(cfg), tokenizer=tiny_tokenizer(cfg))
    opt = configure_optimizer(model, cfg)

    def step(batch):
        inputs = {k: v for k, v in batch.items() if torch.is_tensor(v)}
        _, loss, _ = model(inputs, teacher=batch['teacher'])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step, partial(collate_encode, encode=model.encoder(), teacher=RenderedTeacher(), grid_hw=model.enc_grid_hw)


def timed(step, batches, warmup: int) -> list[float]:
    """Seconds per step, from asking for the batch to the end of the optimiser step."""
    times, it = [], iter(batches)
    while True:
        t0 = time.perf_counter()
        batch = next(it, None)
        if batch is None:
            return times[warmup:]
        step(batch)
        times.append(time.perf_counter() - t0)


def main(threads=1, workers=1, batch_size=8, steps=10, rounds=3, warmup=2):
    torch.set_num_threads(threads)
    n = warmup + steps
    cfg = TrainConfig(image_size=224, batch_size=batch_size, max_steps=rounds * n)
    ds, _ = datasets(cfg, data_config(cfg))
    sampler = lambda r: StepSampler(r * n, (r + 1) * n, 0, 1, batch_size, batch_size)   # round r's steps
    (step_pre, collate_fn), (step_dl, _) = fresh_step(cfg), fresh_step(cfg)
    pre, loaded, build = [], [], []
    for r in range(rounds):   # alternate the passes, so that load from other processes hits both alike
        t0 = time.perf_counter()
        prebuilt = [collate_fn([ds[i] for i in idx]) for idx in sampler(r)]
        build.append((time.perf_counter() - t0) / n)
        pre += timed(step_pre, prebuilt, warmup)
        loaded += timed(step_dl, make_loader(ds, collate_fn, sampler(r), workers, pin=False), warmup)

    med = lambda ts: 1000 * statistics.median(ts)
    b = 1000 * statistics.median(build)
    print(f'224 px, batch {batch_size}, {threads} training thread(s), {rounds} rounds of {steps} steps per pass '
          f'(after {warmup} of warm-up each)')
    print(f'building one batch in this process: {b:.0f} ms ({b / batch_size:.1f} ms per item)')
    print(f'pre-built batches:          median {med(pre):.0f} ms, best {1000 * min(pre):.0f} ms')
    print(f'DataLoader, {workers} worker(s):   median {med(loaded):.0f} ms, best {1000 * min(loaded):.0f} ms')
    print(f'ratio (DataLoader / pre-built): {med(loaded) / med(pre):.3f} median, {min(loaded) / min(pre):.3f} best '
          f'(target <= 1.1); building in the step instead would cost {(med(pre) + b) / med(pre):.2f}x')


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--workers', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--steps', type=int, default=10, help='timed steps per pass and round')
    p.add_argument('--rounds', type=int, default=3)
    main(**{k: v for k, v in vars(p.parse_args()).items()})
