"""How far is the fast per-patch path from the exact unfolded reference, layer by layer?

Each convolution of a trained network gets its real inputs (an FP32 forward pass over test
images), and its output is computed with converters only (exact devices, no output noise, no
drift): the float result, the exact per-patch reference (``per_patch_exact``), the fast path
(``per_patch``) and one scale per image (``per_image``). The table gives each one's error
relative to the float output (RMS error / RMS output) and the fast path's distance to the
exact reference.

    python examples/input_scaling_error.py --model resnet32 \
        --weights checkpoints/resnet32_swa_low/model.pt [--images 256] \
        [--out docs/results/input_scaling/resnet32_error]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

import aimcsim
from aimcsim.data import load_cifar10
from aimcsim.data.loader import iterate_batches
from aimcsim.data.cifar10 import CifarSplit
from aimcsim.devices import ideal_device
from aimcsim.models import MODEL_NAMES, build_model
from aimcsim.tiles.config import AnalogConfig
from aimcsim.training.hwa import load_weights

MODES = ("per_patch_exact", "per_patch", "per_image")


def converter_only_config(mode: str) -> AnalogConfig:
    """The default 7-bit DAC / 9-bit ADC with bound management, nothing else."""
    return AnalogConfig(device=ideal_device()).replace(**{
        "periphery.out_noise": 0.0, "periphery.input_scaling": mode,
        "drift_compensation.enabled": False})


def layer_inputs(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input of every Conv2d in an FP32 forward pass of ``images``."""
    inputs, hooks = {}, []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_pre_hook(
                lambda m, args, name=name: inputs.__setitem__(name, args[0].detach())))
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()
    return inputs


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt())


def measure(model: nn.Module, images: torch.Tensor) -> list[dict]:
    rows = []
    for name, x in layer_inputs(model, images).items():
        conv = model.get_submodule(name)
        with torch.no_grad():
            ideal = conv(x)
            outs = {}
            for mode in MODES:
                layer = aimcsim.convert_to_analog(nn.Sequential(conv),
                                                  converter_only_config(mode))[0].eval()
                aimcsim.program(layer, 0)
                outs[mode] = layer(x)
        rows.append({"layer": name, "shape": "x".join(map(str, conv.weight.shape)),
                     **{f"{m}_vs_float": rel(outs[m], ideal) for m in MODES},
                     "per_patch_vs_exact": rel(outs["per_patch"], outs["per_patch_exact"])})
    return rows


def table(rows: list[dict], title: str) -> str:
    lines = [f"# {title}", "", "Relative RMS error (RMS difference / RMS float output), in %.",
             "", "| layer | weight | exact per patch | fast per patch | per image | "
             "fast vs exact |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['shape']} | {100 * r['per_patch_exact_vs_float']:.2f}"
                     f" | {100 * r['per_patch_vs_float']:.2f} | {100 * r['per_image_vs_float']:.2f}"
                     f" | {100 * r['per_patch_vs_exact']:.2f} |")
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k.endswith(("float",
                                                                                    "exact"))}
    lines.append(f"| mean over layers | | {100 * mean['per_patch_exact_vs_float']:.2f} | "
                 f"{100 * mean['per_patch_vs_float']:.2f} | {100 * mean['per_image_vs_float']:.2f}"
                 f" | {100 * mean['per_patch_vs_exact']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=MODEL_NAMES)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--images", type=int, default=256, help="first N test images")
    parser.add_argument("--data", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    test = load_cifar10(args.data, train=False)
    split = CifarSplit(test.images[:args.images], test.labels[:args.images])
    images = torch.cat([x for x, _ in iterate_batches(split, 256)])
    model = load_weights(build_model(args.model), args.weights).eval()
    rows = measure(model, images)
    stem = Path(args.out or f"docs/results/input_scaling/{args.model}_error")
    stem.parent.mkdir(parents=True, exist_ok=True)
    title = (f"{args.model} ({Path(args.weights).parent.name}): converter error per layer, "
             f"{len(images)} test images, 7-bit DAC, 9-bit ADC, exact devices, no output noise")
    text = table(rows, title)
    stem.with_suffix(".md").write_text(text + "\n")
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(text)


if __name__ == "__main__":
    main()
