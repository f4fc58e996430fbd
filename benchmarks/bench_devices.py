"""Reading a programmed PCM array at a new time: the fused Numba kernel against the numpy
reference, for 1M devices (uniform targets in [0, g_max]) at t = 3600 s.

    python benchmarks/bench_devices.py [--devices 1000000] [--t 3600] [--repeats 7] [--threads 2]

Medians of ``--repeats`` runs, same process, after one warm-up call (Numba compiled). Rows:
- read: ``PCMDevice.read(state, t, rng, fast=True)`` (kernels.devices.read_drifted: drift +
  read-noise sigma + table normal + clamp, one pass) vs ``fast=False`` (numpy, exact normals);
- drift only: a Numba loop (defined here; not in the library because it loses) vs
  ``PCMDevice.drifted`` (numpy's SIMD exp).
The machine's 1-minute load average is printed: other jobs on the cores slow the threaded kernel.
"""
from __future__ import annotations

import argparse
import os

import numba
import numpy as np
import torch

from timing import median_seconds  # benchmarks/timing.py
from aimcsim.devices import PCMDevice
from aimcsim.devices.drift import drift_log_ratio


@numba.njit(parallel=True, cache=True)
def drift_only(g_prog: np.ndarray, nu: np.ndarray, log_ratio: float, out: np.ndarray) -> None:
    """``out[i] = g_prog[i] * exp(-nu[i] * log_ratio)``: the drift-only kernel candidate."""
    lr = np.float32(log_ratio)
    for i in numba.prange(g_prog.shape[0]):
        out[i] = g_prog[i] * np.exp(-nu[i] * lr)




def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--t", type=float, default=3600.0, help="read time, s")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    device = PCMDevice()
    rng = np.random.default_rng(0)
    targets = rng.uniform(0, device.g_max, args.devices).astype(np.float32)
    state = device.program(targets, rng)
    out = np.empty(args.devices, np.float32)
    log_ratio = drift_log_ratio(args.t, device.config.t0)

    rows = [
        ("read (drift + read noise + clamp)",
         1e3 * median_seconds(lambda: device.read(state, args.t, rng, fast=True), args.repeats),
         1e3 * median_seconds(lambda: device.read(state, args.t, rng, fast=False), args.repeats)),
        ("drift only",
         1e3 * median_seconds(lambda: drift_only(state.g_prog, state.nu, log_ratio, out), args.repeats),
         1e3 * median_seconds(lambda: device.drifted(state, args.t), args.repeats)),
    ]
    numba.set_num_threads(1)
    single = (1e3 * median_seconds(lambda: device.read(state, args.t, rng, fast=True), args.repeats),
              1e3 * median_seconds(lambda: drift_only(state.g_prog, state.nu, log_ratio, out),
                        args.repeats))
    numba.set_num_threads(args.threads)
    print(f"devices: {args.devices:,}, t = {args.t:g} s, Numba threads: {args.threads}, "
          f"medians of {args.repeats} runs, load average {os.getloadavg()[0]:.2f}")
    print("| work | Numba kernel (ms) | numpy reference (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, kernel, reference in rows:
        print(f"| {name} | {kernel:.2f} | {reference:.2f} | {reference / kernel:.1f}x |")
    print(f"| read, kernel on 1 thread | {single[0]:.2f} | | |")
    print(f"| drift only, kernel on 1 thread | {single[1]:.2f} | | |")


if __name__ == "__main__":
    main()
