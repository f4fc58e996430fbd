"""How far the bfloat16 GEMM moves each analog layer's outputs, against output noise.

    python benchmarks/gemm_precision_error.py [--weights checkpoints/resnet32_swa_low/model.pt]
        [--images 256] [--time 3600] [--out docs/results/gemm_precision/layer_error.json]

The trained ResNet-32 is converted twice with the default config, once with
``gemm_precision="float32"`` and once with ``"bfloat16"``, both programmed with the same seed
and read at ``--time`` with the same read seed, so they hold the same devices. Each analog
layer is then fed the input it gets in the float32 network (test images) and run:

- float32 and bfloat16 with the same pass seed (the same output-noise draws):
  ``e = RMS(y_bf16 - y_f32)``, the GEMM precision's effect, ADC steps it flips included;
- float32 twice, with two pass seeds: ``n = RMS(y_f32' - y_f32) / sqrt(2)``, the spread of
  one output that output noise alone causes (in the layer's output units).

The ratio e / n says how large the rounding is against the noise a chip adds anyway
(0.1 would add 1% to the variance). ``--ideal-adc`` removes the ADC's quantisation from both
networks: what is left is the rounding's own share, without the ADC steps it flips. Writes
JSON per layer and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_accuracy import load_model  # noqa: E402  (benchmarks/peer_accuracy.py)

import aimcsim  # noqa: E402
from aimcsim.data.cifar10 import load_cifar10  # noqa: E402
from aimcsim.data.loader import to_tensor  # noqa: E402
from aimcsim.nn.analog_mvm import AnalogMVM  # noqa: E402
from aimcsim.tiles import AnalogConfig  # noqa: E402


def analog_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {name: module for name, module in model.named_modules()
            if isinstance(getattr(module, "analog", None), AnalogMVM)}


def rms(t: torch.Tensor) -> float:
    return float(t.double().square().mean().sqrt())


def measure(weights: str, images: int, t: float, data: str | None,
            ideal_adc: bool = False) -> dict:
    float_model = load_model("resnet32", weights)
    models = {}
    for precision in ("float32", "bfloat16"):
        config = AnalogConfig(gemm_precision=precision)
        if ideal_adc:  # no ADC steps to flip: the rounding's own share
            config = config.replace(**{"periphery.out_bits": None})
        model = aimcsim.convert_to_analog(float_model, config)
        aimcsim.program(model.eval(), 0)
        models[precision] = model
    x = to_tensor(load_cifar10(data, train=False, limit=images).images)
    inputs: dict[str, torch.Tensor] = {}
    hooks = [layer.register_forward_pre_hook(
        lambda module, args, name=name: inputs.__setitem__(name, args[0].detach()))
        for name, layer in analog_layers(models["float32"]).items()]
    aimcsim.set_time(models["float32"], t, seed=1)
    with torch.no_grad():
        models["float32"](x)
    for hook in hooks:
        hook.remove()
    rows = {}
    high, low = analog_layers(models["float32"]), analog_layers(models["bfloat16"])
    for name, x_in in inputs.items():
        with torch.no_grad():
            for model in models.values():  # the same read, pass count 0 again
                aimcsim.set_time(model, t, seed=1)
            y32 = high[name](x_in)
            y16 = low[name](x_in)
            y32b = high[name](x_in)  # pass 1: fresh output noise
        error = rms(y16 - y32)
        noise = rms(y32b - y32) / np.sqrt(2)
        rows[name] = {"rms_bf16_minus_f32": error, "rms_output_noise": noise,
                      "ratio": error / noise, "rms_output": rms(y32)}
    ratios = np.array([r["ratio"] for r in rows.values()])
    return {"weights": weights, "images": images, "time_s": t, "ideal_adc": ideal_adc,
            "layers": rows,
            "ratio_median": float(np.median(ratios)), "ratio_max": float(ratios.max()),
            "variance_added_median": float(np.median(ratios ** 2)),
            "variance_added_max": float((ratios ** 2).max())}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="checkpoints/resnet32_swa_low/model.pt")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--time", type=float, default=3600.0)
    parser.add_argument("--data", default=None)
    parser.add_argument("--ideal-adc", action="store_true",
                        help="no ADC quantisation in either network: the rounding's own "
                             "share of the error, without the ADC steps it flips")
    parser.add_argument("--out", default="docs/results/gemm_precision/layer_error.json")
    args = parser.parse_args(argv)
    result = measure(args.weights, args.images, args.time, args.data, args.ideal_adc)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for name, row in result["layers"].items():
        print(f"{name:28s} e/n = {row['ratio']:.3f}  (e {row['rms_bf16_minus_f32']:.2e}, "
              f"n {row['rms_output_noise']:.2e}, |y| {row['rms_output']:.2e})")
    print(f"median e/n {result['ratio_median']:.3f}, max {result['ratio_max']:.3f}; "
          f"variance added: median {100 * result['variance_added_median']:.2f}%, "
          f"max {100 * result['variance_added_max']:.2f}%")


if __name__ == "__main__":
    main()
