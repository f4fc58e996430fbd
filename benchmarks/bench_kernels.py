"""Each periphery kernel against its plain numpy reference, on the outputs of one ResNet-32
stage-1 convolution for a batch of 128 (128 x 16 x 32 x 32 = 2.1M values).

    python benchmarks/bench_kernels.py [--repeats 7] [--threads 2]

Medians of ``--repeats`` runs, same process. Rows:
- DAC: ``kernels.periphery.dac_quantize`` vs ``aimcsim.tiles.periphery.reference_dac``
  (abs-max noise management, 7 bits).
- ADC: ``adc_accumulate`` (output noise 0.06 drawn inside, 9-bit ADC, rescale) vs
  ``numpy.random.Generator.standard_normal`` + ``reference_adc`` + rescale.
- Gaussian draws alone: ``kernels.table_normals.table_normal`` (table normals with exact
  tails beyond 3 sigma, the kernels' only normal generator: device reads, both ADCs,
  training) vs numpy and ``torch.normal_``.
- Per-patch ADC (the default convolution path): ``kernels.adc_per_vector`` on the same values
  in channels_last layout, one input scale per output position, output noise drawn inside. The
  row gives the kernel alone: its numpy reference (``tests/test_adc_per_vector.py``) is a
  Python loop over vectors, not worth timing.
"""
from __future__ import annotations

import argparse

import numba
import numpy as np
import torch

from timing import median_seconds  # benchmarks/timing.py
from aimcsim.kernels.periphery import NM_ABS_MAX, adc_accumulate, dac_quantize
from aimcsim.kernels.adc_per_vector import adc_per_vector
from aimcsim.kernels.table_normals import table_normal
from aimcsim.tiles.periphery import PeripheryConfig, reference_adc, reference_dac




def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    shape = (128, 16, 1024)
    x = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
    y = (rng.standard_normal(shape) * 3).astype(np.float32)
    config = PeripheryConfig()
    n = x.shape[0]
    xq = np.empty_like(x)
    out = np.empty_like(y)
    col_scale = np.ones(shape[1], np.float32)
    clipped = np.zeros(n, np.int64)
    no_var = np.zeros((1, 1, 1), np.float32)

    def dac_kernel():
        dac_quantize(x, xq, np.ones(n, np.float32), NM_ABS_MAX, 1.0, config.inp_bound,
                     config.inp_step)

    def adc_kernel():
        adc_accumulate(y, no_var, out, np.ones(n, np.float32), col_scale, 1, config.out_noise,
                       False, config.out_clip, config.out_step, np.uint64(1), False, False,
                       clipped)

    y_last = np.ascontiguousarray(y.transpose(0, 2, 1))  # (N, P, C): channels_last
    out_last = np.empty_like(y_last)
    position_scale = np.ones((n, shape[2]), np.float32)
    counts = np.zeros((n, 3), np.int64)

    def adc_per_patch():
        adc_per_vector(y_last, no_var, out_last, position_scale, col_scale, 2, config.out_noise,
                       False, config.out_clip, config.out_step, 5, np.uint64(1), False, counts)

    def adc_reference():
        q, _ = reference_adc(y, config, rng.standard_normal(shape, dtype=np.float32))
        return q * col_scale[None, :, None]

    rows = [
        ("DAC (abs-max, 7 bit)", 1e3 * median_seconds(dac_kernel, args.repeats),
         1e3 * median_seconds(lambda: reference_dac(x, config), args.repeats)),
        ("output noise + ADC (9 bit) + rescale", 1e3 * median_seconds(adc_kernel, args.repeats),
         1e3 * median_seconds(adc_reference, args.repeats)),
        ("2.1M Gaussian draws, table normals with exact tails",
         1e3 * median_seconds(lambda: table_normal(y.size, 3), args.repeats),
         1e3 * median_seconds(lambda: rng.standard_normal(y.size, dtype=np.float32), args.repeats)),
    ]
    per_patch = 1e3 * median_seconds(adc_per_patch, args.repeats)
    torch_normal = 1e3 * median_seconds(lambda: torch.empty(y.size).normal_(), args.repeats)
    print(f"threads: {args.threads}, values: {y.size:,}, medians of {args.repeats} runs")
    print("| work | Numba kernel (ms) | numpy reference (ms) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, kernel, reference in rows:
        print(f"| {name} | {kernel:.2f} | {reference:.2f} | {reference / kernel:.1f}x |")
    print(f"| (torch.normal_ for the same draws) | | {torch_normal:.2f} | |")
    print(f"| per-patch ADC with output noise (channels_last, the default conv path) | "
          f"{per_patch:.2f} | | |")


if __name__ == "__main__":
    main()
