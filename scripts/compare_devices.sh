#!/usr/bin/env bash
# ResNet-32 (hardware-aware) over time on the three device models of issue 21: the PCM of
# Nandakumar et al. 2019 (pcm), the Hermes chip's PCM with two devices per sign (hermes) and
# the RRAM of Wan et al. 2022 (rram), then one table and plot side by side.
#   Usage: bash scripts/compare_devices.sh [HWA_WEIGHTS] [FP32_WEIGHTS] [OUT] [DATA]
# Environment: REPS (programmings per device, default 5), EXTRA (more arguments for every
# drift run, e.g. EXTRA="--limit 20" for a smoke run).
# Resumable: each study keeps its points.jsonl, so a killed run continues where it stopped.
# The RRAM model is valid from 1 s to 2 days only, so the table compares 1 s, 1 h, 1 day and
# 2 days; the PCM studies also measure one month (in their own report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
hwa=${1:-checkpoints/resnet32_hwa/model.pt}
fp32=${2:-checkpoints/resnet32/model.pt}
out=${3:-docs/results/devices}
data=${4:-../shared/datasets/cifar10}
reps=${REPS:-5}
read -r -a extra <<< "${EXTRA:-}"
common=(--model resnet32 --fp32 "$fp32" --hwa "$hwa" --series fp32,hwa --gdc on
        --reps "$reps" --threads 1 --data "$data" "${extra[@]}")
for device in pcm hermes rram; do
    times=1,3600,86400,172800,2592000
    [ "$device" = rram ] && times=1,3600,86400,172800
    python -m aimcsim drift "${common[@]}" --device "$device" --times "$times" \
        --out "$out/resnet32_$device"
done
python -m aimcsim compare "$out"/resnet32_{pcm,hermes,rram} --series hwa --label device \
    --times 1,3600,86400,172800 --out "$out"
