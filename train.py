"""
Train the camera-aware MLLM on spatial questions about synthetic scenes or real Omni3D-format
data, on one CPU or many GPUs.

    python train.py                                    # full camera-aware tiny model, CPU, minutes
    python train.py --no-camera-embed --no-augment --no-distill --out runs/rgb_only
    torchrun --standalone --nproc_per_node=2 train.py  # DDP: gloo on CPU, nccl on GPU
    torchrun --standalone --nproc_per_node=8 train.py --preset real   # SigLIP-B/16 + SmolLM2, bf16
    python train.py --llm smollm2/ --freeze-llm --llm-train-layers 2 --pixel-shuffle 2 ...   # README: the real LLM
    python train.py --out runs/x --resume              # continue a run from its last checkpoint
    python train.py --data OMNI3D.json --image-root DIR --teacher depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf

The three parts of the method are three switches, so the ablation is five commands:
--camera-embed (ray embedding on every visual token), --augment (crop/zoom/shift with exact K)
and --distill (a geometry branch matched to a teacher's dense geometry).

Data is a pure function of the sample index (data.py seeds item i by i alone), so the run is
laid out by index: optimiser step k consumes global samples [k*B, (k+1)*B), and rank r's j-th
micro-batch of that step is the slice starting at k*B + (j*world + r)*micro. One process and
N processes therefore see the same global batches, and a resumed run needs only the step.
A DataLoader reads that layout from a sampler (StepSampler); --workers processes render, augment,
stack and tokenise each micro-batch (collate_encode, with the renderer's teacher targets), so the
step receives tensors (pinned on CUDA), padded to --seq-bucket lengths (one compiled graph each).

Learning rates: pretrained backbones follow --lr, the new parts (camera embedding, geometry
branch, projector, and backbones built from configs) --new-lr; --projector-steps N trains only
the new parts for the first N steps (LLaVA's stage 1). Under torchrun the device is set before
the process group starts, rank 0 fetches the backbones' files while the others wait, and DDP
does not broadcast buffers (they are constants).

--micro-batch 0 (the default) is batch_size // world_size: every launch runs with the defaults,
and since every loss is a per-sample mean, the micro-batch changes the step only by float rounding.

Checkpoints (rank 0) are folders: the model (model.py's format: config.json, model.safetensors,
tokenizer files) plus train_config.json, train_state.json and train_state.safetensors
(optimiser moments, RNG state). Written to OUT/ckpt.tmp, then swapped in by renames, so a crash
at any moment leaves a complete OUT/ckpt (or OUT/ckpt.old) behind. No pickle anywhere.
--resume continues from it with its saved train_config.json: flags left out take the saved
values; a flag given again must match, unless it is in RESUMABLE (max_steps, log_every, ...),
else the run stops naming each difference. The log survives a crash mid-line.
"""
import argparse
import json
import math
import os
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, fields, replace
from functools import partial

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm
from transformers import SiglipVisionConfig

from augment import AugmentConfig
from data import TASKS, DataConfig, SyntheticDataset, canonical_focal, collate, tokenizer_corpus
from distill import DepthModelTeacher, RenderedTeacher
from model import CameraAwareMLLM, ModelConfig, bpe_tokenizer, load_weights, read_json, read_safetensors
from omni3d import Omni3DDataset, load_omni3d
from scenes import CAMERAS, SceneConfig
from views import VIEW_TASKS, ViewsConfig, ViewsDataset
from views import tokenizer_corpus as views_corpus


