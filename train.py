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

One TrainConfig, every field a flag (defaults < --preset < flags given). The batch comes from one
number: grad_accum = batch_size // (micro_batch · world), e.g. 16 // (4 · 2) = 2 micro-steps per rank;
--micro-batch 0 (the default) is batch_size // world, and since every loss is a per-sample mean the
split changes a step only by float rounding. Under torchrun the device is set before the process
group starts, rank 0 fetches the backbones' files while the others wait, and DDP does not broadcast
buffers (they are constants). Rank 0 logs (OUT/log.jsonl) and saves. Chapters of their own: the
data, laid out by sample index and batched in workers (loader.py); the learning rates per part
(optim.py); the checkpoints that survive a crash, and --resume (checkpoint.py).
"""
import argparse
import json
import math
import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, fields, replace
from functools import partial

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm
from transformers import SiglipVisionConfig

from checkpoint import (find_checkpoint, keep_model, load_train_state, load_weights, open_log, resume_from,
                        save_checkpoint, saved_config)
from data import tokenizer_corpus
from distill import DepthModelTeacher, RenderedTeacher
from loader import (StepSampler, collate_encode, data_config, datasets, make_loader, pitch_range, views_checks,
                    worker_count)
from model import CameraAwareMLLM, ModelConfig
from optim import configure_optimizer, set_lr, train_last_llm_layers
from scenes import CAMERAS
from tokens import bpe_tokenizer
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
    frames: int = 0                  # > 0: views.py rooms in this many posed frames; --tasks 'depth' = views.VIEW_TASKS
    object_channels: bool = True     # --frames: the teacher's object channels on every frame (no: surface depth only)
    world_channels: bool = False     # --frames: + each object's floor-plan position (world frame), a head of its own
    room_objects: str = '3,5'        # --frames: objects per room, 'lo,hi' (a room that shows fewer than 2 is redrawn)
    questions: int = 1               # --frames: up to this many questions per room in one sequence (multi-turn)
    min_pixels: float = 6.0          # --frames: an object is seen in a frame from this many pixels of a 64² frame
    reasons: bool = False            # --frames: the choices' answers show their measurements first (views.with_reasons)
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
    conv_stem: bool = False          # tiny encoder: strided 3×3 convolutions in place of the patch projection (conv_stem.py)
    object_min: float = 0.0          # rendered teacher: object depth matched on tokens at least this much object (0: any pixel)
    object_weight: float = 1.0       # + this × the object-depth channel's own L1 (model.ModelConfig.object_weight)
    detach_phase: bool = True        # E_geo's sin/cos phases pass no answer gradient to the geometry head
    geometry_steps: int = 800        # a first stage of this many steps: only the distillation loss (the LLM not run)
    digit_loss: float = 1.0          # ordinal loss on answer digits (model.digit_wasserstein)
    geometry_periods: str = '10,1,0.1' # metres, comma-separated: sin/cos of predicted depths for E_geo ('': none)
    patch_size: int = 16             # tiny vision encoder's patch (pixels)
    geometry_hidden: int = 128       # geometry head and embedding: 0 linear, > 0 one GELU layer this wide
    pixel_shuffle: int = 1           # r×r visual tokens -> one LLM token
    tokenizer: str = 'bpe'           # tiny LLM's tokenizer: 'bpe' (words, digits one by one) or 'char'
    llm_layers: int = 2              # the tiny LLM's decoder layers (not with --llm); more than --init-from's: grown
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
    max_steps: int = 3500            # docs/pilots.md: the recipe chosen on validation scenes
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
    workers: int = -1                # DataLoader processes building the batches (0: this one); -1: CUDA: CPU cores
                                     # per process - 1, at most 8; CPU: 1 if 2+ threads per process (the step gets one less), else 0
    resume: bool = False
    init_from: str = ''              # a run or model folder to start from (weights and tokenizer; same model flags)


PRESETS = {
    'real': dict(vision='google/siglip-base-patch16-224', llm='HuggingFaceTB/SmolLM2-135M-Instruct',
                 image_size=224, lr=2e-5, min_lr=2e-6, new_lr=2e-4, projector_steps=500, batch_size=64, micro_batch=8,
                 dtype='bfloat16', device='cuda', max_steps=5000, geometry_steps=0),
    # README's "real LLM" recipe, for a CPU: a pretrained LLM (--llm: e.g. the converted SmolLM2-135M-Instruct)
    # frozen but for its last 2 layers, the tiny vision encoder from scratch, 16 LLM tokens per image
    # (min_lr = lr: constant after the warm-up, as measured)
    'real-llm': dict(freeze_llm=True, llm_train_layers=2, pixel_shuffle=2, batch_size=8, max_steps=400, geometry_steps=0,
                     warmup_steps=20, lr=1e-4, min_lr=1e-4, new_lr=1e-3, eval_every=50, val_samples=32,
                     save_every=100, keep_every=50),
}


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
        return TrainConfig(**{**saved_config(ckpt, TrainConfig), **given})
    return TrainConfig(**{**PRESETS.get(preset, {}), **given})


# ----------------------------------------------------------------------------- pieces built from the config

def model_config(cfg: TrainConfig) -> ModelConfig:
    return ModelConfig(vision=cfg.vision or None, llm=cfg.llm or None, gguf_file=cfg.gguf_file or None,
                       image_size=cfg.image_size, camera_embed=cfg.camera_embed, geometry=cfg.distill,
                       distill_weight=cfg.distill_weight, digit_loss=cfg.digit_loss, camera_text=cfg.camera_text,
                       pose=cfg.pose, geometry_periods=periods(cfg.geometry_periods), geometry_hidden=cfg.geometry_hidden,
                       patch_size=cfg.patch_size, pixel_shuffle=cfg.pixel_shuffle, freeze_vision=cfg.freeze_vision,
                       zero_init=bool(cfg.vision or cfg.llm), freeze_llm=cfg.freeze_llm, llm_layers=cfg.llm_layers,
                       world_channels=cfg.world_channels, conv_stem=cfg.conv_stem,
                       object_weight=cfg.object_weight, detach_phase=cfg.detach_phase)


def periods(text: str) -> tuple:
    """'10,1' -> (10.0, 1.0); each must be a positive number of metres."""
    try:
        out = tuple(float(p) for p in text.split(',') if p.strip())
    except ValueError:
        out = (-1.0,)
    if not all(p > 0 and math.isfinite(p) for p in out):
        raise ValueError(f'--geometry-periods must be comma-separated positive metres, e.g. 10,1; got {text!r}')
    return out


def tiny_tokenizer(cfg: TrainConfig):
    """The tiny LLM's tokenizer (None: tokens.build_tokenizer's, the character one or the real LLM's own)."""
    corpus = tokenizer_corpus(cfg.camera_text) + (views_corpus() if cfg.frames else [])
    return None if cfg.llm or cfg.tokenizer == 'char' else bpe_tokenizer(corpus)


