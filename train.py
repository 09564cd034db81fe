"""
Train the camera-aware MLLM on spatial questions about synthetic scenes or real Omni3D-format
data, on one CPU or many GPUs.

    python train.py                                    # the camera-aware tiny model (ModelConfig()), CPU, minutes
    python train.py --preset rgb_only --out runs/rgb_only   # a row of ABLATION: the camera-blind model
    torchrun --standalone --nproc_per_node=2 train.py  # DDP: gloo on CPU, nccl on GPU
    torchrun --standalone --nproc_per_node=8 train.py --fsdp --activation-checkpointing   # FSDP2 (common/fsdp.py)
    torchrun --standalone --nproc_per_node=8 train.py --preset real   # SigLIP-B/16 + SmolLM2, bf16
    python train.py --llm smollm2/ --freeze-llm --llm-train-layers 2 --pixel-shuffle 2 ...   # docs/real_llm.md
    python train.py --out runs/x --resume              # continue a run from its last checkpoint
    python train.py --data OMNI3D.json --image-root DIR --teacher depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf

The three parts of the method are three switches: --camera-embed (ray embedding on every visual
token), --augment (crop/zoom/shift with exact K) and --distill (a geometry branch matched to a
teacher's dense geometry); ABLATION names their combinations and the baselines (--preset NAME).

One TrainConfig, every field a flag (defaults < --preset < flags given). The batch comes from one
number: grad_accum = batch_size // (micro_batch · world), e.g. 16 // (4 · 2) = 2 micro-steps per rank;
--micro-batch 0 (the default) is batch_size // world, and since every loss is a per-sample mean the
split changes a step only by float rounding. Under torchrun the device is set before the process
group starts, rank 0 fetches the backbones' files while the others wait, and DDP does not broadcast
buffers (they are constants). Rank 0 logs (OUT/log.jsonl) and saves. Chapters of their own: the
data, laid out by sample index and batched in workers (data/loader.py); the learning rates per part
(common/optim.py); the checkpoints that survive a crash, and --resume (common/checkpoint.py).
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

from common.checkpoint import (find_checkpoint, keep_model, load_train_state, load_weights, open_log, resume_from,
                        save_checkpoint, saved_config)
from common.fsdp import full_state, load_full_state, shard
from common.optim import configure_optimizer, set_lr, train_last_llm_layers
from data.loader import StepSampler, collate_encode, datasets, make_loader, pitch_range, worker_count
from data.synthetic import tokenizer_corpus
from data.tokens import bpe_tokenizer
from distill import DepthModelTeacher, RenderedTeacher
from model import CameraAwareMLLM, ModelConfig
from world.scenes import CAMERAS


@dataclass
class TrainConfig:
    out: str = 'runs/default'
    preset: str = ''                 # a PRESETS or ABLATION name: its settings under the flags given
    # data: one training camera; the visibility range matches the augmentation's zoom range
    camera: str = 'standard'
    image_size: int = ModelConfig.image_size
    max_objects: int = 1             # objects per scene: 1..max_objects
    pitch_range: str = '5,15'        # camera pitch, degrees down, uniform in 'lo,hi' (pose given to the model)
    tasks: str = 'depth'             # any of synthetic.TASKS, comma-separated, e.g. depth,closer,detect
    task_weights: str = ''           # comma-separated, same order as tasks; '' = uniform
    data: str = ''                   # an Omni3D-format JSON to train on ('' = synthetic scenes); its
    image_root: str = ''             # images are in image_root; the last val_samples are held out
    teacher: str = ''                # distillation teacher: a transformers depth model (name or folder);
                                     # '' = the renderer's exact geometry (synthetic scenes only)
    # the three parts of the method
    camera_embed: bool = ModelConfig.camera_embed
    augment: bool = True
    render_augment: bool = True      # synthetic scenes: the augmented camera rendered exactly, a wider lens showing
                                     # more room where the warp shows a black border (docs/log.md); real data: warped
    distill: bool = ModelConfig.geometry
    distill_weight: float = ModelConfig.distill_weight
    object_weight: float = ModelConfig.object_weight   # + the object-depth channel's own L1
    object_min: float = 0.0          # the rendered teacher's object depth from this share of a token (0: any object
                                     # pixel; distill.MIN_OBJECT = 0.25 leaves small objects untaught, docs/pilots.md)
    # two baselines that need no new architecture, and a control
    camera_text: bool = ModelConfig.camera_text   # K written into every question, e.g. 'Camera: fx 110.9 ...'
    canonical_focal: bool = False    # depth-like answers trained as z·f_c/fx (Metric3D), f_c the training
                                     # camera's fx; eval.py maps them back with the test K
    pose: bool = ModelConfig.pose    # the camera embedding reads the pose (--no-pose: the control)
    # how the tiny model reads the image and writes its digits (ModelConfig has the reasons)
    digit_loss: float = ModelConfig.digit_loss
    geometry_periods: str = ','.join(f'{p:g}' for p in ModelConfig.geometry_periods)   # metres; '': none
    patch_size: int = ModelConfig.patch_size
    geometry_hidden: int = ModelConfig.geometry_hidden
    detach_phase: bool = ModelConfig.detach_phase
    pixel_shuffle: int = ModelConfig.pixel_shuffle
    tokenizer: str = 'bpe'           # tiny LLM's tokenizer: 'bpe' (words, digits one by one) or 'char'
    llm_layers: int = ModelConfig.llm_layers   # the tiny LLM's decoder layers (a --llm model brings its own)
    # backbones ('' = tiny from configs); see model.py for names, folders and GGUF files
    vision: str = ''
    llm: str = ''
    gguf_file: str = ''
    freeze_vision: bool = ModelConfig.freeze_vision
    freeze_llm: bool = ModelConfig.freeze_llm
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
    fsdp: bool = False               # under torchrun: FSDP2 (weights, grads, AdamW states sharded; common/fsdp.py) instead of DDP
    activation_checkpointing: bool = False   # --fsdp: each LLM and vision block recomputes its activations in backward
    seq_bucket: int = 0              # token sequences padded to a multiple of this (--compile: one graph per
                                     # length); 0: 64 with --compile, else no padding beyond the longest
    workers: int = -1                # DataLoader processes building the batches (0: this one); -1: CUDA: CPU cores
                                     # per process - 1, at most 8; CPU: 1 if 2+ threads per process (the step gets one less), else 0
    resume: bool = False
    init_from: str = ''              # a run or model folder to start from (weights and tokenizer; same model flags)


PRESETS = {
    'real': dict(vision='google/siglip-base-patch16-224', llm='HuggingFaceTB/SmolLM2-135M-Instruct',
                 image_size=224, lr=2e-5, min_lr=2e-6, new_lr=2e-4, projector_steps=500, batch_size=64, micro_batch=8,
                 dtype='bfloat16', device='cuda', max_steps=5000),
    # a pretrained LLM on a CPU (--llm: e.g. the converted SmolLM2-135M-Instruct), frozen but for its last 2
    # layers, the tiny vision encoder from scratch, 16 LLM tokens per image; constant LR after the warm-up
    'real-llm': dict(freeze_llm=True, llm_train_layers=2, pixel_shuffle=2, batch_size=8, max_steps=400,
                     warmup_steps=20, lr=1e-4, min_lr=1e-4, new_lr=1e-3, eval_every=50, val_samples=32,
                     save_every=100, keep_every=50),
}

# The cross-camera ablation (scripts/ablation.sh trains each row, the docs' table reads them): the three
# parts of the method switched one at a time, the two baselines, and the camera embedding without the pose.
ABLATION = {
    'rgb_only': dict(camera_embed=False, augment=False, distill=False),
    'camera_embed': dict(camera_embed=True, augment=False, distill=False),
    'augment': dict(camera_embed=False, augment=True, distill=False),
    'distill': dict(camera_embed=False, augment=False, distill=True),
    'full': dict(camera_embed=True, augment=True, distill=True),
    'camera_text': dict(camera_embed=False, augment=True, distill=False, camera_text=True),
    'canonical_focal': dict(camera_embed=False, augment=True, distill=False, canonical_focal=True),
    'camera_embed_no_pose': dict(camera_embed=True, augment=False, distill=False, pose=False),
}


def parse_args(argv=None, config_type=TrainConfig, doc: str = __doc__):
    """argparse from the config's fields; precedence: defaults < --preset < explicit flags.
    With --resume: the run's saved train_config.json < explicit flags (checked by check_resume)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    presets = {**PRESETS, **ABLATION}
    for f in fields(config_type):
        flag = '--' + f.name.replace('_', '-')
        if f.type is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS)
        else:
            p.add_argument(flag, type=f.type, default=argparse.SUPPRESS, help=f'default: {f.default!r}')
    given = vars(p.parse_args(argv))
    preset = given.get('preset', '')
    if preset and preset not in presets:
        p.error(f'unknown --preset {preset!r}; choose from {sorted(presets)}')
    ckpt = find_checkpoint(given.get('out', config_type.out)) if given.get('resume') else None
    if ckpt:  # flags not given take the run's values, not the defaults
        return config_type(**{**saved_config(ckpt, config_type), **given})
    return config_type(**{**presets.get(preset, {}), **given})