@dataclass
class TrainConfig:
    out: str = 'runs/default'
    preset: str = ''                 # '' (tiny, CPU) or 'real' (pretrained backbones, GPU)
    # data: one training camera; the visibility range matches the augmentation's zoom range
    camera: str = 'standard'
    image_size: int = 128
    max_objects: int = 1             # objects per scene: 1..max_objects (README: why 1 on a CPU)
    pitch_range: str = '5,15'        # camera pitch, degrees down, uniform in 'lo,hi' (pose given to the model)
    tasks: str = 'depth'             # any of data.TASKS, comma-separated, e.g. depth,closer,detect
    frames: int = 0                  # > 0: views.py rooms filmed in this many posed frames, with the multi-frame
                                     # tasks views.VIEW_TASKS (--tasks: a subset; the default 'depth' means all)
    task_weights: str = ''           # comma-separated, same order as tasks; '' = uniform
    data: str = ''                   # an Omni3D-format JSON to train on ('' = synthetic scenes); its
    image_root: str = ''             # images are in image_root; the last val_samples are held out
    teacher: str = ''                # distillation teacher: a transformers depth model (name or folder);
                                     # '' = the renderer's exact geometry (synthetic scenes only)
    # the three parts of the method
    camera_embed: bool = True
    augment: bool = True
    distill: bool = True
    distill_weight: float = 1.0
    # two baselines that need no new architecture (README: the ablation)
    camera_text: bool = False        # K written into every question, e.g. 'Camera: fx 110.9 fy 110.9 cx 64.0 cy 64.0 px.'
    pose: bool = True                # the camera embedding reads the pose (--no-pose: a control, README)
    canonical_focal: bool = False    # depth-like answers trained as z·f_c/fx (Metric3D), f_c the training
                                     # camera's fx; eval.py maps them back with the test K
    # the recipe (README: what makes a tiny model learn metric answers on a CPU)
    digit_loss: float = 1.0          # ordinal loss on answer digits (model.digit_wasserstein)
    geometry_periods: str = '10,1'   # metres, comma-separated: sin/cos of predicted depths for E_geo ('': none)
    patch_size: int = 16             # tiny vision encoder's patch (pixels)
    geometry_hidden: int = 128       # geometry head and embedding: 0 linear, > 0 one GELU layer this wide
    pixel_shuffle: int = 1           # r×r visual tokens -> one LLM token
    visual_norm: bool = False        # RMSNorm on the visual tokens (model.ModelConfig.visual_norm)
    tokenizer: str = 'bpe'           # tiny LLM's tokenizer: 'bpe' (words, digits one by one) or 'char'
    # backbones ('' = tiny from configs); see model.py for names, folders and GGUF files
    vision: str = ''
    llm: str = ''
    gguf_file: str = ''
    freeze_vision: bool = False
    freeze_llm: bool = False
    llm_train_layers: int = 0        # with --freeze-llm: the last N decoder layers (and the final norm) still train
    # optimisation: grad_accum = batch_size // (micro_batch * world_size)
    batch_size: int = 16
    micro_batch: int = 0             # per process and micro-step; 0: batch_size // world_size
    max_steps: int = 2000
    lr: float = 1e-3                 # peak learning rate of pretrained backbones (and, without --new-lr, of all)
    min_lr: float = 1e-4
    new_lr: float = 0.0              # the new parts: camera embedding, geometry branch, projector, and backbones
                                     # built from configs (0: --lr); min_lr scales with it
    projector_steps: int = 0         # LLaVA's stage 1: only the new parts train for these first steps; the pretrained
                                     # backbones then warm up (their gradients are still computed: DDP's set is fixed)
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    # bookkeeping
    log_every: int = 10
    eval_every: int = 250            # held-out answer loss on val_samples
    val_samples: int = 64
    save_every: int = 250
    seed: int = 0
    keep_every: int = 0              # > 0: also keep the model of every N-th step in OUT/step_N (a learning curve)
    device: str = 'auto'             # 'auto', 'cpu', 'cuda'
    dtype: str = 'float32'           # 'float32' or 'bfloat16' (autocast, CUDA)
    compile: bool = False
    seq_bucket: int = 0              # token sequences padded to a multiple of this (--compile: one graph per
                                     # length); 0: 64 with --compile, else no padding beyond the longest
    workers: int = -1                # DataLoader worker processes building the batches; 0: in this process;
                                     # -1: CUDA: CPU cores per process - 1 (at most 8); CPU: 1 if 2+ threads
                                     # per process (the step then gets one thread less), else 0
    resume: bool = False


PRESETS = {
    'real': dict(vision='google/siglip-base-patch16-224', llm='HuggingFaceTB/SmolLM2-135M-Instruct',
                 image_size=224, lr=2e-5, min_lr=2e-6, new_lr=2e-4, projector_steps=500, batch_size=64, micro_batch=8,
                 dtype='bfloat16', device='cuda', max_steps=5000),
    # README's "real LLM" recipe, for a CPU: a pretrained LLM (--llm: e.g. the converted SmolLM2-135M-Instruct)
    # frozen but for its last 2 layers, the tiny vision encoder from scratch, 16 LLM tokens per image
    # (min_lr = lr: constant after the warm-up, as measured)
    'real-llm': dict(freeze_llm=True, llm_train_layers=2, pixel_shuffle=2, batch_size=8, max_steps=400,
                     warmup_steps=20, lr=1e-4, min_lr=1e-4, new_lr=1e-3, eval_every=50, val_samples=32,
                     save_every=100, keep_every=50),
}


# What --resume may change: none of these alters what an optimiser step computes (the global batch
# alone defines it, however it is split into micro-batches and processes). A longer --max-steps
# continues the run, with the cosine schedule stretched to the new end from the current step on.
RESUMABLE = ('out', 'resume', 'max_steps', 'log_every', 'eval_every', 'save_every', 'val_samples',
             'micro_batch', 'device', 'compile', 'image_root',   # image_root: the same images, moved
             'keep_every', 'workers', 'seq_bucket')


