#!/bin/bash
# A/B of two checkouts of aimcsim, three interleaved rounds of the kernel and training benchmarks.
#   bash benchmarks/bench_normals_ab.sh OLD NEW > results.txt
# OLD: a checkout run from its folder (e.g. `git worktree add --detach /work/old 8048bbd` with
# `ln -s ../kernels /work/old/aimcsim/kernels`); NEW: the installed checkout (imported without
# PYTHONPATH). Used on 2026-12-02 for results_normals_20261202.txt (OLD 8048bbd, NEW the merge).
set -u
OLD=${1:?old checkout}
NEW=${2:?new checkout}
for round in 1 2 3; do
  for tree in "$OLD" "$NEW"; do
    echo "=== round $round tree $tree"
    if [ "$tree" = "$OLD" ]; then export PYTHONPATH="$OLD"; else unset PYTHONPATH; fi
    python "$tree/benchmarks/bench_devices.py" --threads 1 --repeats 7
    python "$tree/benchmarks/bench_devices.py" --threads 2 --repeats 7
    python "$tree/benchmarks/bench_kernels.py" --threads 1 --repeats 7
    python "$tree/benchmarks/bench_training.py" --threads 1 --repeats 5
  done
done