# ----------------------------------------------------------------------------- the run

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


@contextmanager
def rank0_first(ddp: bool, master: bool):
    """Rank 0 runs the body first (downloads, the hub cache, conversions); the others wait at a
    barrier and then read what it left, instead of every rank fetching the same files at once."""
    if ddp and not master:
        dist.barrier()
    yield
    if ddp and master:
        dist.barrier()


def build(cfg: TrainConfig, ddp: bool, master: bool, device, ckpt: str | None = None):
    """(cfg, teacher, model on device), rank 0 first; cfg takes a pretrained encoder's image size.
    --init-from: that run's model; resumed (ckpt), the run's own checkpoint, which holds the same tokenizer."""
    with rank0_first(ddp, master):   # the backbones' and the teacher's files
        if cfg.vision and cfg.image_size != (size := SiglipVisionConfig.from_pretrained(cfg.vision).image_size):
            if master:
                print(f'--image-size {cfg.image_size} -> {size}: scenes are rendered at the size {cfg.vision} reads')
            cfg = replace(cfg, image_size=size)
        teacher = (None if not cfg.distill else DepthModelTeacher(cfg.teacher, device=device) if cfg.teacher
                   else RenderedTeacher(cfg.object_min))
        if cfg.init_from:   # a curriculum's next stage (README: posed frames)
            model = CameraAwareMLLM.load(ckpt or find_checkpoint(cfg.init_from) or cfg.init_from).to(device)
            if cfg.world_channels and not model.cfg.world_channels:
                model.add_world_channels()   # grown by the world head (E_world starts at 0)
            if cfg.llm_layers > model.cfg.llm_layers and not cfg.llm:
                model.grow_llm(cfg.llm_layers)   # deepened by identity blocks (block expansion)
            if asdict(model.cfg) != (flags := asdict(model_config(cfg))):
                raise ValueError(f'--init-from {cfg.init_from}: its model settings {asdict(model.cfg)} differ from '
                                 f'these flags\' {flags}')
        else:
            model = CameraAwareMLLM(model_config(cfg), tokenizer=tiny_tokenizer(cfg)).to(device)
    if cfg.freeze_llm:
        train_last_llm_layers(model.llm, cfg.llm_train_layers)
    return cfg, teacher, model


