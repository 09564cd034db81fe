"""
The data of a run: flags to datasets, datasets to batches, laid out by sample index; the posed-frame
items (views.py rooms rendered, asked and augmented per frame).

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
from dataclasses import replace

import numpy as np
import torch

from augment import ZOOM_RANGE, AugmentConfig, random_camera_augment
from data.synthetic import AUG_STREAM, TASKS, DataConfig, SyntheticDataset, canonical_focal, collate, item_index, scene_seed
from data.omni3d import Omni3DDataset, load_omni3d
from world.scenes import COLORS, SceneConfig
from multiframe.views import (TRAIN_TASKS, VIEW_TASKS, ViewsConfig, follow_ups, object_depths, object_floor, sample_view_qa,
                   sample_views)

# ----------------------------------------------------------------------------- datasets from the flags

def data_config(cfg) -> DataConfig:
    """The samples of a run (cfg: train.TrainConfig): a DataConfig, or a ViewsConfig with --frames."""
    if cfg.frames:
        return views_config(cfg)
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
    return DataConfig(scene=scene, tasks=tasks, task_weights=weights,
                      canonical_focal=canonical_focal(cfg.camera, cfg.image_size) if cfg.canonical_focal else 0.0)


def views_config(cfg) -> ViewsConfig:
    """--frames: rooms of that many frames at image_size, the training camera, multi-frame tasks."""
    tasks = VIEW_TASKS if cfg.tasks == 'depth' else tuple(t.strip() for t in cfg.tasks.split(',') if t.strip())
    if unknown := [t for t in tasks if t not in TRAIN_TASKS]:
        raise ValueError(f'unknown multi-frame task(s) {unknown} in --tasks; known: {TRAIN_TASKS}')
    weights = tuple(float(w) for w in cfg.task_weights.split(',')) if cfg.task_weights else None
    if not cfg.questions >= 1:
        raise ValueError(f'--questions {cfg.questions} (must be >= 1: questions per room in one sequence)')
    return ViewsConfig(frames=cfg.frames, image_hw=(cfg.image_size, cfg.image_size), camera=cfg.camera,
                       tasks=tasks, task_weights=weights, n_objects=room_objects(cfg.room_objects),
                       questions=cfg.questions, object_channels=cfg.object_channels, min_pixels=cfg.min_pixels,
                       reasons=cfg.reasons, world_channels=cfg.world_channels)


def views_checks(cfg, defaults) -> list[str]:
    """What is wrong with the multi-frame flags of a TrainConfig (defaults: its class), for check_config."""
    bad = [f'--frames {cfg.frames} (0: single images, else 1..16)'] if not 0 <= cfg.frames <= 16 else []
    only = [f"--{k.replace('_', '-')}" for k in ('questions', 'room_objects', 'min_pixels', 'reasons',
                                                  'world_channels') if getattr(cfg, k) != getattr(defaults, k)]
    bad += [f"{', '.join(only)}: for --frames runs only"] if only and not cfg.frames else []
    bad += ['--world-channels needs the object channels and the geometry branch (no --no-object-channels, '
            'no --no-distill)'] if cfg.world_channels and not (cfg.object_channels and cfg.distill) else []
    return bad + ['--frames trains on synthetic rooms (the rendered teacher) without camera text: no --data, '
                  'no --teacher, no --camera-text, no --canonical-focal'] if cfg.frames and (
        cfg.teacher or cfg.data or cfg.camera_text or cfg.canonical_focal) else bad


def room_objects(text: str) -> tuple:
    """'3,5' -> (3, 5): objects per room of a --frames run, 1 <= lo <= hi <= the colours (names are unique)."""
    try:
        lo, hi = (int(p) for p in text.split(','))
    except ValueError:
        lo, hi = 1, 0
    if not 1 <= lo <= hi <= len(COLORS):
        raise ValueError(f'--room-objects must be two counts lo,hi with 1 <= lo <= hi <= {len(COLORS)}; got {text!r}')
    return lo, hi


# ----------------------------------------------------------------------------- posed frames: items

def make_views_item(frames: dict, K, c2w, qa: dict, seed: int, augment_cfg=None, object_depth=None,
                    object_world=None) -> dict:
    """Rendered frames (render_views) -> an item of tensors: image (N, 3, H, W) uint8, K (N, 3, 3),
    c2w (N, 4, 4), depth (N, H, W), points (N, H, W, 3) [, object_depth (N, H, W): object_depths]
    [, object_world (N, H, W, 2): object_floor, with object_depth] + the question. augment_cfg: every
    frame its own random camera (augment.random_camera_augment, rng([seed, AUG_STREAM, k])), K exact;
    the maps go through the same warp as the pixels."""
    images, Ks, geos = [], [], []
    for k in range(len(c2w)):
        image = torch.from_numpy(frames['image'][k]).permute(2, 0, 1).contiguous()        # (3, H, W)
        maps = [frames['depth'][k][None], frames['points'][k].transpose(2, 0, 1)]
        maps += [] if object_depth is None else [object_depth[k][None]]
        maps += [] if object_world is None else [object_world[k].transpose(2, 0, 1)]
        geo = torch.from_numpy(np.concatenate(maps).astype(np.float32))                   # (4, 5 or 7, H, W)
        Kk = torch.tensor(np.asarray(K)[k], dtype=torch.float32)
        if augment_cfg is not None:
            image, Kk, geo = random_camera_augment(
                image, Kk, augment_cfg, np.random.default_rng([seed, AUG_STREAM, k]), geo)
        images.append(image)
        Ks.append(Kk.float())
        geos.append(geo)
    geo = torch.stack(geos)                                                                # (N, 4, 5 or 7, H, W)
    item = dict(image=torch.stack(images), K=torch.stack(Ks), c2w=torch.as_tensor(c2w, dtype=torch.float32),
                depth=geo[:, 0], points=geo[:, 1:4].permute(0, 2, 3, 1).contiguous(), seed=int(seed), **qa)
    if object_depth is not None:
        item['object_depth'] = geo[:, 4]
    if object_world is not None:
        item['object_world'] = geo[:, 5:7].permute(0, 2, 3, 1).contiguous()
    return item


class ViewsDataset(torch.utils.data.Dataset):
    """Item i = the room of seed scene_seed(split, i), its N frames and one question."""

    def __init__(self, cfg: ViewsConfig = ViewsConfig(), split: str = 'train', length: int = 10000,
                 augment_cfg: AugmentConfig | None = None):
        if unknown := [t for t in cfg.tasks if t not in TRAIN_TASKS]:
            raise ValueError(f'unknown multi-frame task(s) {unknown}; known: {TRAIN_TASKS}')
        scene_seed(split, max(length - 1, 0))
        self.cfg, self.split, self.length, self.augment = cfg, split, int(length), augment_cfg

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        seed = scene_seed(self.split, item_index(i, self.length))
        views, frames = sample_views(seed, self.cfg)
        cfg = self.cfg
        qa = sample_view_qa(views, seed, cfg.tasks, cfg.task_weights, cfg.reasons)
        if cfg.questions > 1:
            qa['turns'] = follow_ups(views, seed, qa['task'], cfg.questions, cfg.tasks, cfg.task_weights, cfg.reasons)
        K = np.broadcast_to(views.K, (len(views.c2w), 3, 3))                                   # (N, 3, 3)
        return make_views_item(frames, K, views.c2w, qa, seed, self.augment,
                               object_depths(views, frames['instance']) if cfg.object_channels else None,
                               object_floor(views, frames['instance']) if cfg.world_channels else None)


def datasets(cfg, dcfg):
    """(train, val). Synthetic: scenes laid out by index. Real (--data): the file's last val_samples
    images are held out; the others repeat, a new question each epoch. Real images come in any
    size and are resized to image_size (K follows exactly, so fx/fy may differ), and their zooms
    only widen the view (s <= 1, no shifts): a crop could cut a queried object out, and unlike a
    rendered scene, a photo has no margin known to keep it in view."""
    n = cfg.max_steps * cfg.batch_size
    if cfg.frames:   # every frame its own random camera (zoom, shift; K exact)
        return (ViewsDataset(dcfg, 'train', n, AugmentConfig() if cfg.augment else None),   # held out: one question
                ViewsDataset(replace(dcfg, questions=1), 'val', cfg.val_samples))           # each, as eval asks
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
