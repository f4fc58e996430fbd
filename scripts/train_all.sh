#!/usr/bin/env bash
# Train every network of the drift studies on CIFAR-10, resumably: each run continues from its
# checkpoint after a kill, and a finished run (model.pt present) is skipped.
#   Usage: bash scripts/train_all.sh [RUNS_DIR] [DATA_ROOT]      (defaults: checkpoints, shared copy)
#   LANES="a b c d" picks the lanes (default "a b"; lanes c and d are issue 22's fair F2
#   comparison and its trait sweep).
# Two lanes run side by side, one torch thread each (on 2 cores this trains more images per
# second than one lane on 2 threads). Measured per epoch on one thread, with the other lane busy:
# f1net 222 s, resnet32 391 s; t500 about 470 s; hardware-aware epochs about 1.5x those.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-checkpoints}
data=${2:-../shared/datasets/cifar10}
hwa=(--lr 0.01 --schedule cosine --weight-noise 0.04)
hwa_dev=(--lr 0.01 --schedule cosine --noise-model device --clip-sigma 2.5)
hwa_kd=(--lr 0.005 --schedule cosine --noise-model device --clip-sigma 2.5 --noise-scale 1.5)
hwa_kd_c15=(--lr 0.005 --schedule cosine --noise-model device --clip-sigma 1.5 --noise-scale 1.5)

run() {
    local name=$1; shift
    [ -f "$runs/$name/model.pt" ] && return 0
    python -m aimcsim train "$@" --out "$runs/$name" --threads 1 --data "$data" \
        > "$runs/$name.log" 2>&1
}

lane_a() {
    run f1net --model f1net --epochs 60
    run f1net_hwa --model f1net --hwa-from "$runs/f1net/model.pt" --epochs 6 "${hwa[@]}"
    # hardware-aware with the PCM model in the loop, on the per-patch periphery (issue 19)
    run f1net_hwa_dev --model f1net --hwa-from "$runs/f1net/model.pt" --epochs 6 "${hwa_dev[@]}"
    # 6 more device-model epochs with noise inflation (the deviation after GDC x 1.5)
    run f1net_hwa_ns --model f1net --hwa-from "$runs/f1net_hwa_dev/model.pt" --epochs 6 \
        --lr 0.005 --schedule cosine --noise-model device --clip-sigma 2.5 --noise-scale 1.5
    # the same 6 epochs with knowledge distillation from the FP32 network (weight 0.9, T 4)
    run f1net_hwa_kd --model f1net --hwa-from "$runs/f1net_hwa_dev/model.pt" --epochs 6 \
        --lr 0.005 --schedule cosine --noise-model device --clip-sigma 2.5 --noise-scale 1.5 \
        --distill-from "$runs/f1net/model.pt"
    # 6 more epochs of the same (12 epochs of distillation in all)
    run f1net_hwa_kd12 --model f1net --hwa-from "$runs/f1net_hwa_kd/model.pt" --epochs 6 \
        --lr 0.005 --schedule cosine --noise-model device --clip-sigma 2.5 --noise-scale 1.5 \
        --distill-from "$runs/f1net/model.pt"
    # the same 6 epochs from f1net_hwa_kd with tighter weight clipping (2.0 and 1.5 sigma)
    for c in 20 15; do
        run f1net_hwa_kd_c$c --model f1net --hwa-from "$runs/f1net_hwa_kd/model.pt" --epochs 6 \
            --lr 0.005 --schedule cosine --noise-model device --clip-sigma "${c:0:1}.${c:1}" \
            --noise-scale 1.5 --distill-from "$runs/f1net/model.pt"
    done
    run t500 --model t500 --epochs 40
    run t500_hwa --model t500 --hwa-from "$runs/t500/model.pt" --epochs 6 "${hwa[@]}"
    # the vision transformer: AdamW, one-cycle (its 15% warm-up suits transformers), decoupled
    # weight decay 0.05 off biases, norms and position embeddings. 125 M MACs per image (1.8x
    # ResNet-32); 8-15 min per epoch on one thread beside other jobs, so 12 epochs (not the
    # 100+ a ViT wants on CIFAR-10: the CPU budget, issue 20).
    run vit --model vit --epochs 12 --optimizer adamw --lr 1e-3 --weight-decay 0.05
    # its hardware-aware fine-tuning with the PCM model in the loop (issue 20): AdamW at a tenth
    # of the training peak rate, cosine, 1 epoch (about 70 min on one thread beside another lane)
    run vit_hwa_dev --model vit --hwa-from "$runs/vit/model.pt" --epochs 1 --optimizer adamw \
        --lr 1e-4 --weight-decay 0.05 --schedule cosine --noise-model device --clip-sigma 2.5
}

