"""
One line per run of scripts/gpu_check.sh: tokens/s per GPU, MFU, peak memory and the data loader's
share of the step, read from the run's log.jsonl (train.py and pretrained/bench_qwen.py log alike).

    python scripts/gpu_summary.py tiny RUN VISION_DIR LLM_DIR NGPU     # train.py's model
    python scripts/gpu_summary.py qwen RUN BASE_DIR NGPU               # the camera-aware Qwen2.5-VL

Model FLOPs per second per GPU (the first logged window, with its warm-up, is left out):
    tiny (everything trains):  6·(Φ_llm·tokens/s + Φ_vis·patches·samples/s)
    qwen (base frozen):        4·Φ_llm·tokens/s + 2·Φ_vis·patches·samples/s
      the frozen LLM still runs forward (2Φ) and backward to its inputs (2Φ; no weight gradients),
      the frozen vision tower runs forward only; the new parts are < 1% and left out.
Φ counts the decoder's matrices: the embedding is a lookup, and the LM head reads only the answer
positions (model.py, pretrained/qwen_vl.py: a few per sample), so both are left out. MFU = those
FLOPs over the GPU's dense bf16 peak (PEAK_TFLOPS overrides the table); attention's L² term is left
out, so MFU is an underestimate at long sequences. tokens/s is the LLM's tokens (prompt, visual and
answer) of one rank. On a CPU the peak is unknown and the line gives model TFLOPS instead.
"""
import json
import os
import statistics
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM, Qwen2_5_VLForConditionalGeneration, SiglipVisionModel

PEAKS = {'H100': 989, 'H200': 989, 'H800': 989, 'A100': 312, 'A800': 312, 'L40S': 362, 'L4': 121, 'A10': 125}


def read_log(run: str) -> list[dict]:
    log = [json.loads(line) for line in open(os.path.join(run, 'log.jsonl'))]
    return log[1:] or log                                  # the first window has the warm-up


def peak_tflops() -> float:
    if 'PEAK_TFLOPS' in os.environ:
        return float(os.environ['PEAK_TFLOPS'])
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''
    return next((v for k, v in PEAKS.items() if k in name), 0.0)


def count(module, vocab: int = 0, width: int = 0, copies: int = 0) -> int:
    """Parameters of a module, less `copies` vocab x width matrices (embedding, untied LM head)."""
    return sum(p.numel() for p in module.parameters()) - copies * vocab * width


def tiny_flops(vision_dir: str, llm_dir: str) -> tuple:
    """(Φ_vis, Φ_llm, patches per image, FLOPs per parameter-token) for train.py's model."""
    vis, llm = AutoConfig.from_pretrained(vision_dir), AutoConfig.from_pretrained(llm_dir)
    with torch.device('meta'):
        n_vis = count(SiglipVisionModel(vis))
        n_llm = count(AutoModelForCausalLM.from_config(llm), llm.vocab_size, llm.hidden_size,
                      1 if llm.tie_word_embeddings else 2)
    return n_vis, n_llm, (vis.image_size // vis.patch_size) ** 2, (6, 6)


def qwen_flops(base: str, visual_tokens: int) -> tuple:
    """(Φ_vis, Φ_llm, patches per image, FLOPs per parameter-token) for the frozen Qwen2.5-VL base."""
    config = AutoConfig.from_pretrained(base)
    with torch.device('meta'):
        model = Qwen2_5_VLForConditionalGeneration(config)
    text = config.text_config
    n_vis = count(model.model.visual)
    n_llm = count(model.model.language_model, text.vocab_size, text.hidden_size, 1)   # no embedding, no LM head
    return n_vis, n_llm, visual_tokens * config.vision_config.spatial_merge_size ** 2, (2, 4)


def summary(kind: str, run: str, ngpu: int, *dirs) -> str:
    log = read_log(run)
    tok_s = statistics.median(r['tokens_per_s'] for r in log)
    samples_s = statistics.median(r['samples_per_s'] for r in log) / ngpu
    if kind == 'tiny':
        n_vis, n_llm, patches, (fv, fl) = tiny_flops(*dirs)
    elif kind == 'qwen':
        n_vis, n_llm, patches, (fv, fl) = qwen_flops(dirs[0], log[-1]['visual_tokens'])
    else:
        raise ValueError(f'kind must be tiny or qwen, got {kind!r}')
    flops = fl * n_llm * tok_s + fv * n_vis * patches * samples_s
    peak = peak_tflops()
    mfu = f'MFU {100 * flops / (peak * 1e12):.1f} % of {peak:.0f} TFLOPS' if peak else f'{flops / 1e12:.3f} model TFLOPS'
    mem = f"peak {max(r['peak_mem_gb'] for r in log):.1f} GiB" if 'peak_mem_gb' in log[0] else 'peak memory n/a (CPU)'
    share = 100 * statistics.median(r['data_share'] for r in log)
    return (f'{os.path.basename(run.rstrip("/")):<12} tokens/s per GPU {tok_s:>9,.0f}  samples/s per GPU {samples_s:6.1f}  '
            f'{mfu}  {mem}  data share {share:.1f} %')


if __name__ == '__main__':
    kind, run, *rest = sys.argv[1:]
    print(summary(kind, run, int(rest[-1]), *rest[:-1]))
