"""Which layers cost a network its accuracy on analog tiles? Put one layer at a time on tiles
(the rest stay digital), program it, read it at time ``t`` and measure the test accuracy;
the drop against the FP32 network is that layer's sensitivity. The run with every layer
analog comes first for reference.

    python examples/layer_sensitivity.py --model t500 --weights checkpoints/t500/model.pt \
        [--time 1] [--limit 1000] [--reps 2] [--out docs/results/f2/t500_layer_sensitivity]

Writes ``<out>.md`` (a table, worst layer first) and ``<out>.png`` (a bar chart of the
drops). Default analog configuration (PCM, 7-bit DAC, 9-bit ADC, GDC on). The drops of single
layers do not add up exactly to the drop of the all-analog network (errors of successive
layers compound), but they say where the loss starts. On a subset of the test set the
accuracies carry a sampling error of about sqrt(p(1-p)/limit) (1 point for 1,000 images).
"""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from aimcsim.data import CifarSplit, load_cifar10  # noqa: E402
from aimcsim.experiments.probe import analog_accuracy  # noqa: E402
from aimcsim.models import MODEL_NAMES, build_model  # noqa: E402
from aimcsim.nn import DEFAULT_MAPPING  # noqa: E402
from aimcsim.training.hwa import load_weights  # noqa: E402
from aimcsim.training.trainer import evaluate  # noqa: E402

ALL_LAYERS = "(every layer analog)"


def layer_sensitivity(base: nn.Module, test: CifarSplit, time_s: float, reps: int,
                      batch_size: int = 250) -> tuple[float, dict[str, float]]:
    """FP32 accuracy and, per layer (plus :data:`ALL_LAYERS`), the analog accuracy with only
    that layer on tiles."""
    convertible = tuple(DEFAULT_MAPPING)  # the layer types convert_to_analog puts on tiles
    layers = [name for name, m in base.named_modules() if isinstance(m, convertible)]
    fp32 = evaluate(base, test, batch_size)
    runs = {ALL_LAYERS: []} | {name: [k for k in layers if k != name] for name in layers}
    results = {}
    for label, exclude in tqdm(runs.items(), desc="layers"):
        results[label] = analog_accuracy(base, test, time_s, reps, batch_size, exclude=exclude)
    return fp32, results


def write_table(fp32: float, results: dict[str, float], path: Path, title: str) -> None:
    rows = sorted(results.items(), key=lambda kv: (kv[0] != ALL_LAYERS, kv[1]))
    lines = [f"# {title}", "", f"FP32: {100 * fp32:.2f}%", "",
             "| analog layer | accuracy (%) | drop (points) |", "|---|---:|---:|"]
    lines += [f"| `{name}` | {100 * acc:.2f} | {100 * (fp32 - acc):.2f} |" for name, acc in rows]
    path.write_text("\n".join(lines) + "\n")


def plot_drops(fp32: float, results: dict[str, float], path: Path, title: str) -> None:
    names = [n for n in results if n != ALL_LAYERS]
    drops = [100 * (fp32 - results[n]) for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(names) + 1.5))
    ax.barh(range(len(names)), drops, color="tab:red")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy drop with only this layer analog (points)")
    ax.set_title(f"{textwrap.fill(title, 70)}\nevery layer analog: {100 * (fp32 - results[ALL_LAYERS]):.1f} points",
                 fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=MODEL_NAMES)
    parser.add_argument("--weights", required=True, help="state_dict of the network (.pt)")
    parser.add_argument("--time", type=float, default=1.0,
                        help="seconds after programming (default 1)")
    parser.add_argument("--limit", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--reps", type=int, default=2, help="programmings per run (default 2)")
    parser.add_argument("--data", default=None, help="CIFAR-10 root (default: shared copy)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None,
                        help="output stem (default docs/results/<model>_layer_sensitivity)")
    args = parser.parse_args(argv)
    if args.limit < 1 or args.reps < 1 or args.time < 0:
        parser.error("--limit and --reps must be positive and --time non-negative")
    torch.set_num_threads(args.threads)
    test = load_cifar10(args.data, train=False)
    test = CifarSplit(test.images[:args.limit], test.labels[:args.limit])
    base = load_weights(build_model(args.model), args.weights).eval()
    fp32, results = layer_sensitivity(base, test, args.time, args.reps)
    stem = Path(args.out or f"docs/results/{args.model}_layer_sensitivity")
    stem.parent.mkdir(parents=True, exist_ok=True)
    title = (f"{args.model} ({Path(args.weights).parent.name}): one layer analog at "
             f"t = {args.time:g} s, {args.reps} programmings, {len(test.labels)} test images")
    write_table(fp32, results, stem.with_suffix(".md"), title)
    plot_drops(fp32, results, stem.with_suffix(".png"), title)
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