# ----------------------------------------------------------------------------- pieces built from the config

def model_config(cfg: TrainConfig) -> ModelConfig:
    return ModelConfig(vision=cfg.vision or None, llm=cfg.llm or None, gguf_file=cfg.gguf_file or None,
                       image_size=cfg.image_size, camera_embed=cfg.camera_embed, geometry=cfg.distill,
                       distill_weight=cfg.distill_weight, object_weight=cfg.object_weight, digit_loss=cfg.digit_loss,
                       camera_text=cfg.camera_text, pose=cfg.pose, geometry_periods=periods(cfg.geometry_periods),
                       geometry_hidden=cfg.geometry_hidden, patch_size=cfg.patch_size, pixel_shuffle=cfg.pixel_shuffle, freeze_vision=cfg.freeze_vision,
                       freeze_llm=cfg.freeze_llm, llm_layers=cfg.llm_layers, detach_phase=cfg.detach_phase)


def periods(text: str) -> tuple:
    """'10,1' -> (10.0, 1.0); each must be a positive number of metres."""
    try:
        out = tuple(float(p) for p in text.split(',') if p.strip())
    except ValueError:
        out = (-1.0,)
    if not all(p > 0 and math.isfinite(p) for p in out):
        raise ValueError(f'--geometry-periods must be comma-separated positive metres, e.g. 10,1; got {text!r}')
    return out