def parse_args(argv=None) -> TrainConfig:
    """argparse from TrainConfig's fields; precedence: defaults < --preset < explicit flags.
    With --resume: the run's saved train_config.json < explicit flags (checked by check_resume)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(TrainConfig):
        flag = '--' + f.name.replace('_', '-')
        if f.type is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS)
        else:
            p.add_argument(flag, type=f.type, default=argparse.SUPPRESS, help=f'default: {f.default!r}')
    given = vars(p.parse_args(argv))
    preset = given.get('preset', '')
    if preset and preset not in PRESETS:
        p.error(f'unknown --preset {preset!r}; choose from {sorted(PRESETS)}')
    ckpt = find_checkpoint(given.get('out', TrainConfig.out)) if given.get('resume') else None
    if ckpt:  # flags not given take the run's values, not the defaults
        return TrainConfig(**{**saved_config(ckpt), **given})
    return TrainConfig(**{**PRESETS.get(preset, {}), **given})


def saved_config(ckpt: str) -> dict:
    """A checkpoint's train_config.json as TrainConfig fields (a field it predates: the default)."""
    file = os.path.join(ckpt, 'train_config.json')
    saved = read_json(file)
    known = {f.name: f.default for f in fields(TrainConfig)}
    if unknown := sorted(set(saved) - set(known)):
        raise ValueError(f'{file}: unknown settings {unknown}; this train.py cannot resume that run')
    return {**known, **saved}


# -----------------------------------------------------------------------------
# pieces built from the config

def model_config(cfg: TrainConfig) -> ModelConfig:
    return ModelConfig(vision=cfg.vision or None, llm=cfg.llm or None, gguf_file=cfg.gguf_file or None,
                       image_size=cfg.image_size, camera_embed=cfg.camera_embed, geometry=cfg.distill,
                       distill_weight=cfg.distill_weight, digit_loss=cfg.digit_loss,
                       camera_text=cfg.camera_text, pose=cfg.pose,
                       geometry_periods=periods(cfg.geometry_periods), geometry_hidden=cfg.geometry_hidden,
                       patch_size=cfg.patch_size,
                       pixel_shuffle=cfg.pixel_shuffle, visual_norm=cfg.visual_norm,
                       freeze_vision=cfg.freeze_vision,
                       zero_init=bool(cfg.vision or cfg.llm),   # only pretrained weights need keeping
                       freeze_llm=cfg.freeze_llm)


def data_config(cfg: TrainConfig) -> DataConfig:
    if cfg.frames:
        return views_config(cfg)
    tasks = tuple(t.strip() for t in cfg.tasks.split(',') if t.strip())
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f'unknown task(s) {unknown} in --tasks; known: {TASKS}')
    weights = tuple(float(w) for w in cfg.task_weights.split(',')) if cfg.task_weights else None
    if weights is not None and len(weights) != len(tasks):
        raise ValueError(f'--task-weights has {len(weights)} values for {len(tasks)} tasks')
    aug = AugmentConfig()
    scene = SceneConfig(image_hw=(cfg.image_size, cfg.image_size), camera=cfg.camera,
                        n_objects=(1, cfg.max_objects), visible_zoom=tuple(aug.zoom_range),
                        pitch_range=pitch_range(cfg.pitch_range))
    return DataConfig(scene=scene, tasks=tasks, task_weights=weights,
                      canonical_focal=canonical_focal(cfg.camera, cfg.image_size) if cfg.canonical_focal else 0.0)


def views_config(cfg: TrainConfig) -> ViewsConfig:
    """--frames: rooms of that many frames at image_size, the training camera, multi-frame tasks."""
    tasks = VIEW_TASKS if cfg.tasks == 'depth' else tuple(t.strip() for t in cfg.tasks.split(',') if t.strip())
    if unknown := [t for t in tasks if t not in VIEW_TASKS]:
        raise ValueError(f'unknown multi-frame task(s) {unknown} in --tasks; known: {VIEW_TASKS}')
    weights = tuple(float(w) for w in cfg.task_weights.split(',')) if cfg.task_weights else None
    return ViewsConfig(frames=cfg.frames, image_hw=(cfg.image_size, cfg.image_size), camera=cfg.camera,
                       tasks=tasks, task_weights=weights)


