#!/usr/bin/env bash
# The cross-camera ablation of the README: five tiny models, one training camera ('standard',
# 60° FOV), the depth question on one-object scenes, then the camera-shift sweep.
# On a 2-core CPU the five runs go in parallel, one thread each (faster in total than one after
# the other on two threads: tiny ops do not scale across threads). About 50 minutes here.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1
COMMON="--tasks depth --max-objects 1 --max-steps 2500 --eval-every 500 --save-every 250"
declare -A PARTS=(
  [rgb_only]="--no-camera-embed --no-augment --no-distill"
  [camera_embed]="--camera-embed --no-augment --no-distill"
  [augment]="--no-camera-embed --augment --no-distill"
  [distill]="--no-camera-embed --no-augment --distill"
  [full]="--camera-embed --augment --distill"
)
mkdir -p runs
for name in rgb_only camera_embed augment distill full; do
  python train.py $COMMON ${PARTS[$name]} --out runs/$name > runs/$name.log 2>&1 &
done
wait
python eval.py --ckpt runs/rgb_only runs/camera_embed runs/augment runs/distill runs/full \
  --camera-shift --n-scenes 128 --tasks depth --out out/ablation
