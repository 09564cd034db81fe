"""
Memory plan: bytes per GPU for training a Qwen2.5 LLM (0.5 B, 3 B, 7 B) on 8 x 80 GB under DDP and
FSDP2, and the largest micro-batch that fits at 196 and 1,024 visual tokens per sample.

    python scripts/memory_plan.py                          # markdown on stdout
    python scripts/memory_plan.py --out docs/memory_plan.md

Parameters Φ from the config (Qwen2.5: q, k, v projections with biases, o without, SwiGLU MLP,
RMSNorms; the LM head is the embedding when tied):
    Φ_layer = 2·h² + 2·h·(kv·d_h) + h + 2·kv·d_h + 3·h·f + 2·h        (h hidden, f MLP, kv·d_h the K/V width)
    Φ_root  = V·h·(1 if tied else 2) + h                              (embedding, LM head, final norm)
    Φ       = n_layers·Φ_layer + Φ_root

Model state, bytes per parameter, all LLM parameters trained with AdamW (m and v in fp32):
    fp32:   4 weights + 4 grads + 8 AdamW                           = 16
    mixed:  2 bf16 weights + 4 fp32 master + 4 fp32 grads + 8 AdamW = 18   (bf16 compute, fp32 master)
    DDP per GPU:   16·Φ or 18·Φ                                           (every GPU holds everything)
    FSDP per GPU:  16·Φ/N  (sharded fp32 master, grads, AdamW; N = GPUs)
                   + in-flight units unsharded: (p + 4)·(Φ_root + 2·Φ_layer)
                     (the root and two decoder layers, the one computing and the one prefetched, each
                     all-gathered in p bytes (2 bf16, 4 fp32) with a 4-byte gradient before reduce-scatter)

Activations, bytes per token per decoder layer (p bytes per value: 2 mixed, 4 fp32; SDPA/flash
attention: no L² scores are kept; Korthikanti et al. 2022, §4, with Qwen's SwiGLU and grouped K/V
instead of GPT's 4h MLP):
    a = p·(6·h + 2·kv·d_h + 4·f)
      the input and output of both RMSNorms (4h), q (h), k and v (2·kv·d_h), the attention output (h),
      the MLP's gate, up, silu(gate) and their product (4f)
    without checkpointing: per sample  A = T·n_layers·a
    with activation checkpointing: each layer keeps its input (2h per token) and one layer is
      recomputed at a time:           A = T·(n_layers·p·h + a)
    T = visual tokens + TEXT_TOKENS (prompt and answer); the LM head reads only the answer positions
    (model.py, pretrained/qwen_vl.py), so logits add ANSWER_TOKENS·V·4 bytes per sample.
    micro-batch = floor((USABLE·80 GB − model state) / A)   (0: the model state alone does not fit)
USABLE = 0.9 leaves room for the CUDA context, NCCL buffers and the allocator's fragmentation. The
vision tower is left out: Qwen2.5-VL's 0.67 B-parameter ViT, frozen, adds 2 bytes per parameter and
no kept activations (it runs without gradients); trained, it adds its own terms as above.
Worked number: 7 B, mixed, 8 GPUs: Φ = 7.62e9, DDP 18·Φ = 137 GB (does not fit in 80); FSDP
16·Φ/8 = 15.2 GB + 6·(1.09e9 + 2·0.233e9) = 9.3 GB in flight = 24.6 GB.
Sources of the configs: the config.json of Qwen/Qwen2.5-{0.5B,3B,7B}-Instruct on the Hugging Face hub.
"""
import argparse
import math
from dataclasses import dataclass

GB = 1e9

# name: (hidden h, layers, attention heads, K/V heads, MLP width f, vocabulary V, tied embeddings)
# from Qwen/Qwen2.5-0.5B-Instruct, Qwen/Qwen2.5-3B-Instruct, Qwen/Qwen2.5-7B-Instruct config.json
QWEN25 = {
    '0.5B': (896, 24, 14, 2, 4864, 151936, True),
    '3B': (2048, 36, 16, 2, 11008, 151936, True),
    '7B': (3584, 28, 28, 4, 18944, 152064, False),
}