def datasets(cfg: TrainConfig, dcfg: DataConfig):
    """(train, val). Synthetic: scenes laid out by index. Real (--data): the file's last val_samples
    images are held out; the others repeat, a new question each epoch. Real images come in any
    size and are resized to image_size (K follows exactly, so fx/fy may differ), and their zooms
    only widen the view (s <= 1, no shifts): a crop could cut a queried object out, and unlike a
    rendered scene, a photo has no margin known to keep it in view."""
    n = cfg.max_steps * cfg.batch_size
    if cfg.frames:   # every frame its own random camera (zoom, shift; K exact)
        return (ViewsDataset(dcfg, 'train', n, AugmentConfig() if cfg.augment else None),
                ViewsDataset(dcfg, 'val', cfg.val_samples))
    if not cfg.data:
        aug = AugmentConfig() if cfg.augment else None
        return SyntheticDataset(dcfg, 'train', n, aug), SyntheticDataset(dcfg, 'val', cfg.val_samples)
    hw, v = (cfg.image_size, cfg.image_size), cfg.val_samples
    full = load_omni3d(cfg.data, cfg.image_root, dcfg.tasks, dcfg.task_weights)
    if len(full) <= v:
        raise ValueError(f'{cfg.data}: {len(full)} usable images, and --val-samples {v} of them are held out: '
                         f'none is left to train on')
    aug = AugmentConfig(zoom_range=(0.5, 1.0), shift_frac=0.0, resize_hw=hw) if cfg.augment else \
        AugmentConfig(p_identity=1.0, resize_hw=hw)
    return (Omni3DDataset(full.records[:-v], dcfg.tasks, dcfg.task_weights, aug, length=n),
            Omni3DDataset(full.records[-v:], dcfg.tasks, dcfg.task_weights, AugmentConfig(p_identity=1.0, resize_hw=hw)))


def periods(text: str) -> tuple:
    """'10,1' -> (10.0, 1.0); each must be a positive number of metres."""
    try:
        out = tuple(float(p) for p in text.split(',') if p.strip())
    except ValueError:
        out = (-1.0,)
    if not all(p > 0 and math.isfinite(p) for p in out):
        raise ValueError(f'--geometry-periods must be comma-separated positive metres, e.g. 10,1; got {text!r}')
    return out


def pitch_range(text: str) -> tuple:
    """'5,15' -> (5.0, 15.0): degrees, lo <= hi, |θ| < 90."""
    try:
        lo, hi = (float(p) for p in text.split(','))
    except ValueError:
        lo, hi = 1.0, 0.0
    if not (-90 < lo <= hi < 90):
        raise ValueError(f'--pitch-range must be two angles lo,hi in degrees with -90 < lo <= hi < 90; got {text!r}')
    return lo, hi


def tiny_tokenizer(cfg: TrainConfig):
    """The tiny LLM's tokenizer (None: model.py's default, the character one, or the real LLM's own)."""
    corpus = tokenizer_corpus(cfg.camera_text) + (views_corpus() if cfg.frames else [])
    return None if cfg.llm or cfg.tokenizer == 'char' else bpe_tokenizer(corpus)


def get_lr(step: int, cfg: TrainConfig, start: int = 0, scale: float = 1.0) -> float:
    """0 before step `start`; then a linear warm-up, and a cosine decay from scale·lr to
    scale·min_lr at max_steps."""
    if step < start:
        return 0.0
    step, span = step - start, max(1, cfg.max_steps - start - cfg.warmup_steps)
    if step < cfg.warmup_steps:
        return scale * cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / span
    return scale * (cfg.min_lr + 0.5 * (1 + math.cos(math.pi * min(t, 1.0))) * (cfg.lr - cfg.min_lr))


def pretrained_parts(cfg: TrainConfig) -> tuple:
    """CameraAwareMLLM's submodules that start from pretrained weights; the others (camera, geo_*,
    projector, and a backbone built from a config) are new."""
    return (('vision',) if cfg.vision else ()) + (('llm',) if cfg.llm else ())