lane_b() {
    run resnet32 --model resnet32 --epochs 70
    run resnet32_hwa --model resnet32 --hwa-from "$runs/resnet32/model.pt" --epochs 6 "${hwa[@]}"
    # 30 more epochs for the 92% FP32 target (resnet32 ended at 91.03% after 70)
    run resnet32_long --model resnet32 --init-from "$runs/resnet32/model.pt" --epochs 30 \
        --lr 0.05 --schedule cosine
    # resnet32_long ended at 91.46%: average its weights over 10 epochs at a constant rate
    run resnet32_swa --model resnet32 --init-from "$runs/resnet32_long/model.pt" --epochs 10 \
        --lr 0.02 --schedule constant --swa-start 1
    # resnet32_swa ended at 91.64%: the same average over 28 epochs
    run resnet32_swa30 --model resnet32 --init-from "$runs/resnet32_long/model.pt" --epochs 30 \
        --lr 0.02 --schedule constant --swa-start 3
    # resnet32_swa30 ended at 91.90%: average again around it at half the rate, over 8 epochs
    run resnet32_swa_low --model resnet32 --init-from "$runs/resnet32_swa30/model.pt" --epochs 8 \
        --lr 0.01 --schedule constant --swa-start 1
    # hardware-aware with the PCM model in the loop, from the 92.00% network (issue 19)
    run resnet32_hwa_dev --model resnet32 --hwa-from "$runs/resnet32_swa_low/model.pt" \
        --epochs 10 "${hwa_dev[@]}"
    # 6 more device-model epochs with noise inflation and distillation from the 92.00% network
    run resnet32_hwa_kd --model resnet32 --hwa-from "$runs/resnet32_hwa_dev/model.pt" \
        --epochs 6 "${hwa_kd[@]}" --distill-from "$runs/resnet32_swa_low/model.pt"
    # the F1 network's best clipping (1.5 sigma, issue 19) on ResNet-32: 6 more epochs of it
    run resnet32_hwa_kd_c15 --model resnet32 --hwa-from "$runs/resnet32_hwa_kd/model.pt" \
        --epochs 6 "${hwa_kd_c15[@]}" --distill-from "$runs/resnet32_swa_low/model.pt"
}

lane_c() {
    # issue 22: T500 and ResNet-32 trained alike. ResNet-32 afresh with t500's exact FP32
    # schedule (40 epochs, one-cycle, peak lr 0.1), then both fine-tuned with the same
    # device-model hardware-aware recipe as resnet32_hwa_dev (10 epochs, lr 0.01 cosine).
    run t500_hwa_dev --model t500 --hwa-from "$runs/t500/model.pt" --epochs 10 "${hwa_dev[@]}"
    run resnet32_e40 --model resnet32 --epochs 40
    run resnet32_e40_hwa_dev --model resnet32 --hwa-from "$runs/resnet32_e40/model.pt" \
        --epochs 10 "${hwa_dev[@]}"
    # then issue 19's distillation stage for both (6 epochs, noise inflation 1.5, lr 0.005
    # cosine, each network's own FP32 weights as teacher)
    run t500_hwa_kd --model t500 --hwa-from "$runs/t500_hwa_dev/model.pt" --epochs 6 \
        "${hwa_kd[@]}" --distill-from "$runs/t500/model.pt"
    run resnet32_e40_hwa_kd --model resnet32 --hwa-from "$runs/resnet32_e40_hwa_dev/model.pt" \
        --epochs 6 "${hwa_kd[@]}" --distill-from "$runs/resnet32_e40/model.pt"
    # and its last stage, 6 more epochs with the weights clipped at 1.5 sigma (issue 19's best
    # recipe: resnet32_hwa_kd_c15, f1net_hwa_kd_c15)
    run t500_hwa_kd_c15 --model t500 --hwa-from "$runs/t500_hwa_kd/model.pt" --epochs 6 \
        "${hwa_kd_c15[@]}" --distill-from "$runs/t500/model.pt"
    run resnet32_e40_hwa_kd_c15 --model resnet32 \
        --hwa-from "$runs/resnet32_e40_hwa_kd/model.pt" --epochs 6 "${hwa_kd_c15[@]}" \
        --distill-from "$runs/resnet32_e40/model.pt"
}

lane_d() {
    # issue 22 point 4: the trait sweep (t500 with one trait moved toward ResNet-32 at a time;
    # 10 FP32 epochs, 2 device-model epochs, 3 programmings at 1 s / 1 day / 1 month each,
    # without and with AdaBS on 2,000 augmented images; 15-22 CPU hours). Resumable per
    # stage; a second shell running it splits the networks.
    python -m aimcsim sweep --root "$runs/traits" --points docs/results/traits --threads 1 \
        --data "$data" > "$runs/traits_sweep.log" 2>&1
}

mkdir -p "$runs"
for lane in ${LANES:-a b}; do "lane_$lane" & done
wait
