"""
Train the camera-aware MLLM on spatial questions about synthetic scenes or real Omni3D-format
data, on one CPU or many GPUs.

    python train.py                                    # full camera-aware tiny model, CPU, minutes
    python train.py --no-camera-embed --no-augment --no-distill --out runs/rgb_only
    torchrun --standalone --nproc_per_node=2 train.py  # DDP: gloo on CPU, nccl on GPU
    torchrun --standalone --nproc_per_node=8 train.py --preset real   # SigLIP-B/16 + SmolLM2, bf16
    python train.py --out runs/x --resume              # continue a run from its last checkpoint
    python train.py --data OMNI3D.json --image-root DIR --teacher depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf

The three parts of the method are three switches, so the ablation is five commands:
--camera-embed (ray embedding on every visual token), --augment (crop/zoom/shift with exact K)
and --distill (a geometry branch matched to a teacher's dense geometry).

Data is a pure function of the sample index (data.py seeds item i by i alone), so the run is
laid out by index: optimiser step k consumes global samples [k*B, (k+1)*B), and rank r's j-th
micro-batch of that step is the slice starting at k*B + (j*world + r)*micro. One process and
N processes therefore see the same global batches, and a resumed run needs only the step.

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
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from augment import AugmentConfig
from data import (TASKS, DataConfig, Omni3DDataset, SyntheticDataset, canonical_focal, collate, load_omni3d,
                  tokenizer_corpus)
from distill import DepthModelTeacher, RenderedTeacher
from model import CameraAwareMLLM, ModelConfig, bpe_tokenizer, load_weights, read_json, read_safetensors
from scenes import CAMERAS, SceneConfig


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
    tokenizer: str = 'bpe'           # tiny LLM's tokenizer: 'bpe' (words, digits one by one) or 'char'
    # backbones ('' = tiny from configs); see model.py for names, folders and GGUF files
    vision: str = ''
    llm: str = ''
    gguf_file: str = ''
    freeze_vision: bool = False
    freeze_llm: bool = False
    # optimisation: grad_accum = batch_size // (micro_batch * world_size)
    batch_size: int = 16
    micro_batch: int = 0             # per process and micro-step; 0: batch_size // world_size
    max_steps: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    # bookkeeping
    log_every: int = 10
    eval_every: int = 250            # held-out answer loss on val_samples
    val_samples: int = 64
    save_every: int = 250
    seed: int = 0
    device: str = 'auto'             # 'auto', 'cpu', 'cuda'
    dtype: str = 'float32'           # 'float32' or 'bfloat16' (autocast, CUDA)
    compile: bool = False
    resume: bool = False


PRESETS = {
    'real': dict(vision='google/siglip-base-patch16-224', llm='HuggingFaceTB/SmolLM2-135M-Instruct',
                 image_size=224, lr=1e-4, min_lr=1e-5, batch_size=64, micro_batch=8,
                 dtype='bfloat16', device='cuda', max_steps=5000),
}


# What --resume may change: none of these alters what an optimiser step computes (the global batch
# alone defines it, however it is split into micro-batches and processes). A longer --max-steps
# continues the run, with the cosine schedule stretched to the new end from the current step on.
RESUMABLE = ('out', 'resume', 'max_steps', 'log_every', 'eval_every', 'save_every', 'val_samples',
             'micro_batch', 'device', 'compile', 'image_root')   # image_root: the same images, moved


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
                       pixel_shuffle=cfg.pixel_shuffle, freeze_vision=cfg.freeze_vision,
                       zero_init=bool(cfg.vision or cfg.llm),   # only pretrained weights need keeping
                       freeze_llm=cfg.freeze_llm)


def data_config(cfg: TrainConfig) -> DataConfig:
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


def datasets(cfg: TrainConfig, dcfg: DataConfig):
    """(train, val). Synthetic: scenes laid out by index. Real (--data): the file's last val_samples
    images are held out; the others repeat, a new question each epoch. Real images come in any
    size and are resized to image_size (K follows exactly, so fx/fy may differ), and their zooms
    only widen the view (s <= 1, no shifts): a crop could cut a queried object out, and unlike a
    rendered scene, a photo has no margin known to keep it in view."""
    n = cfg.max_steps * cfg.batch_size
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
    return None if cfg.llm or cfg.tokenizer == 'char' else bpe_tokenizer(tokenizer_corpus(cfg.camera_text))


def get_lr(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay from lr to min_lr at max_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * min(t, 1.0))) * (cfg.lr - cfg.min_lr)


def configure_optimizer(model, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on norms, biases or embeddings' scales)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [dict(params=decay, weight_decay=cfg.weight_decay), dict(params=no_decay, weight_decay=0.0)]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def micro_batch(ds, cfg: TrainConfig, step: int, j: int, rank: int, world: int, micro: int) -> dict:
    """Rank `rank`'s j-th micro-batch (of `micro` samples) of optimiser step `step` (see the
    docstring's layout)."""
    start = step * cfg.batch_size + (j * world + rank) * micro
    return collate([ds[i] for i in range(start, start + micro)])


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
    """Returns (ddp, rank, local_rank, world, device)."""
    ddp = int(os.environ.get('RANK', -1)) != -1
    want_cuda = cfg.device == 'cuda' or (cfg.device == 'auto' and torch.cuda.is_available())
    rank, local_rank, world = 0, 0, 1
    if ddp:
        dist.init_process_group(backend='nccl' if want_cuda else 'gloo')
        rank, local_rank, world = dist.get_rank(), int(os.environ['LOCAL_RANK']), dist.get_world_size()
    if want_cuda:
        device = torch.device('cuda', local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device('cpu')
        local_world = int(os.environ.get('LOCAL_WORLD_SIZE', 1))
        if local_world > 1:  # share the cores between the local processes instead of oversubscribing
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return ddp, rank, local_rank, world, device


def main(cfg: TrainConfig):
    check_config(cfg)
    step, ckpt = 0, find_checkpoint(cfg.out) if cfg.resume else None
    if cfg.resume and ckpt is None:
        raise FileNotFoundError(f'--resume: no checkpoint in {cfg.out} (looked for ckpt/ and ckpt.old/)')
    if ckpt:
        check_resume(cfg, ckpt)
    ddp, rank, local_rank, world, device = setup_distributed(cfg)
    master = rank == 0
    micro = cfg.micro_batch or cfg.batch_size // world
    if micro < 1 or cfg.batch_size % (micro * world):
        raise ValueError(f'--batch-size {cfg.batch_size} must be a multiple of --micro-batch {micro} '
                         f'x {world} processes')
    grad_accum = cfg.batch_size // (micro * world)
    torch.manual_seed(cfg.seed)  # same initial weights on every rank

    train_ds, val_ds = datasets(cfg, data_config(cfg))
    val_batches = [collate([val_ds[i] for i in range(s, min(s + micro, len(val_ds)))])
                   for s in range(0, len(val_ds), micro)]
    teacher = (None if not cfg.distill else DepthModelTeacher(cfg.teacher, device=device) if cfg.teacher
               else RenderedTeacher())

    model = CameraAwareMLLM(model_config(cfg), tokenizer=tiny_tokenizer(cfg)).to(device)
    opt = configure_optimizer(model, cfg)
    if ckpt:
        load_weights(model, os.path.join(ckpt, 'model.safetensors'))  # strict: names what differs
        step = load_train_state(ckpt, opt)
    raw_model = model  # uncompiled, unwrapped: what we save and evaluate
    if cfg.compile:
        model = torch.compile(model)
    if ddp:
        model = DDP(model, device_ids=[local_rank] if device.type == 'cuda' else None)
    autocast = (torch.autocast('cuda', dtype=torch.bfloat16) if cfg.dtype == 'bfloat16' and device.type == 'cuda'
                else nullcontext())

    if master:
        os.makedirs(cfg.out, exist_ok=True)
        n_train = sum(p.numel() for p in raw_model.parameters() if p.requires_grad)
        print(f'{n_train / 1e6:.2f}M trainable parameters, grid {raw_model.grid_hw}, world {world}, '
              f'grad_accum {grad_accum}, from step {step}')
        log = open_log(os.path.join(cfg.out, 'log.jsonl'), step)
    bar = tqdm(total=cfg.max_steps, initial=step, disable=not master, desc='train')
    t0, t0_step = time.time(), step
    while step < cfg.max_steps:
        lr = get_lr(step, cfg)
        for g in opt.param_groups:
            g['lr'] = lr
        sums = torch.zeros(3, device=device)  # loss, answer, distill: this rank's micro-batch mean
        for j in range(grad_accum):
            batch = micro_batch(train_ds, cfg, step, j, rank, world, micro)
            target = teacher(batch, raw_model.enc_grid_hw) if teacher else None  # at the encoder's grid
            if ddp:  # only the last micro-step all-reduces the gradients
                model.require_backward_grad_sync = j == grad_accum - 1
            with autocast:
                _, loss, parts = model(batch, teacher=target)
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
            rec = dict(step=step, loss=sums[0].item(), answer=sums[1].item(), distill=sums[2].item(), lr=lr,
                       samples_per_s=cfg.batch_size * (step - t0_step) / (time.time() - t0))
            if evaluate:
                rec['val_answer'] = val_loss(raw_model, val_batches, autocast)
            bar.set_postfix(loss=f"{rec['loss']:.3f}", **({'val': f"{rec['val_answer']:.3f}"} if 'val_answer' in rec else {}))
            log.write(json.dumps(rec) + '\n')
            log.flush()
            t0, t0_step = time.time(), step
        if master and (step % cfg.save_every == 0 or last):
            save_checkpoint(cfg.out, raw_model, opt, cfg, step)
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
             'geometry_hidden')
            if not getattr(cfg, k) >= 0]
    bad += [f'--lr {cfg.lr} (must be > 0)'] if not cfg.lr > 0 else []
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
    for parse, text in ((periods, cfg.geometry_periods), (pitch_range, cfg.pitch_range)):
        try:
            parse(text)
        except ValueError as e:
            bad.append(str(e))
    if bad:
        raise ValueError('invalid settings: ' + '; '.join(bad))


if __name__ == '__main__':
    main(parse_args())