def configure_optimizer(model, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on norms, biases or embeddings' scales). Groups
    by part: pretrained backbones follow --lr from step --projector-steps on, the new parts
    --new-lr from step 0 (set_lr)."""
    groups, pretrained = [], pretrained_parts(cfg)
    for backbone in (True, False):
        params = [p for n, p in model.named_parameters() if p.requires_grad and (n.split('.')[0] in pretrained) == backbone]
        for decay in (True, False):
            ps = [p for p in params if (p.dim() >= 2) == decay]
            if ps:
                groups.append(dict(params=ps, weight_decay=cfg.weight_decay if decay else 0.0, backbone=backbone))
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def set_lr(opt, step: int, cfg: TrainConfig) -> float:
    """Each group's learning rate at `step`; returns the new parts' (the one logged)."""
    new = get_lr(step, cfg, scale=(cfg.new_lr or cfg.lr) / cfg.lr)
    for g in opt.param_groups:
        g['lr'] = get_lr(step, cfg, start=cfg.projector_steps) if g['backbone'] else new
    return new


def train_last_llm_layers(llm, n: int):
    """Let the last n decoder layers and the final norm of a frozen LLM train (Llama-style layout)."""
    base = llm.base_model
    for module in [*base.layers[len(base.layers) - n:], base.norm] if n else []:
        module.requires_grad_(True)


# -----------------------------------------------------------------------------
# data: the index layout, as a sampler; batches built and tokenised in worker processes

def micro_batch_indices(step: int, j: int, rank: int, world: int, micro: int, batch_size: int) -> range:
    """Rank `rank`'s j-th micro-batch (of `micro` samples) of optimiser step `step` (the docstring's layout)."""
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
    """What a worker hands the step: data.collate, tokenised (model.encode_batch); with a CPU
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


def micro_batch(ds, cfg: TrainConfig, step: int, j: int, rank: int, world: int, micro: int) -> dict:
    """Rank `rank`'s j-th micro-batch of step `step`, built here (no workers, not tokenised)."""
    return collate([ds[i] for i in micro_batch_indices(step, j, rank, world, micro, cfg.batch_size)])


# -----------------------------------------------------------------------------
# checkpoints: a folder, swapped in atomically; optimiser state flattened into safetensors

def save_checkpoint(out: str, model, opt, cfg: TrainConfig, step: int):
    final, tmp, old = (os.path.join(out, n) for n in ('ckpt', 'ckpt.tmp', 'ckpt.old'))
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp)
    sd = opt.state_dict()
    tensors = {f'opt.{i}.{k}': v.contiguous() for i, s in sd['state'].items() for k, v in s.items()}
    tensors['rng.torch'] = torch.get_rng_state()
    save_file(tensors, os.path.join(tmp, 'train_state.safetensors'))
    state = dict(step=step, param_groups=[{k: v for k, v in g.items()} for g in sd['param_groups']])
    with open(os.path.join(tmp, 'train_state.json'), 'w') as f:
        json.dump(state, f, indent=1)
    with open(os.path.join(tmp, 'train_config.json'), 'w') as f:
        json.dump(asdict(cfg), f, indent=1)
    # swap: ckpt -> ckpt.old, ckpt.tmp -> ckpt, drop ckpt.old. A complete ckpt or ckpt.old exists
    # throughout: without a ckpt (a run resumed from ckpt.old), ckpt.old stays until ckpt is in place
    if os.path.exists(final):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def keep_model(path: str, model, cfg: TrainConfig):
    """The model alone (no optimiser state) with its train_config.json: eval.py scores the folder."""
    model.save(path)
    with open(os.path.join(path, 'train_config.json'), 'w') as f:
        json.dump(asdict(cfg), f, indent=1)


def find_checkpoint(out: str) -> str | None:
    for name in ('ckpt', 'ckpt.old'):  # ckpt.old survives only a crash between the two renames
        path = os.path.join(out, name)
        if os.path.exists(os.path.join(path, 'train_state.json')):
            return path
    return None


def load_train_state(path: str, opt) -> int:
    state = read_json(os.path.join(path, 'train_state.json'))
    tensors = read_safetensors(os.path.join(path, 'train_state.safetensors'))
    opt_state = {}
    for key, v in tensors.items():
        if key.startswith('opt.'):
            _, i, name = key.split('.', 2)
            opt_state.setdefault(int(i), {})[name] = v
    opt.load_state_dict(dict(state=opt_state, param_groups=state['param_groups']))
    torch.set_rng_state(tensors['rng.torch'])
    return state['step']


def open_log(path: str, step: int):
    """The JSONL log, for appending from `step`: lines a crashed run wrote after its last
    checkpoint are dropped, since the resumed run logs those steps again, and so is a last line
    that a crash cut short. Any other unreadable line is an error naming the file and line."""
    lines = open(path).read().splitlines() if os.path.exists(path) else []
    kept = []
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
            if rec['step'] <= step:
                kept.append(line + '\n')
        except (json.JSONDecodeError, TypeError, KeyError) as e:
            if i < len(lines) - 1:
                raise ValueError(f'{path}, line {i + 1}: not a log record ({e}): {line[:80]!r}') from None
    with open(path, 'w') as f:
        f.writelines(kept)
    return open(path, 'a')


# -----------------------------------------------------------------------------

