"""
Train the camera-aware MLLM on synthetic spatial questions, on one CPU or many GPUs.

    python train.py                                    # full camera-aware tiny model, CPU, minutes
    python train.py --no-camera-embed --no-augment --no-distill --out runs/rgb_only
    torchrun --standalone --nproc_per_node=2 train.py  # DDP: gloo on CPU, nccl on GPU
    torchrun --standalone --nproc_per_node=8 train.py --preset real   # SigLIP-B/16 + SmolLM2, bf16
    python train.py --out runs/x --resume              # continue a run from its last checkpoint

The three parts of the method are three switches, so the ablation is five commands:
--camera-embed (ray embedding on every visual token), --augment (crop/zoom/shift with exact K)
and --distill (a geometry branch matched to a teacher's dense geometry).

Data is a pure function of the sample index (data.py seeds item i by i alone), so the run is
laid out by index: optimiser step k consumes global samples [k*B, (k+1)*B), and rank r's j-th
micro-batch of that step is the slice starting at k*B + (j*world + r)*micro. One process and
N processes therefore see the same global batches, and a resumed run needs only the step.

Checkpoints (rank 0) are folders: the model (model.py's format: config.json, model.safetensors,
tokenizer files) plus train_config.json, train_state.json and train_state.safetensors
(optimiser moments, RNG state). Written to OUT/ckpt.tmp, then swapped in by renames, so a crash
at any moment leaves a complete OUT/ckpt (or OUT/ckpt.old) behind. No pickle anywhere.
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
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from augment import AugmentConfig
from data import TASKS, DataConfig, SyntheticDataset, collate
from distill import RenderedTeacher
from model import CameraAwareMLLM, ModelConfig, load_weights
from scenes import SceneConfig


@dataclass
class TrainConfig:
    out: str = 'runs/default'
    preset: str = ''                 # '' (tiny, CPU) or 'real' (pretrained backbones, GPU)
    # data: one training camera; the visibility range matches the augmentation's zoom range
    camera: str = 'standard'
    image_size: int = 128
    max_objects: int = 1             # objects per scene: 1..max_objects (README: why 1 on a CPU)
    tasks: str = 'depth'             # any of data.TASKS, comma-separated, e.g. depth,closer,detect
    task_weights: str = ''           # comma-separated, same order as tasks; '' = uniform
    # the three parts of the method
    camera_embed: bool = True
    augment: bool = True
    distill: bool = True
    distill_weight: float = 1.0
    # backbones ('' = tiny from configs); see model.py for names, folders and GGUF files
    vision: str = ''
    llm: str = ''
    gguf_file: str = ''
    freeze_vision: bool = False
    freeze_llm: bool = False
    # optimisation: grad_accum = batch_size // (micro_batch * world_size)
    batch_size: int = 16
    micro_batch: int = 16
    max_steps: int = 1000
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


def parse_args(argv=None) -> TrainConfig:
    """argparse from TrainConfig's fields; precedence: defaults < --preset < explicit flags."""
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
    return TrainConfig(**{**PRESETS.get(preset, {}), **given})


# -----------------------------------------------------------------------------
# pieces built from the config

def model_config(cfg: TrainConfig) -> ModelConfig:
    return ModelConfig(vision=cfg.vision or None, llm=cfg.llm or None, gguf_file=cfg.gguf_file or None,
                       image_size=cfg.image_size, camera_embed=cfg.camera_embed, geometry=cfg.distill,
                       distill_weight=cfg.distill_weight, freeze_vision=cfg.freeze_vision,
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
                        n_objects=(1, cfg.max_objects), visible_zoom=tuple(aug.zoom_range))
    return DataConfig(scene=scene, tasks=tasks, task_weights=weights)


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


def micro_batch(ds, cfg: TrainConfig, step: int, j: int, rank: int, world: int) -> dict:
    """Rank `rank`'s j-th micro-batch of optimiser step `step` (see the docstring's layout)."""
    start = step * cfg.batch_size + (j * world + rank) * cfg.micro_batch
    return collate([ds[i] for i in range(start, start + cfg.micro_batch)])


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
    # swap: ckpt -> ckpt.old, ckpt.tmp -> ckpt, drop ckpt.old; a complete folder exists throughout
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(final):
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
    with open(os.path.join(path, 'train_state.json')) as f:
        state = json.load(f)
    tensors = load_file(os.path.join(path, 'train_state.safetensors'))
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
    checkpoint are dropped, since the resumed run logs those steps again."""
    kept = [line for line in open(path)] if os.path.exists(path) else []
    kept = [line for line in kept if json.loads(line)['step'] <= step]
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
    ddp, rank, local_rank, world, device = setup_distributed(cfg)
    master = rank == 0
    assert cfg.batch_size % (cfg.micro_batch * world) == 0, \
        f'batch_size {cfg.batch_size} must be a multiple of micro_batch {cfg.micro_batch} x world {world}'
    grad_accum = cfg.batch_size // (cfg.micro_batch * world)
    torch.manual_seed(cfg.seed)  # same initial weights on every rank

    dcfg = data_config(cfg)
    train_ds = SyntheticDataset(dcfg, split='train', length=cfg.max_steps * cfg.batch_size,
                                augment=AugmentConfig() if cfg.augment else None)
    val_ds = SyntheticDataset(dcfg, split='val', length=cfg.val_samples)
    val_batches = [collate([val_ds[i] for i in range(s, min(s + cfg.micro_batch, len(val_ds)))])
                   for s in range(0, len(val_ds), cfg.micro_batch)]
    teacher = RenderedTeacher() if cfg.distill else None

    model = CameraAwareMLLM(model_config(cfg)).to(device)
    opt = configure_optimizer(model, cfg)
    step, ckpt = 0, find_checkpoint(cfg.out) if cfg.resume else None
    if cfg.resume and ckpt is None:
        raise FileNotFoundError(f'--resume: no checkpoint in {cfg.out} (looked for ckpt/ and ckpt.old/)')
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
    t0 = time.time()
    while step < cfg.max_steps:
        lr = get_lr(step, cfg)
        for g in opt.param_groups:
            g['lr'] = lr
        sums = torch.zeros(3, device=device)  # loss, answer, distill: this rank's micro-batch mean
        for j in range(grad_accum):
            batch = micro_batch(train_ds, cfg, step, j, rank, world)
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
        if master and (step % cfg.log_every == 0 or step == cfg.max_steps):
            dt = time.time() - t0
            rec = dict(step=step, loss=sums[0].item(), answer=sums[1].item(), distill=sums[2].item(), lr=lr,
                       samples_per_s=cfg.batch_size * cfg.log_every / dt)
            if step % cfg.eval_every == 0 or step == cfg.max_steps:
                rec['val_answer'] = val_loss(raw_model, val_batches, autocast)
            bar.set_postfix(loss=f"{rec['loss']:.3f}", **({'val': f"{rec['val_answer']:.3f}"} if 'val_answer' in rec else {}))
            log.write(json.dumps(rec) + '\n')
            log.flush()
            t0 = time.time()
        if master and (step % cfg.save_every == 0 or step == cfg.max_steps):
            save_checkpoint(cfg.out, raw_model, opt, cfg, step)
    bar.close()
    if master:
        log.close()
        print(f'done: {step} steps, checkpoint in {os.path.join(cfg.out, "ckpt")}')
    if ddp:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == '__main__':
    main(parse_args())
