#!/usr/bin/env bash
# Train every network of the drift studies on CIFAR-10, resumably (each run continues from its
# checkpoint after a kill). Usage: bash scripts/train_all.sh [RUNS_DIR]   (default: runs/)
# About 100-150 s per FP32 epoch on 2 CPU cores; the whole queue takes about 12 hours.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs}
run() { name=$1; shift; [ -f "$runs/$name/model.pt" ] && return 0
        python -m aimcsim train "$@" --out "$runs/$name" --threads 2; }
run f1net --model f1net --epochs 70
run f1net_hwa --model f1net --hwa-from "$runs/f1net/model.pt" --epochs 15 --lr 0.01 \
    --schedule cosine --weight-noise 0.04
run resnet32 --model resnet32 --epochs 70
run t500 --model t500 --epochs 60
run resnet32_hwa --model resnet32 --hwa-from "$runs/resnet32/model.pt" --epochs 12 --lr 0.01 \
    --schedule cosine --weight-noise 0.04
run t500_hwa --model t500 --hwa-from "$runs/t500/model.pt" --epochs 12 --lr 0.01 \
    --schedule cosine --weight-noise 0.04
