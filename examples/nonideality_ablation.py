"""Which non-ideality costs a network its accuracy on analog tiles? Read the whole network at
time ``t`` with the default analog configuration, then again with one non-ideality switched
off at a time (programming noise, drift, the spread of the drift exponents, read noise, DAC,
ADC, output noise); the accuracy a switch gives back is what that non-ideality costs.

    python examples/nonideality_ablation.py --model t500 --weights checkpoints/t500_hwa/model.pt \
        [--time 2.592e6] [--limit 1000] [--reps 2] [--adabs N] \
        [--out docs/results/f2/t500_hwa_ablation]

Writes ``<out>.md`` (a table: accuracy over the programmings with its standard error, and the
points given back, paired per programming, with theirs) and ``<out>.png`` (a bar chart of the
points given back). Every configuration is read with the same programming seeds, so the
differences are paired. With ``--adabs N`` every read is followed by AdaBS on the first N
training images (augmented, as in the drift studies). The
non-idealities interact (e.g. drift makes the other noises larger relative to the signal), so
the points given back do not add up to the total loss. On a subset of the test set the
accuracies carry a sampling error of about sqrt(p(1-p)/limit) (1 point for 1,000 images).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from aimcsim.data import CifarSplit
from aimcsim.devices import PCMDevice
from aimcsim.experiments.plots import plot_points_per_item
from aimcsim.experiments.probe import adabs_batches, analog_accuracies, probe_command
from aimcsim.experiments.stats import mean_and_se, paired_difference
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
             batch_size: int = 250, adabs: list[torch.Tensor] | None = None
             ) -> tuple[float, dict[str, list[float]]]:
    """Digital accuracy of ``base`` and, under every configuration of
    :func:`ablation_configs`, its analog accuracy after each of ``reps`` programmings
    (fractions 0-1; programming ``r`` uses seed ``r`` in every configuration), with AdaBS on
    the batches ``adabs`` after every read when given."""
    digital = evaluate(base, test, batch_size)
    results = {}
    for label, config in tqdm(ablation_configs().items(), desc="configurations"):
        results[label] = analog_accuracies(base, test, time_s, reps, batch_size, config=config,
                                           adabs=adabs)
    return digital, results


def given_back(results: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    """Points given back by each configuration over the default: (mean, SE), paired per
    programming."""
    default = 100 * np.array(results[DEFAULT])
    return {name: paired_difference(100 * np.array(runs), default)
            for name, runs in results.items()}


def write_table(digital: float, results: dict[str, list[float]], path: Path, title: str) -> None:
    gains = given_back(results)
    lines = [f"# {title}", "", f"digital (these weights, no tiles): {100 * digital:.2f}%", "",
             "Mean over programmings ± standard error; the points given back are paired per "
             "programming.", "",
             "| configuration | accuracy (%) | points given back |", "|---|---:|---:|"]
    for name, runs in results.items():
        mean, se = mean_and_se(100 * np.array(runs))
        gain, gain_se = gains[name]
        lines.append(f"| {name} | {mean:.2f} ± {se:.2f} | {gain:+.2f} ± {gain_se:.2f} |")
    path.write_text("\n".join(lines) + "\n")


def plot_given_back(digital: float, results: dict[str, list[float]], path: Path,
                    title: str) -> None:
    gains = given_back(results)
    names = [n for n in results if n != DEFAULT]
    default = mean_and_se(100 * np.array(results[DEFAULT]))[0]
    plot_points_per_item(names, [gains[n][0] for n in names], path,
                         "accuracy given back by switching it off (points)",
                         f"{title}\ndigital {100 * digital:.1f}%, analog (default) "
                         f"{default:.1f}%", color="tab:blue")


def main(argv: list[str] | None = None) -> None:
    args, base, test, stem = probe_command(__doc__.split("\n\n")[0], 2.592e6, "ablation", argv)
    digital, results = ablation(base, test, args.time, args.reps, adabs=adabs_batches(args))
    adabs = f", AdaBS on {args.adabs} augmented training images" if args.adabs else ""
    title = (f"{args.model} ({Path(args.weights).parent.name}): analog at t = {args.time:g} s, "
             f"{args.reps} programmings, {len(test)} test images{adabs}")
    write_table(digital, results, stem.with_suffix(".md"), title)
    plot_given_back(digital, results, stem.with_suffix(".png"), title)
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