@torch.no_grad()
def val_loss(model, val_batches, autocast) -> float:
    """Mean answer loss on the held-out batches (raw model, no teacher: inference conditions)."""
    model.eval()
    losses = []
    for batch in val_batches:
        with autocast:
            _, _, parts = model(batch)  # the model moves images and K to its device
        losses.append(parts['answer'].item())
    model.train()
    return sum(losses) / len(losses)


def setup_distributed(cfg: TrainConfig):
    """Returns (ddp, rank, local_rank, world, device, threads). The device is set before the process
    group starts (nccl then binds each rank to its GPU at once). On the CPU, the local processes
    share the cores instead of oversubscribing them."""
    ddp = int(os.environ.get('RANK', -1)) != -1
    want_cuda = cfg.device == 'cuda' or (cfg.device == 'auto' and torch.cuda.is_available())
    rank, local_rank, world = 0, 0, 1
    if ddp:
        rank, local_rank, world = (int(os.environ[k]) for k in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE'))
    device = torch.device('cuda', local_rank) if want_cuda else torch.device('cpu')
    if want_cuda:
        torch.cuda.set_device(device)
    if ddp:
        dist.init_process_group(backend='nccl' if want_cuda else 'gloo', device_id=device if want_cuda else None)
    local_world = int(os.environ.get('LOCAL_WORLD_SIZE', 1))
    threads = max(1, (os.cpu_count() or 1) // local_world) if local_world > 1 else torch.get_num_threads()
    return ddp, rank, local_rank, world, device, threads


def worker_count(cfg: TrainConfig, device, threads: int) -> tuple[int, int]:
    """(DataLoader workers, torch threads for the step) for --workers (see TrainConfig)."""
    if cfg.workers >= 0:
        return cfg.workers, max(1, threads - cfg.workers) if device.type == 'cpu' else threads
    if device.type == 'cuda':
        return min(8, max(1, threads - 1)), threads
    return (1, threads - 1) if threads >= 2 else (0, threads)


@contextmanager
def rank0_first(ddp: bool, master: bool):
    """Rank 0 runs the body first (downloads, the hub cache, conversions); the others wait at a
    barrier and then read what it left, instead of every rank fetching the same files at once."""
    if ddp and not master:
        dist.barrier()
    yield
    if ddp and master:
        dist.barrier()


def vision_image_size(name: str) -> int:
    """The image size of a pretrained SigLIP (name or folder): what the renderer must draw."""
    return SiglipVisionConfig.from_pretrained(name).image_size


def build(cfg: TrainConfig, ddp: bool, master: bool, device):
    """(cfg, teacher, model on device), rank 0 first; cfg takes a pretrained encoder's image size."""
    with rank0_first(ddp, master):   # the backbones' and the teacher's files
        if cfg.vision and cfg.image_size != (size := vision_image_size(cfg.vision)):
            if master:
                print(f'--image-size {cfg.image_size} -> {size}: scenes are rendered at the size {cfg.vision} reads')
            cfg = replace(cfg, image_size=size)
        teacher = (None if not cfg.distill else DepthModelTeacher(cfg.teacher, device=device) if cfg.teacher
                   else RenderedTeacher())
        model = CameraAwareMLLM(model_config(cfg), tokenizer=tiny_tokenizer(cfg)).to(device)
    if cfg.freeze_llm:
        train_last_llm_layers(model.llm, cfg.llm_train_layers)
    return cfg, teacher, model


def main(cfg: TrainConfig):
    check_config(cfg)
    step, ckpt = 0, find_checkpoint(cfg.out) if cfg.resume else None
    if cfg.resume and ckpt is None:
        raise FileNotFoundError(f'--resume: no checkpoint in {cfg.out} (looked for ckpt/ and ckpt.old/)')
    if ckpt:
        check_resume(cfg, ckpt)
    ddp, rank, local_rank, world, device, threads = setup_distributed(cfg)
    master = rank == 0
    micro = cfg.micro_batch or cfg.batch_size // world
    if micro < 1 or cfg.batch_size % (micro * world):
        raise ValueError(f'--batch-size {cfg.batch_size} must be a multiple of --micro-batch {micro} '
                         f'x {world} processes')
    grad_accum = cfg.batch_size // (micro * world)
    workers, threads = worker_count(cfg, device, threads)
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)  # same initial weights on every rank

    cfg, teacher, model = build(cfg, ddp, master, device)
    train_ds, val_ds = datasets(cfg, data_config(cfg))
    # batches are built, tokenised (and given the renderer's teacher targets) in the workers
    bucket = cfg.seq_bucket or (64 if cfg.compile else 1)
    cpu_teacher = teacher if isinstance(teacher, RenderedTeacher) else None
    collate_fn = partial(collate_encode, encode=model.encoder(bucket), teacher=cpu_teacher, grid_hw=model.enc_grid_hw)
    val_batches = [collate_encode([val_ds[i] for i in range(s, min(s + micro, len(val_ds)))], model.encoder(bucket))
                   for s in range(0, len(val_ds), micro)]

    opt = configure_optimizer(model, cfg)
    if ckpt:
        load_weights(model, os.path.join(ckpt, 'model.safetensors'))  # strict: names what differs
        step = load_train_state(ckpt, opt)
    raw_model = model  # uncompiled, unwrapped: what we save and evaluate
    if cfg.compile:
        model = torch.compile(model)
    if ddp:  # no buffer broadcast: the only buffers (digit ids, rotary tables) are constants
        model = DDP(model, device_ids=[local_rank] if device.type == 'cuda' else None, broadcast_buffers=False)
    autocast = (torch.autocast('cuda', dtype=torch.bfloat16) if cfg.dtype == 'bfloat16' and device.type == 'cuda'
                else nullcontext())
    loader = make_loader(train_ds, collate_fn, StepSampler(step, cfg.max_steps, rank, world, micro, cfg.batch_size),
                         workers, pin=device.type == 'cuda')
    batches = iter(loader)

    if master:
        os.makedirs(cfg.out, exist_ok=True)
        n_train = sum(p.numel() for p in raw_model.parameters() if p.requires_grad)
        print(f'{n_train / 1e6:.2f}M trainable parameters, grid {raw_model.grid_hw}, world {world}, '
              f'grad_accum {grad_accum}, {workers} data workers, {threads} threads, from step {step}')
        log = open_log(os.path.join(cfg.out, 'log.jsonl'), step)
    bar = tqdm(total=cfg.max_steps, initial=step, disable=not master, desc='train')
    t0, t0_step, wait, tokens = time.time(), step, 0.0, 0
    while step < cfg.max_steps:
        lr = set_lr(opt, step, cfg)
        sums = torch.zeros(3, device=device)  # loss, answer, distill: this rank's micro-batch mean
        for j in range(grad_accum):
            t = time.time()
            batch = next(batches)
            wait += time.time() - t                                        # the step waiting on data
            tokens += int(batch['attention_mask'].sum())                   # a CPU tensor: no sync
            target = batch['teacher'] if 'teacher' in batch else teacher(batch, raw_model.enc_grid_hw) if teacher else None
            if ddp:  # only the last micro-step all-reduces the gradients
                model.require_backward_grad_sync = j == grad_accum - 1
            inputs = {k: v for k, v in batch.items() if torch.is_tensor(v)}   # no strings: nothing for --compile to guard
            with autocast:
                _, loss, parts = model(inputs, teacher=target)
            (loss / grad_accum).backward()
            sums += torch.stack([loss.detach(), parts['answer'], parts['distill']]).float() / grad_accum
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if ddp:  # gloo has no AVG: sum, then divide (on the device: nccl needs CUDA tensors)
            dist.all_reduce(sums, op=dist.ReduceOp.SUM)
            sums /= world
        bar.update(1)
        last = step == cfg.max_steps
        evaluate = step % cfg.eval_every == 0 or last   # whatever log_every is
        if master and (step % cfg.log_every == 0 or evaluate):
            dt = time.time() - t0
            rec = dict(step=step, loss=sums[0].item(), answer=sums[1].item(), distill=sums[2].item(), lr=lr,
                       samples_per_s=cfg.batch_size * (step - t0_step) / dt,
                       tokens_per_s=tokens / dt, data_share=wait / dt)            # this rank's tokens, per second
            if device.type == 'cuda':
                rec['peak_mem_gb'] = torch.cuda.max_memory_allocated(device) / 2 ** 30
            if evaluate:
                rec['val_answer'] = val_loss(raw_model, val_batches, autocast)
            bar.set_postfix(loss=f"{rec['loss']:.3f}", **({'val': f"{rec['val_answer']:.3f}"} if 'val_answer' in rec else {}))
            log.write(json.dumps(rec) + '\n')
            log.flush()
            t0, t0_step, wait, tokens = time.time(), step, 0.0, 0
        if master and (step % cfg.save_every == 0 or last):
            save_checkpoint(cfg.out, raw_model, opt, cfg, step)
        if master and cfg.keep_every and step % cfg.keep_every == 0:
            keep_model(os.path.join(cfg.out, f'step_{step}'), raw_model, cfg)
    bar.close()
    if master:
        log.close()
        print(f'done: {step} steps, checkpoint in {find_checkpoint(cfg.out)}')
    if ddp:
        dist.barrier()
        dist.destroy_process_group()


# -----------------------------------------------------------------------------
# settings checked before anything runs

def check_resume(cfg: TrainConfig, ckpt: str):
    """A resumed run must train as the saved one did: every difference outside RESUMABLE is named."""
    saved = saved_config(ckpt)
    safe = [k for k in RESUMABLE if not (cfg.data and k == 'val_samples')]   # real data: it splits the file
    diffs = [f'{as_flag(k, v)} (saved: {as_flag(k, saved[k])})' for k, v in asdict(cfg).items()
             if k not in safe and v != saved[k]]
    if diffs:
        raise ValueError(f"--resume: {ckpt}/train_config.json was trained with other settings than "
                         f"{'; '.join(diffs)}. Leave those flags out to resume with the saved values, or "
                         f"train a new run (another --out); on resume only {', '.join(RESUMABLE[2:])} may change.")


def as_flag(key: str, value) -> str:
    """('augment', False) -> '--no-augment'; ('lr', 0.01) -> '--lr 0.01'."""
    name = key.replace('_', '-')
    if isinstance(value, bool):
        return f"--{'' if value else 'no-'}{name}"
    return f'--{name} {value}'


def check_config(cfg: TrainConfig):
    """Clear errors before anything runs (a zero would divide by zero later, or train no-op steps)."""
    bad = [f"--{k.replace('_', '-')} {getattr(cfg, k)} (must be >= 1)" for k in
           ('batch_size', 'max_steps', 'log_every', 'eval_every', 'save_every', 'val_samples', 'image_size',
            'max_objects', 'patch_size', 'pixel_shuffle') if not getattr(cfg, k) >= 1]
    bad += [f"--{k.replace('_', '-')} {getattr(cfg, k)} (must be >= 0)" for k in
            ('micro_batch', 'warmup_steps', 'min_lr', 'weight_decay', 'grad_clip', 'distill_weight', 'digit_loss',
             'geometry_hidden', 'new_lr', 'projector_steps', 'keep_every', 'seq_bucket', 'llm_train_layers')
            if not getattr(cfg, k) >= 0]
    bad += [f'--lr {cfg.lr} (must be > 0)'] if not cfg.lr > 0 else []
    bad += [f'--workers {cfg.workers} (-1: auto, 0: in this process, or a count)'] if cfg.workers < -1 else []
    bad += ['--llm-train-layers needs --freeze-llm (without it, every layer trains)'] if cfg.llm_train_layers and not cfg.freeze_llm else []
    bad += ["--preset real-llm needs --llm NAME_OR_FOLDER (e.g. the converted SmolLM2: python model.py "
            "--convert-gguf smollm2 runs/smollm2)"] if cfg.preset == 'real-llm' and not cfg.llm else []
    bad += [f'--dtype {cfg.dtype!r} (float32 or bfloat16)'] if cfg.dtype not in ('float32', 'bfloat16') else []
    bad += [f'--device {cfg.device!r} (auto, cpu or cuda)'] if cfg.device not in ('auto', 'cpu', 'cuda') else []
    bad += [f'--camera {cfg.camera!r} (one of {sorted(CAMERAS)})'] if cfg.camera not in CAMERAS else []
    bad += ['--data needs --image-root'] if cfg.data and not cfg.image_root else []
    bad += ['--data with --distill needs --teacher NAME_OR_FOLDER (a transformers depth model): real '
            'images have no rendered geometry; or use --no-distill'] if cfg.data and cfg.distill and not cfg.teacher else []
    bad += ['--teacher needs --distill'] if cfg.teacher and not cfg.distill else []
    bad += ['--canonical-focal maps synthetic answers only; leave it out with --data'] if cfg.data and cfg.canonical_focal else []
    bad += ['--canonical-focal has no label space for the distance task (it mixes two points); leave one '
            'of them out'] if cfg.canonical_focal and 'distance' in cfg.tasks.split(',') else []
    bad += [f"--tokenizer {cfg.tokenizer!r} (char or bpe)"] if cfg.tokenizer not in ('char', 'bpe') else []
    bad += [f'--frames {cfg.frames} (0: single images, else 1..16)'] if not 0 <= cfg.frames <= 16 else []
    bad += ['--frames trains on synthetic rooms (the rendered teacher) without camera text: no --data, no --teacher, '
            'no --camera-text, no --canonical-focal'] if cfg.frames and (
        cfg.teacher or cfg.data or cfg.camera_text or cfg.canonical_focal) else []
    for parse, text in ((periods, cfg.geometry_periods), (pitch_range, cfg.pitch_range)):
        try:
            parse(text)
        except ValueError as e:
            bad.append(str(e))
    if bad:
        raise ValueError('invalid settings: ' + '; '.join(bad))


if __name__ == '__main__':
    main(parse_args())