def main(cfg: TrainConfig):
    check_config(cfg)
    step, ckpt = 0, resume_from(cfg)
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

    cfg, teacher, model = build(cfg, ddp, master, device, ckpt)
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
                _, loss, parts = model(inputs, teacher=target, answer=step >= cfg.geometry_steps)
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


# ----------------------------------------------------------------------------- settings checked before anything runs

def check_config(cfg: TrainConfig):
    """Clear errors before anything runs (a zero would divide by zero later, or train no-op steps)."""
    bad = [f"--{k.replace('_', '-')} {getattr(cfg, k)} (must be >= 1)" for k in
           ('batch_size', 'max_steps', 'log_every', 'eval_every', 'save_every', 'val_samples', 'image_size',
            'max_objects', 'patch_size', 'pixel_shuffle', 'llm_layers') if not getattr(cfg, k) >= 1]
    bad += [f"--{k.replace('_', '-')} {getattr(cfg, k)} (must be >= 0)" for k in
            ('micro_batch', 'warmup_steps', 'min_lr', 'weight_decay', 'grad_clip', 'distill_weight', 'digit_loss',
             'geometry_hidden', 'new_lr', 'projector_steps', 'geometry_steps', 'object_min', 'object_weight', 'keep_every', 'seq_bucket', 'llm_train_layers')
            if not getattr(cfg, k) >= 0]
    bad += [f'--lr {cfg.lr} (must be > 0)'] if not cfg.lr > 0 else []
    bad += [f'--workers {cfg.workers} (-1: auto, 0: in this process, or a count)'] if cfg.workers < -1 else []
    bad += ['--llm-train-layers needs --freeze-llm (without it, every layer trains)'] if cfg.llm_train_layers and not cfg.freeze_llm else []
    bad += ["--preset real-llm needs --llm NAME_OR_FOLDER (e.g. the converted SmolLM2: python -m tools.gguf "
            "smollm2 runs/smollm2)"] if cfg.preset == 'real-llm' and not cfg.llm else []
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
    bad += ["--llm-layers is the tiny LLM's depth; a --llm model brings its own"] if (
        cfg.llm and cfg.llm_layers != TrainConfig.llm_layers) else []
    bad += views_checks(cfg, TrainConfig)
    for parse, text in ((periods, cfg.geometry_periods), (pitch_range, cfg.pitch_range)):
        try:
            parse(text)
        except ValueError as e:
            bad.append(str(e))
    if bad:
        raise ValueError('invalid settings: ' + '; '.join(bad))


if __name__ == '__main__':
    main(parse_args())
