"""Which non-ideality costs a network its accuracy on analog tiles? Read the whole network at
time ``t`` with the default analog configuration, then again with one non-ideality switched
off at a time (programming noise, drift, the spread of the drift exponents, read noise, DAC,
ADC, output noise); the accuracy a switch gives back is what that non-ideality costs.

    python examples/nonideality_ablation.py --model t500 --weights checkpoints/t500_hwa/model.pt \
        [--time 2.592e6] [--limit 1000] [--reps 2] [--out docs/results/f2/t500_hwa_ablation]

Writes ``<out>.md`` (a table) and ``<out>.png`` (a bar chart of the points given back). Every
configuration is read with the same programming seeds, so the differences are paired. The
non-idealities interact (e.g. drift makes the other noises larger relative to the signal), so
the points given back do not add up to the total loss. On a subset of the test set the
accuracies carry a sampling error of about sqrt(p(1-p)/limit) (1 point for 1,000 images).
"""
from __future__ import annotations

from pathlib import Path

from torch import nn
from tqdm.auto import tqdm

from aimcsim.data import CifarSplit
from aimcsim.devices import PCMDevice
from aimcsim.experiments.plots import plot_points_per_item
from aimcsim.experiments.probe import analog_accuracy, probe_command
from aimcsim.tiles.config import AnalogConfig
from aimcsim.training.trainer import evaluate

DEFAULT = "every non-ideality (default)"


def ablation_configs() -> dict[str, AnalogConfig]:
    """The default configuration (PCM of physics.md, 7-bit DAC, 9-bit ADC, output noise 0.06,
    GDC on) and one variant per non-ideality switched off."""
    base = AnalogConfig()
    return {
        DEFAULT: base,
        "no programming noise": base.replace(device=PCMDevice(prog_noise_scale=0.0)),
        "no drift": base.replace(device=PCMDevice(drift_scale=0.0)),
        "no drift-exponent spread (nu std 0)":
            base.replace(device=PCMDevice(nu_std_params=(0.0, 0.0, 0.0, 0.0))),
        "no read noise": base.replace(device=PCMDevice(read_noise_scale=0.0)),
        "ideal DAC": base.replace(**{"periphery.inp_bits": None}),
        "ideal ADC (no quantisation, no saturation)":
            base.replace(**{"periphery.out_bits": None, "periphery.out_bound": None}),
        "no output noise": base.replace(**{"periphery.out_noise": 0.0}),
    }


def ablation(base: nn.Module, test: CifarSplit, time_s: float, reps: int,
             batch_size: int = 250) -> tuple[float, dict[str, float]]:
    """Digital accuracy of ``base`` and its analog accuracy under every configuration of
    :func:`ablation_configs` (fractions 0-1)."""
    digital = evaluate(base, test, batch_size)
    results = {}
    for label, config in tqdm(ablation_configs().items(), desc="configurations"):
        results[label] = analog_accuracy(base, test, time_s, reps, batch_size, config=config)
    return digital, results


def write_table(digital: float, results: dict[str, float], path: Path, title: str) -> None:
    default = results[DEFAULT]
    lines = [f"# {title}", "", f"digital (these weights, no tiles): {100 * digital:.2f}%", "",
             "| configuration | accuracy (%) | points given back |", "|---|---:|---:|"]
    lines += [f"| {name} | {100 * acc:.2f} | {100 * (acc - default):+.2f} |"
              for name, acc in results.items()]
    path.write_text("\n".join(lines) + "\n")


def plot_given_back(digital: float, results: dict[str, float], path: Path, title: str) -> None:
    default = results[DEFAULT]
    names = [n for n in results if n != DEFAULT]
    plot_points_per_item(names, [100 * (results[n] - default) for n in names], path,
                         "accuracy given back by switching it off (points)",
                         f"{title}\ndigital {100 * digital:.1f}%, analog (default) "
                         f"{100 * default:.1f}%", color="tab:blue")


def main(argv: list[str] | None = None) -> None:
    args, base, test, stem = probe_command(__doc__.split("\n\n")[0], 2.592e6, "ablation", argv)
    digital, results = ablation(base, test, args.time, args.reps)
    title = (f"{args.model} ({Path(args.weights).parent.name}): analog at t = {args.time:g} s, "
             f"{args.reps} programmings, {len(test)} test images")
    write_table(digital, results, stem.with_suffix(".md"), title)
    plot_given_back(digital, results, stem.with_suffix(".png"), title)
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
