#!/usr/bin/env bash
# GPU check: `torchrun --standalone --nproc_per_node=<every GPU here>` of the real preset's
# architecture (SigLIP-B/16 at 224 px + a SmolLM2-135M-shaped Llama, bf16, nccl) with both backbones
# built from their configs (random weights: nothing is downloaded), for a few hundred steps; then,
# from the run's log: tokens/s per GPU, an MFU estimate, peak memory and the data loader's share of
# the step (the time a step waits for its batch).
#
#   bash scripts/gpu_check.sh [STEPS] [more train.py flags, e.g. --compile --workers 12]
#
# The LLM has SmolLM2-135M's shape (576 wide, 30 layers, 9 heads, 3 KV heads, 49152 vocabulary,
# tied embeddings) but the tiny BPE tokenizer of the question corpus, without a chat template:
# prompts are ~20 text tokens shorter than SmolLM2's, the 196 visual tokens are the same.
# MFU = 6 · (parameters · tokens) per second over the GPUs' dense bf16 peak (PEAK_TFLOPS to set it),
# attention's L² term and the vision encoder's embedding left out: an estimate.
set -euo pipefail
STEPS=${1:-300}
shift || true
OUT=${OUT:-runs/gpu_check}
NGPU=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "$NGPU" -lt 1 ]; then echo "gpu_check: no CUDA GPU visible"; exit 1; fi
rm -rf "$OUT" && mkdir -p "$OUT"

python - "$OUT" <<'PY'
import sys
from transformers import LlamaConfig, LlamaForCausalLM, SiglipVisionConfig, SiglipVisionModel
from data.synthetic import tokenizer_corpus
from data.tokens import bpe_tokenizer
out = sys.argv[1]
SiglipVisionModel(SiglipVisionConfig(image_size=224, patch_size=16, hidden_size=768, intermediate_size=3072,
                                     num_hidden_layers=12, num_attention_heads=12)).save_pretrained(f'{out}/vision')
tok = bpe_tokenizer(tokenizer_corpus())
LlamaForCausalLM(LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                             num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                             rope_theta=100000.0, tie_word_embeddings=True, pad_token_id=tok.pad_token_id,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(f'{out}/llm')
tok.save_pretrained(f'{out}/llm')
PY

torchrun --standalone --nproc_per_node="$NGPU" train.py --preset real --vision "$OUT/vision" --llm "$OUT/llm" \
  --max-steps "$STEPS" --projector-steps 0 --warmup-steps 20 --log-every 20 --eval-every "$STEPS" \
  --save-every 1000000 --val-samples 64 --out "$OUT/run" "$@" 2>&1 | grep -v '^train:' | tee "$OUT/train.txt"

python - "$OUT" "$NGPU" <<'PY'
import json, os, statistics, sys
import torch
from common.checkpoint import read_json
from transformers import AutoConfig, AutoModelForCausalLM, SiglipVisionModel
out, ngpu = sys.argv[1], int(sys.argv[2])
log = [json.loads(line) for line in open(f'{out}/run/log.jsonl')][1:]        # the first window has the warm-up
name = torch.cuda.get_device_name(0)
peaks = {'H100': 989, 'H200': 989, 'H800': 989, 'A100': 312, 'A800': 312, 'L40S': 362, 'L4': 121, 'A10': 125}
peak = float(os.environ.get('PEAK_TFLOPS', next((v for k, v in peaks.items() if k in name), 0)))
vis, llm = AutoConfig.from_pretrained(f'{out}/vision'), AutoConfig.from_pretrained(f'{out}/llm')
n_vis = sum(p.numel() for p in SiglipVisionModel(vis).parameters())
n_llm = sum(p.numel() for p in AutoModelForCausalLM.from_config(llm).parameters()) \
    - llm.vocab_size * llm.hidden_size                                             # tied embeddings: a lookup
cfg = read_json(f'{out}/run/ckpt/train_config.json')
tok_s = statistics.median(r['tokens_per_s'] for r in log)                           # LLM tokens/s, one GPU
samples_s = statistics.median(r['samples_per_s'] for r in log) / ngpu               # per GPU
patches = (vis.image_size // vis.patch_size) ** 2
flops = 6 * (n_llm * tok_s + n_vis * patches * samples_s)                          # per GPU per second
print(f'{ngpu} x {name}; {cfg["batch_size"]} samples per step, micro-batch {cfg["micro_batch"]}, {len(log) * 20} steps measured')
print(f'tokens/s per GPU (LLM tokens): {tok_s:,.0f}; samples/s per GPU: {samples_s:.1f}')
print(f'MFU estimate: {100 * flops / (peak * 1e12):.1f} % of {peak:.0f} TFLOPS' if peak else
      f'model TFLOPS per GPU: {flops / 1e12:.1f} (set PEAK_TFLOPS for an MFU)')
print(f'peak memory (rank 0): {max(r["peak_mem_gb"] for r in log):.1f} GiB')
print(f'data loader share of the step (rank 0 waiting for its batch): {100 * statistics.median(r["data_share"] for r in log):.1f} %')
PY
