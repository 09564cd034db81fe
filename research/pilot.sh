#!/bin/bash
# One pilot, one thread: train, evaluate on validation scenes, add the row to docs/results/pilots.json.
#   bash research/pilot.sh NAME "FLAGS" ["NOTE"]
set -e
name=$1; flags=$2; note=${3:-}
export OMP_NUM_THREADS=1
mkdir -p out/pilots
t0=$(date +%s)
python train.py $flags --out runs/pilots/$name --workers 0 > out/pilots/$name.train.log 2>&1
t1=$(date +%s)
python eval.py --ckpt runs/pilots/$name --camera-shift --n-scenes 256 --split val --tasks depth \
    --n-boot 0 --out out/pilots/$name > out/pilots/$name.eval.log 2>&1
t2=$(date +%s)
echo "train $((t1 - t0)) s, eval $((t2 - t1)) s"
python -m research.pilots $name --flags="$flags" --run runs/pilots/$name --eval out/pilots/$name \
    --train-s $((t1 - t0)) --note "$note"
