"""
Time training steps of the camera-aware Qwen2.5-VL (pretrained/qwen_vl.py) under DDP or FSDP2: the
Qwen half of scripts/gpu_check.sh. It logs what train.py logs (OUT/log.jsonl: loss, tokens/s and
samples/s, the data loader's share of the step, peak memory), so one summary (scripts/gpu_summary.py)
reads both.

    torchrun --standalone --nproc_per_node=8 -m pretrained.bench_qwen --base DIR --engine fsdp --out OUT
    python -m pretrained.bench_qwen --base DIR --steps 2 --device cpu --out OUT     # a CPU dry run

What a step is. Synthetic scenes (data.py) rendered at --image-size and asked spatial questions; the
DataLoader workers collate them, run Qwen's image processor and chat template (model.encode) and the
renderer's teacher targets at the merged grid (loader.collate_encode); the step runs forward, backward
into the camera embedding, the geometry branch and the merger (the base frozen), clips and steps
AdamW. The layout is train.py's: global batch --batch-size, split over the ranks, micro-batch
--micro-batch, gradients synchronised on the last micro-step only. FSDP: common/fsdp.shard with bf16
compute and fp32 reduction on CUDA (--dtype bfloat16), --activation-checkpointing optional; DDP:
the model in float32 under bf16 autocast. Nothing is saved: it is a measurement.
Worked number: --image-size 224 with a base whose processor has min = max pixels 392² gives 392 px,
28x28 patches, 14x14 = 196 merged tokens per image, the visual token count of scripts/memory_plan.py.
"""
import argparse
import json
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, fields
from functools import partial

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from common.fsdp import shard
from data.synthetic import DataConfig, SyntheticDataset
from distill import RenderedTeacher
from data.loader import StepSampler, collate_encode, make_loader
from pretrained.qwen_vl import CameraAwareQwenVL, QwenVLConfig, merged_grid
from world.scenes import SceneConfig


@dataclass
class BenchConfig:
    base: str = ''                   # a Qwen2.5-VL folder (pretrained.qwen_offline writes a random one)
    engine: str = 'ddp'              # 'ddp' or 'fsdp' (one process: neither)
    out: str = 'runs/bench_qwen'
    steps: int = 100
    batch_size: int = 16             # global
    micro_batch: int = 2             # per process and micro-step
    image_size: int = 224
    lr: float = 1e-4
    log_every: int = 10
    workers: int = 4
    device: str = 'auto'             # 'auto', 'cpu', 'cuda'
    dtype: str = 'bfloat16'          # CUDA: bf16 compute (FSDP mixed precision or autocast); CPU: float32
    activation_checkpointing: bool = False
    train_merger: bool = True


def parse_args(argv=None) -> BenchConfig:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(BenchConfig):
        flag = '--' + f.name.replace('_', '-')
        if f.type is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            p.add_argument(flag, type=f.type, default=f.default)
    cfg = BenchConfig(**vars(p.parse_args(argv)))
    bad = [f'--engine {cfg.engine!r} (ddp or fsdp)'] if cfg.engine not in ('ddp', 'fsdp') else []
    bad += ['--base DIR (a Qwen2.5-VL folder)'] if not cfg.base else []
    bad += [f'--{k.replace("_", "-")} {getattr(cfg, k)} (must be >= 1)' for k in
            ('steps', 'batch_size', 'micro_batch', 'image_size', 'log_every') if getattr(cfg, k) < 1]
    if bad:
        raise ValueError('invalid settings: ' + '; '.join(bad))
    return cfg


def encode_for(model, batch: dict) -> dict:
    """The DataLoader worker's tokenisation: Qwen's processor and chat template (model.encode)."""
    return model.encode(batch['images'], batch['K'], batch['question'], batch['answer'])