def tiny_tokenizer(cfg: TrainConfig, corpus: list[str] | None = None):
    """The tiny LLM's BPE tokenizer, learnt from every phrase the data can ask (None: tokens.build_tokenizer's,
    the character one or the real LLM's own)."""
    if cfg.llm or cfg.tokenizer == 'char':
        return None
    return bpe_tokenizer(corpus if corpus is not None else tokenizer_corpus(cfg.camera_text))


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


def build(cfg: TrainConfig, ddp: bool, master: bool, device, ckpt: str | None = None, corpus=None):
    """(cfg, teacher, model on device), rank 0 first; cfg takes a pretrained encoder's image size.
    --init-from: that run's model; resumed (ckpt), the run's own checkpoint, which holds the same tokenizer.
    corpus: what the tiny tokenizer learns from (tiny_tokenizer)."""
    with rank0_first(ddp, master):   # the backbones' and the teacher's files
        if cfg.vision and cfg.image_size != (size := SiglipVisionConfig.from_pretrained(cfg.vision).image_size):
            if master:
                print(f'--image-size {cfg.image_size} -> {size}: scenes are rendered at the size {cfg.vision} reads')
            cfg = replace(cfg, image_size=size)
        teacher = (None if not cfg.distill else DepthModelTeacher(cfg.teacher, device=device) if cfg.teacher
                   else RenderedTeacher(cfg.object_min))
        if cfg.init_from:   # a curriculum's next stage
            model = CameraAwareMLLM.load(ckpt or find_checkpoint(cfg.init_from) or cfg.init_from).to(device)
            if asdict(model.cfg) != (flags := asdict(model_config(cfg))):
                raise ValueError(f'--init-from {cfg.init_from}: its model settings {asdict(model.cfg)} differ from '
                                 f'these flags\' {flags}')
        else:
            model = CameraAwareMLLM(model_config(cfg), tokenizer=tiny_tokenizer(cfg, corpus)).to(device)
    if cfg.freeze_llm:
        train_last_llm_layers(model.llm, cfg.llm_train_layers)
    return cfg, teacher, model


