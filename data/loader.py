"""
The data of a run: flags to datasets, datasets to batches, laid out by sample index.

The idea. Data is a pure function of the sample index (data.py seeds item i by i alone), so the run
is laid out by index: optimiser step k consumes the global samples [k·B, (k+1)·B), and rank r's
j-th micro-batch of that step is the slice that starts at
    k·B + (j·world + r)·micro,        grad_accum = B / (micro · world) micro-batches per rank.
One process and N processes therefore see the same global batches, and a resumed run needs only
its step. Worked number: B = 16, micro = 4, two ranks (grad_accum 2): step 3 takes samples 48-63;
rank 1's second micro-batch (j = 1) is 48 + (1·2 + 1)·4 = 60 .. 63.

A DataLoader reads that layout from a batch sampler (StepSampler); its worker processes render,
augment, stack and tokenise each micro-batch and compute the renderer's teacher targets
(collate_encode), so the step receives tensors (pinned on CUDA), padded to --seq-bucket lengths
(one compiled graph each). worker_count splits the cores between the workers and the step.
Real data (--data) holds out the file's last --val-samples images; its zooms only widen the view.
"""
import numpy as np
import torch

from augment import ZOOM_RANGE, AugmentConfig
from data.omni3d import Omni3DDataset, load_omni3d
from data.synthetic import TASKS, DataConfig, SyntheticDataset, canonical_focal, collate
from world.scenes import SceneConfig

# ----------------------------------------------------------------------------- datasets from the flags

def data_config(cfg) -> DataConfig:
    """The samples of a run (cfg: train.TrainConfig)."""
    tasks = tuple(t.strip() for t in cfg.tasks.split(',') if t.strip())
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f'unknown task(s) {unknown} in --tasks; known: {TASKS}')
    weights = tuple(float(w) for w in cfg.task_weights.split(',')) if cfg.task_weights else None
    if weights is not None and len(weights) != len(tasks):
        raise ValueError(f'--task-weights has {len(weights)} values for {len(tasks)} tasks')
    scene = SceneConfig(image_hw=(cfg.image_size, cfg.image_size), camera=cfg.camera,
                        n_objects=(1, cfg.max_objects), visible_zoom=ZOOM_RANGE,   # in view through every zoom
                        pitch_range=pitch_range(cfg.pitch_range))
    return DataConfig(scene=scene, tasks=tasks, task_weights=weights, render_augment=cfg.render_augment and not cfg.data,
                      canonical_focal=canonical_focal(cfg.camera, cfg.image_size) if cfg.canonical_focal else 0.0)


def datasets(cfg, dcfg: DataConfig | None = None):
    """(train, val). Synthetic: scenes laid out by index. Real (--data): the file's last val_samples
    images are held out; the others repeat, a new question each epoch. Real images come in any
    size and are resized to image_size (K follows exactly, so fx/fy may differ), and their zooms
    only widen the view (s <= 1, no shifts): a crop could cut a queried object out, and unlike a
    rendered scene, a photo has no margin known to keep it in view."""
    n, dcfg = cfg.max_steps * cfg.batch_size, dcfg or data_config(cfg)
    if not cfg.data:
        aug = AugmentConfig() if cfg.augment else None
        return SyntheticDataset(dcfg, 'train', n, aug), SyntheticDataset(dcfg, 'val', cfg.val_samples)
    hw, v = (cfg.image_size, cfg.image_size), cfg.val_samples
    full = load_omni3d(cfg.data, cfg.image_root, dcfg.tasks, dcfg.task_weights)
    if len(full) <= v:
        raise ValueError(f'{cfg.data}: {len(full)} usable images, and --val-samples {v} of them are held out: '
                         f'none is left to train on')
    aug = AugmentConfig(zoom_range=(ZOOM_RANGE[0], 1.0), shift_frac=0.0, resize_hw=hw) if cfg.augment else \
        AugmentConfig(p_identity=1.0, resize_hw=hw)
    return (Omni3DDataset(full.records[:-v], dcfg.tasks, dcfg.task_weights, aug, length=n),
            Omni3DDataset(full.records[-v:], dcfg.tasks, dcfg.task_weights, AugmentConfig(p_identity=1.0, resize_hw=hw)))


def pitch_range(text: str) -> tuple:
    """'5,15' -> (5.0, 15.0): degrees, lo <= hi, |θ| < 90."""
    try:
        lo, hi = (float(p) for p in text.split(','))
    except ValueError:
        lo, hi = 1.0, 0.0
    if not (-90 < lo <= hi < 90):
        raise ValueError(f'--pitch-range must be two angles lo,hi in degrees with -90 < lo <= hi < 90; got {text!r}')
    return lo, hi


# ----------------------------------------------------------------------------- batches by index

def micro_batch_indices(step: int, j: int, rank: int, world: int, micro: int, batch_size: int) -> range:
    """Rank `rank`'s j-th micro-batch (of `micro` samples) of optimiser step `step` (the module docstring)."""
    start = step * batch_size + (j * world + rank) * micro
    return range(start, start + micro)


class StepSampler(torch.utils.data.Sampler):
    """This rank's micro-batches of steps start .. max_steps-1, in order: a batch_sampler that
    lays the run out by index, so a resumed run only needs the step it starts from."""

    def __init__(self, start: int, max_steps: int, rank: int, world: int, micro: int, batch_size: int):
        self.start, self.max_steps, self.rank, self.world, self.micro, self.B = start, max_steps, rank, world, micro, batch_size
        self.grad_accum = batch_size // (micro * world)

    def __len__(self):
        return (self.max_steps - self.start) * self.grad_accum

    def __iter__(self):
        for step in range(self.start, self.max_steps):
            for j in range(self.grad_accum):
                yield list(micro_batch_indices(step, j, self.rank, self.world, self.micro, self.B))


def collate_encode(items: list, encode, teacher=None, grid_hw=None) -> dict:
    """What a worker hands the step: data.collate, tokenised (tokens.encode_batch); with a CPU
    teacher (the renderer's geometry) also its targets, in place of the maps they came from."""
    batch = collate(items)
    batch.update(encode(batch))
    if teacher is not None:
        batch['teacher'] = teacher(batch, grid_hw)                      # (B, N, GEO_DIM), (B, N)
        for key in ('depth', 'points', 'object_depth'):
            batch.pop(key, None)
    return batch


def make_loader(ds, collate_fn, sampler: StepSampler, workers: int, pin: bool):
    return torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate_fn, num_workers=workers,
                                       pin_memory=pin, prefetch_factor=4 if workers else None)


def micro_batch(ds, cfg, step: int, j: int, rank: int, world: int, micro: int) -> dict:
    """Rank `rank`'s j-th micro-batch of step `step`, built here (no workers, not tokenised)."""
    return collate([ds[i] for i in micro_batch_indices(step, j, rank, world, micro, cfg.batch_size)])


def worker_count(cfg, device, threads: int) -> tuple[int, int]:
    """(DataLoader workers, torch threads for the step) for --workers (train.TrainConfig.workers)."""
    if cfg.workers >= 0:
        return cfg.workers, max(1, threads - cfg.workers) if device.type == 'cpu' else threads
    if device.type == 'cuda':
        return min(8, max(1, threads - 1)), threads
    return (1, threads - 1) if threads >= 2 else (0, threads)