def main(cfg: BenchConfig):
    distributed = 'RANK' in os.environ
    cuda = cfg.device == 'cuda' or (cfg.device == 'auto' and torch.cuda.is_available())
    local = int(os.environ.get('LOCAL_RANK', 0))
    device = torch.device('cuda', local) if cuda else torch.device('cpu')
    if cuda:
        torch.cuda.set_device(device)
    if distributed:
        dist.init_process_group('nccl' if cuda else 'gloo', device_id=device if cuda else None)
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if cfg.batch_size % (cfg.micro_batch * world):
        raise ValueError(f'--batch-size {cfg.batch_size} must be a multiple of --micro-batch {cfg.micro_batch} x {world}')
    grad_accum = cfg.batch_size // (cfg.micro_batch * world)
    torch.manual_seed(0)
    raw = CameraAwareQwenVL(QwenVLConfig(base=cfg.base, geometry_hidden=128, train_merger=cfg.train_merger)).to(device)
    bf16 = cuda and cfg.dtype == 'bfloat16'
    if distributed and cfg.engine == 'fsdp':
        model = shard(raw, mp=bf16, checkpointing=cfg.activation_checkpointing)
    elif distributed:
        model = DDP(raw, device_ids=[local] if cuda else None, broadcast_buffers=False)
    else:
        model = raw
    params = [p for p in raw.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.95))
    autocast = torch.autocast('cuda', dtype=torch.bfloat16) if bf16 and cfg.engine == 'ddp' else nullcontext()

    ds = SyntheticDataset(DataConfig(scene=SceneConfig(image_hw=(cfg.image_size,) * 2)), split='train',
                          length=cfg.steps * cfg.batch_size)
    probe = raw.encode(ds[0]['image'][None], ds[0]['K'][None], ['?'])
    grid = merged_grid(probe['image_grid_thw'][0], raw.patch, raw.merge)[1]          # (h/2, w/2) merged tokens
    collate_fn = partial(collate_encode, encode=partial(encode_for, raw), teacher=RenderedTeacher(), grid_hw=grid)
    batches = iter(make_loader(ds, collate_fn, StepSampler(0, cfg.steps, rank, world, cfg.micro_batch, cfg.batch_size),
                               cfg.workers, pin=cuda))
    if rank == 0:
        os.makedirs(cfg.out, exist_ok=True)
        log = open(os.path.join(cfg.out, 'log.jsonl'), 'w')
        print(f'{sum(p.numel() for p in params) / 1e6:.2f}M trainable of {sum(p.numel() for p in raw.parameters()) / 1e6:.1f}M, '
              f'{grid[0] * grid[1]} visual tokens, world {world}, grad_accum {grad_accum}, {cfg.engine}')
    t0, t0_step, wait, tokens = time.time(), 0, 0.0, 0
    for step in range(1, cfg.steps + 1):
        total = torch.zeros((), device=device)
        for j in range(grad_accum):
            t = time.time()
            batch = next(batches)
            wait += time.time() - t
            tokens += int(batch['attention_mask'].sum())
            if distributed and cfg.engine == 'fsdp':
                raw.set_requires_gradient_sync(j == grad_accum - 1)
            elif distributed:
                model.require_backward_grad_sync = j == grad_accum - 1
            with autocast:
                _, loss, _ = model(batch, teacher=batch['teacher'])
            (loss / grad_accum).backward()
            total += loss.detach() / grad_accum
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if distributed:
            dist.all_reduce(total)
            total /= world
        if rank == 0 and (step % cfg.log_every == 0 or step == cfg.steps):
            dt = time.time() - t0
            rec = dict(step=step, loss=total.item(), samples_per_s=cfg.batch_size * (step - t0_step) / dt,
                       tokens_per_s=tokens / dt, data_share=wait / dt, visual_tokens=grid[0] * grid[1])
            if cuda:
                rec['peak_mem_gb'] = torch.cuda.max_memory_allocated(device) / 2 ** 30
            log.write(json.dumps(rec) + '\n')
            log.flush()
            t0, t0_step, wait, tokens = time.time(), step, 0.0, 0
    if rank == 0:
        log.close()
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == '__main__':
    main(parse_args())
