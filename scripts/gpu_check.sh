#!/usr/bin/env bash
# GPU check: both engines (DDP, FSDP2) on both bases, with `torchrun --standalone --nproc_per_node=<every
# GPU here>`, random weights (nothing is downloaded), a few hundred steps each; then, per run, from its
# log: tokens/s per GPU, an MFU estimate, peak memory and the data loader's share of the step (the time
# a step waits for its batch). scripts/gpu_summary.py states the FLOP counts.
#
#   bash scripts/gpu_check.sh [STEPS] [more train.py flags, e.g. --compile --workers 12]
#   QWEN_SHAPE=3b bash scripts/gpu_check.sh      # the Qwen base at Qwen2.5-VL-3B's shape (default 0.5b)
#
# 1. tiny: train.py's model at the real preset's architecture (SigLIP-B/16 at 224 px + a SmolLM2-135M-
#    shaped Llama, 576 wide, 30 layers, 9 heads, 3 KV heads, 49152 vocabulary, tied embeddings; the
#    tiny BPE tokenizer of the question corpus, no chat template), everything trained, bf16, nccl:
#    `train.py` (DDP) and `train.py --fsdp` (FSDP2, bf16 compute, fp32 reduction).
# 2. qwen: pretrained/qwen_vl.py on a random Qwen2.5-VL (pretrained/qwen_offline.py: Qwen's model
#    code, a small offline tokenizer), images resized by Qwen's processor to 392 px = 196 merged
#    tokens, the base frozen, camera embedding + geometry branch + merger trained:
#    pretrained/bench_qwen.py --engine ddp and --engine fsdp.
# The only CUDA-specific parts are the device and dtype flags (--preset real sets --device cuda
# --dtype bfloat16; bench_qwen picks CUDA when present): the python pieces run on a CPU too
# (tests/test_gpu_check.py dry-runs them).
set -euo pipefail
STEPS=${1:-300}
shift || true
OUT=${OUT:-runs/gpu_check}
QWEN_SHAPE=${QWEN_SHAPE:-0.5b}
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
python -m pretrained.qwen_offline "$OUT/qwen" --shape "$QWEN_SHAPE" --pixels $((392 * 392))

run() {  # torchrun with every GPU; the progress bar left out of the saved output
  torchrun --standalone --nproc_per_node="$NGPU" "$@" 2>&1 | grep -v '^train:' | tee -a "$OUT/train.txt"
}
for engine in ddp fsdp; do
  flag=$([ "$engine" = fsdp ] && echo --fsdp || true)
  run train.py --preset real --vision "$OUT/vision" --llm "$OUT/llm" $flag \
    --max-steps "$STEPS" --projector-steps 0 --warmup-steps 20 --log-every 20 --eval-every "$STEPS" \
    --save-every 1000000 --val-samples 64 --out "$OUT/tiny_$engine" "$@"
  run -m pretrained.bench_qwen --base "$OUT/qwen" --engine "$engine" --steps "$STEPS" --log-every 20 \
    --batch-size 64 --micro-batch 8 --out "$OUT/qwen_$engine"
done

echo "$NGPU x $(python -c 'import torch; print(torch.cuda.get_device_name(0))'); $STEPS steps per run, the first 20 left out"
for engine in ddp fsdp; do
  python scripts/gpu_summary.py tiny "$OUT/tiny_$engine" "$OUT/vision" "$OUT/llm" "$NGPU"
  python scripts/gpu_summary.py qwen "$OUT/qwen_$engine" "$OUT/qwen" "$NGPU"
done
