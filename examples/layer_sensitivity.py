"""Which layers cost a network its accuracy on analog tiles? Put one layer at a time on tiles
(the rest stay digital), program it, read it at time ``t`` and measure the test accuracy;
the drop against the FP32 network is that layer's sensitivity. The run with every layer
analog comes first for reference.

    python examples/layer_sensitivity.py --model t500 --weights checkpoints/t500/model.pt \
        [--time 1] [--limit 1000] [--reps 2] [--out docs/results/f2/t500_layer_sensitivity]

Writes ``<out>.md`` (a table, worst layer first) and ``<out>.png`` (a bar chart of the
drops). Default analog configuration (PCM, 7-bit DAC, 9-bit ADC, GDC on). The drops of single
layers do not add up exactly to the drop of the all-analog network (errors of successive
layers compound), but they say where the loss starts. A module that converts as a whole (an
attention block with its four projections) is one unit. On a subset of the test set the
accuracies carry a sampling error of about sqrt(p(1-p)/limit) (1 point for 1,000 images).
"""
from __future__ import annotations

from pathlib import Path

from torch import nn
from tqdm.auto import tqdm

from aimcsim.data import CifarSplit
from aimcsim.experiments.plots import plot_points_per_item
from aimcsim.experiments.probe import analog_accuracy, probe_command
from aimcsim.nn import DEFAULT_MAPPING
from aimcsim.training.trainer import evaluate

ALL_LAYERS = "(every layer analog)"


def analog_units(base: nn.Module) -> list[str]:
    """Names of the modules that ``convert_to_analog`` swaps as a whole: those of a convertible
    type (:data:`aimcsim.nn.DEFAULT_MAPPING`) inside no other convertible module. An attention
    block is one unit (its q, k, v and output projections convert together), so its
    ``out_proj`` is not listed on its own."""
    convertible = tuple(DEFAULT_MAPPING)  # the layer types convert_to_analog puts on tiles
    names = [name for name, m in base.named_modules() if isinstance(m, convertible)]
    return [name for name in names
            if not any(name.startswith(outer + ".") for outer in names if outer != name)]


def layer_sensitivity(base: nn.Module, test: CifarSplit, time_s: float, reps: int,
                      batch_size: int = 250) -> tuple[float, dict[str, float]]:
    """FP32 accuracy and, per layer (plus :data:`ALL_LAYERS`), the analog accuracy with only
    that layer on tiles."""
    layers = analog_units(base)
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
    plot_points_per_item(names, [100 * (fp32 - results[n]) for n in names], path,
                         "accuracy drop with only this layer analog (points)",
                         f"{title}\nevery layer analog: "
                         f"{100 * (fp32 - results[ALL_LAYERS]):.1f} points", color="tab:red")


def main(argv: list[str] | None = None) -> None:
    args, base, test, stem = probe_command(__doc__.split("\n\n")[0], 1.0, "layer_sensitivity",
                                           argv)
    fp32, results = layer_sensitivity(base, test, args.time, args.reps)
    title = (f"{args.model} ({Path(args.weights).parent.name}): one layer analog at "
             f"t = {args.time:g} s, {args.reps} programmings, {len(test.labels)} test images")
    write_table(fp32, results, stem.with_suffix(".md"), title)
    plot_drops(fp32, results, stem.with_suffix(".png"), title)
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