def main(cfg: TrainConfig, make_datasets=datasets, corpus: list[str] | None = None):
    """Train. make_datasets(cfg) -> (train, val) and the tokenizer's corpus are the single-image data's
    unless given (the multi-frame extension, multiframe/train_views.py, passes its own)."""
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

    cfg, teacher, model = build(cfg, ddp, master, device, ckpt, corpus)
    train_ds, val_ds = make_datasets(cfg)
    # batches are built, tokenised (and given the renderer's teacher targets) in the workers
    bucket = cfg.seq_bucket or (64 if cfg.compile else 1)
    cpu_teacher = teacher if isinstance(teacher, RenderedTeacher) else None
    collate_fn = partial(collate_encode, encode=model.encoder(bucket), teacher=cpu_teacher, grid_hw=model.enc_grid_hw)
    val_batches = [collate_encode([val_ds[i] for i in range(s, min(s + micro, len(val_ds)))], model.encoder(bucket))
                   for s in range(0, len(val_ds), micro)]

    if cfg.fsdp:   # before the optimiser, which must hold the sharded parameters
        shard(model, mp=device.type == 'cuda' and cfg.dtype == 'bfloat16', checkpointing=cfg.activation_checkpointing)
    opt = configure_optimizer(model, cfg)
    if ckpt and cfg.fsdp:
        step = load_full_state(model, opt, ckpt)   # every rank reads the checkpoint, keeps its shards
    elif ckpt:
        load_weights(model, os.path.join(ckpt, 'model.safetensors'))  # strict: names what differs
        step = load_train_state(ckpt, opt)
    raw_model = model  # uncompiled, unwrapped: what we save and evaluate
    if cfg.compile:
        model = torch.compile(model)
    if ddp and not cfg.fsdp:  # no buffer broadcast: the only buffers (digit ids, rotary tables) are constants
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
            if cfg.fsdp:  # only the last micro-step reduce-scatters the gradients
                raw_model.set_requires_gradient_sync(j == grad_accum - 1)
            elif ddp:  # only the last micro-step all-reduces the gradients
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
        val = None
        if evaluate and (master or cfg.fsdp):           # --fsdp: every rank's forward joins the all-gathers
            t = time.time()
            val = val_loss(raw_model, val_batches, autocast)
            t0 += time.time() - t                      # not training time
        if master and (step % cfg.log_every == 0 or evaluate):
            dt = time.time() - t0
            rec = dict(step=step, loss=sums[0].item(), answer=sums[1].item(), distill=sums[2].item(), lr=lr,
                       samples_per_s=cfg.batch_size * (step - t0_step) / dt,
                       tokens_per_s=tokens / dt, data_share=wait / dt)            # this rank's tokens, per second
            if device.type == 'cuda':
                rec['peak_mem_gb'] = torch.cuda.max_memory_allocated(device) / 2 ** 30
            if evaluate:
                rec['val_answer'] = val
            bar.set_postfix(loss=f"{rec['loss']:.3f}", **({'val': f"{rec['val_answer']:.3f}"} if 'val_answer' in rec else {}))
            log.write(json.dumps(rec) + '\n')
            log.flush()
            t0, t0_step, wait, tokens = time.time(), step, 0.0, 0
        save, keep = step % cfg.save_every == 0 or last, cfg.keep_every and step % cfg.keep_every == 0
        state = full_state(raw_model, opt) if cfg.fsdp and (save or keep) else None   # every rank gathers, rank 0 gets
        if master and save:
            save_checkpoint(cfg.out, raw_model, opt, cfg, step, state)
        if master and keep:
            keep_model(os.path.join(cfg.out, f'step_{step}'), raw_model, cfg, state and state[0])
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
             'geometry_hidden', 'object_weight', 'object_min', 'new_lr', 'projector_steps', 'keep_every', 'seq_bucket', 'llm_train_layers')
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
    bad += ['--fsdp runs under torchrun (one process: leave it out)'] if cfg.fsdp and 'RANK' not in os.environ else []
    bad += ['--activation-checkpointing needs --fsdp'] if cfg.activation_checkpointing and not cfg.fsdp else []
    for parse, text in ((periods, cfg.geometry_periods), (pitch_range, cfg.pitch_range)):
        try:
            parse(text)
        except ValueError as e:
            bad.append(str(e))
    if bad:
        raise ValueError('invalid settings: ' + '; '.join(bad))


if __name__ == '__main__':
    main(parse_args())
