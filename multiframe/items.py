"""
Posed frames as training data: the rooms of views.py rendered, asked and augmented frame by frame,
and the flags of a multi-frame run (train_views.py) turned into them.

The idea is the single-image one (data/loader.py), with a frame axis: item i is the room of seed
scene_seed(split, i), its N frames (each with its own K and camera-to-world pose c2w) and a question
about the room. Augmentation gives every frame its own random camera (zoom, shift; K exact), drawn
from rng([seed, AUG_STREAM, k]); the teacher's maps go through the same warp as the pixels.
Shapes: N frames, H×W pixels; an item holds image (N, 3, H, W) uint8, K (N, 3, 3), c2w (N, 4, 4).
"""
from dataclasses import replace

import numpy as np
import torch

from augment import AugmentConfig, random_camera_augment
from data.synthetic import AUG_STREAM, item_index, scene_seed
from data.synthetic import tokenizer_corpus as image_corpus
from multiframe.views import (TRAIN_TASKS, VIEW_TASKS, ViewsConfig, follow_ups, object_depths, sample_view_qa,
                              sample_views)
from multiframe.views import tokenizer_corpus as room_corpus
from world.scenes import COLORS

# ----------------------------------------------------------------------------- the flags of a run

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
                       reasons=cfg.reasons)


def views_checks(cfg) -> list[str]:
    """What is wrong with the multi-frame flags (train.check_config says what is wrong with the others)."""
    bad = [f'--frames {cfg.frames} (1..16)'] if not 1 <= cfg.frames <= 16 else []
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



# ----------------------------------------------------------------------------- items

def make_views_item(frames: dict, K, c2w, qa: dict, seed: int, augment_cfg=None, object_depth=None) -> dict:
    """Rendered frames (render_views) -> an item of tensors: image (N, 3, H, W) uint8, K (N, 3, 3),
    c2w (N, 4, 4), depth (N, H, W), points (N, H, W, 3) [, object_depth (N, H, W): object_depths]
    + the question. augment_cfg: every
    frame its own random camera (augment.random_camera_augment, rng([seed, AUG_STREAM, k])), K exact;
    the maps go through the same warp as the pixels."""
    images, Ks, geos = [], [], []
    for k in range(len(c2w)):
        image = torch.from_numpy(frames['image'][k]).permute(2, 0, 1).contiguous()        # (3, H, W)
        maps = [frames['depth'][k][None], frames['points'][k].transpose(2, 0, 1)]
        maps += [] if object_depth is None else [object_depth[k][None]]
        geo = torch.from_numpy(np.concatenate(maps).astype(np.float32))                   # (4 or 5, H, W)
        Kk = torch.tensor(np.asarray(K)[k], dtype=torch.float32)
        if augment_cfg is not None:
            image, Kk, geo = random_camera_augment(
                image, Kk, augment_cfg, np.random.default_rng([seed, AUG_STREAM, k]), geo)
        images.append(image)
        Ks.append(Kk.float())
        geos.append(geo)
    geo = torch.stack(geos)                                                                # (N, 4 or 5, H, W)
    item = dict(image=torch.stack(images), K=torch.stack(Ks), c2w=torch.as_tensor(c2w, dtype=torch.float32),
                depth=geo[:, 0], points=geo[:, 1:4].permute(0, 2, 3, 1).contiguous(), seed=int(seed), **qa)
    if object_depth is not None:
        item['object_depth'] = geo[:, 4]
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
                               object_depths(views, frames['instance']) if cfg.object_channels else None)



def datasets(cfg, dcfg: ViewsConfig | None = None):
    """(train, val) of a multi-frame run; held out: one question per room, as eval asks."""
    n, dcfg = cfg.max_steps * cfg.batch_size, dcfg or views_config(cfg)
    return (ViewsDataset(dcfg, 'train', n, AugmentConfig() if cfg.augment else None),
            ViewsDataset(replace(dcfg, questions=1), 'val', cfg.val_samples))


def corpus(cfg) -> list[str]:
    """The tiny BPE tokenizer's corpus: the single-image phrases and the rooms'."""
    return image_corpus(cfg.camera_text) + room_corpus()