@dataclass
class PlanConfig:
    gpus: int = 8
    gpu_gb: float = 80.0
    usable: float = 0.9              # share of the GPU's memory the plan may fill
    text_tokens: int = 64            # prompt and answer tokens per sample, besides the visual ones
    answer_tokens: int = 16          # positions the LM head reads (fp32 logits)
    visual_tokens: tuple = (196, 1024)


# ----------------------------------------------------------------------------- parameters

def layer_params(h: int, heads: int, kv_heads: int, f: int) -> int:
    """One decoder layer: q (h·h + h), k and v (h·kv + kv each), o (h·h), SwiGLU (3·h·f), 2 RMSNorms."""
    kv = kv_heads * (h // heads)
    return 2 * h * h + 2 * h * kv + h + 2 * kv + 3 * h * f + 2 * h


def root_params(h: int, vocab: int, tied: bool) -> int:
    """Embedding (+ LM head if untied) and the final norm: the FSDP root unit."""
    return vocab * h * (1 if tied else 2) + h


def params(config) -> tuple[int, int, int]:
    """(Φ, Φ_layer, Φ_root) of a QWEN25 entry."""
    h, n, heads, kv_heads, f, vocab, tied = config
    per_layer, root = layer_params(h, heads, kv_heads, f), root_params(h, vocab, tied)
    return n * per_layer + root, per_layer, root


# ----------------------------------------------------------------------------- model state

def state_bytes(phi: int, per_layer: int, root: int, engine: str, precision: str, gpus: int) -> float:
    """Weights + grads + AdamW per GPU (see the docstring's formulas)."""
    if engine not in ('ddp', 'fsdp') or precision not in ('fp32', 'mixed'):
        raise ValueError(f'engine must be ddp or fsdp and precision fp32 or mixed, got {engine!r}, {precision!r}')
    if engine == 'ddp':
        return phi * (16 if precision == 'fp32' else 18)
    p = 4 if precision == 'fp32' else 2
    return 16 * phi / gpus + (p + 4) * (root + 2 * per_layer)


# ----------------------------------------------------------------------------- activations

def act_per_token_layer(config, p: int = 2) -> int:
    """a = p·(6h + 2·kv·d_h + 4f) bytes: the tensors one decoder layer keeps per token, p bytes each."""
    h, _, heads, kv_heads, f, _, _ = config
    return p * (6 * h + 2 * kv_heads * (h // heads) + 4 * f)


def act_per_sample(config, tokens: int, answer_tokens: int, checkpointing: bool, p: int = 2) -> float:
    """Activation bytes of one sample of `tokens` tokens (p bytes per value), plus the fp32 logits of its answer."""
    h, n, _, _, _, vocab, _ = config
    a = act_per_token_layer(config, p)
    kept = tokens * (n * p * h + a) if checkpointing else tokens * n * a
    return kept + answer_tokens * vocab * 4


def max_micro_batch(free: float, per_sample: float) -> int:
    return max(0, math.floor(free / per_sample)) if free > 0 else 0


def plan(cfg: PlanConfig) -> list[dict]:
    """One row per (model, engine, precision): GB per GPU and the micro-batch per visual token count,
    without and with activation checkpointing."""
    rows = []
    for name, config in QWEN25.items():
        phi, per_layer, root = params(config)
        for engine in ('ddp', 'fsdp'):
            for precision in ('mixed', 'fp32'):
                state = state_bytes(phi, per_layer, root, engine, precision, cfg.gpus)
                free = cfg.usable * cfg.gpu_gb * GB - state
                row = dict(model=name, params=phi, engine=engine, precision=precision, state_gb=state / GB)
                for v in cfg.visual_tokens:
                    for ckpt in (False, True):
                        per = act_per_sample(config, v + cfg.text_tokens, cfg.answer_tokens, ckpt,
                                             p=2 if precision == 'mixed' else 4)
                        row[(v, ckpt)] = max_micro_batch(free, per)
                rows.append(row)
    return rows


# ----------------------------------------------------------------------------- the report

def report(cfg: PlanConfig) -> str:
    rows = plan(cfg)
    lines = [f'# Memory plan: Qwen2.5 LLMs on {cfg.gpus} x {cfg.gpu_gb:.0f} GB', '',
             'Written by `python scripts/memory_plan.py --out docs/memory_plan.md`; the formulas are in its docstring.', '',
             '## Configs (Qwen/Qwen2.5-*-Instruct config.json)', '',
             '| model | hidden h | layers | heads | K/V heads | MLP f | vocab V | tied | Φ (B) | Φ_layer (M) | Φ_root (M) | a, bf16 (KB/token/layer) |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for name, c in QWEN25.items():
        phi, per_layer, root = params(c)
        lines.append(f'| {name} | {c[0]} | {c[1]} | {c[2]} | {c[3]} | {c[4]} | {c[5]} | {c[6]} | {phi / 1e9:.2f} | '
                     f'{per_layer / 1e6:.0f} | {root / 1e6:.0f} | {act_per_token_layer(c) / 1e3:.0f} |')
    v0, v1 = cfg.visual_tokens
    lines += ['', '## Per GPU', '',
              f'Model state = weights + grads + AdamW (FSDP: + the root and two layers unsharded in flight). '
              f'Micro-batch: the most samples of {v0} or {v1} visual tokens + {cfg.text_tokens} text tokens whose '
              f'activations fit in {cfg.usable:.0%} of {cfg.gpu_gb:.0f} GB beside the model state; AC = activation '
              'checkpointing; 0 = does not fit.', '',
              f'| model | engine | precision | model state (GB) | micro @{v0} | micro @{v0} AC | micro @{v1} | micro @{v1} AC |',
              '|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['model']} | {r['engine'].upper()} | {r['precision']} | {r['state_gb']:.1f} | "
                     f"{r[(v0, False)]} | {r[(v0, True)]} | {r[(v1, False)]} | {r[(v1, True)]} |")
    lines += ['', '## The formulas', '',
              '- Φ_layer = 2h² + 2h·(kv·d_h) + h + 2·kv·d_h + 3h·f + 2h; Φ_root = V·h·(1 if tied else 2) + h; '
              'Φ = layers·Φ_layer + Φ_root.',
              '- Bytes per parameter: fp32 = 4 weights + 4 grads + 8 AdamW = 16; mixed = 2 bf16 weights + 4 fp32 master '
              '+ 4 fp32 grads + 8 AdamW = 18.',
              '- DDP per GPU: 16Φ or 18Φ. FSDP2 per GPU: 16Φ/N + (p + 4)·(Φ_root + 2·Φ_layer), p = 2 (bf16) or 4 (fp32): '
              'the sharded state, plus the root and two layers all-gathered with their unsharded gradients.',
              '- Activations per token per layer (p bytes per value: 2 mixed, 4 fp32; flash/SDPA attention): '
              'a = p·(6h + 2·kv·d_h + 4f) bytes '
              '(both norms\' inputs and outputs, q, k, v, the attention output, the MLP\'s gate, up, silu(gate), product). '
              'Per sample: T·layers·a; with activation checkpointing T·(layers·p·h + a) (each layer keeps its input, '
              'one layer is recomputed at a time). Plus the answer logits, answer_tokens·V·4 bytes.',
              f'- Micro-batch = floor(({cfg.usable}·{cfg.gpu_gb:.0f} GB − model state) / per-sample activations).',
              '- Left out: the vision tower (frozen: 2 bytes per parameter, no kept activations), temporary buffers '
              'of single ops (the MLP\'s f-wide intermediate in backward), the allocator\'s fragmentation beyond the '
              f'{1 - cfg.usable:.0%} margin. Estimates, to be checked against scripts/gpu_check.sh\'s peak memory.', '']
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='', help='write the markdown here (default: stdout)')
    p.add_argument('--gpus', type=int, default=PlanConfig.gpus)
    p.add_argument('--gpu-gb', type=float, default=PlanConfig.gpu_gb)
    args = p.parse_args(argv)
    if args.gpus < 1 or not args.gpu_gb > 0:
        raise ValueError(f'--gpus must be >= 1 and --gpu-gb > 0, got {args.gpus} and {args.gpu_gb}')
    text = report(PlanConfig(gpus=args.gpus, gpu_gb=args.gpu_gb))
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    else:
        print(text)
    return text


if __name__ == '__main__':
    main()
