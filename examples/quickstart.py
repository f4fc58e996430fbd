"""Quick start: convert a network, program it once, read it at several times after programming.

    python examples/quickstart.py [--weights checkpoints/f1net/model.pt] [--model f1net] [--images 1000]

Without ``--weights`` the network is untrained (the numbers then only show the mechanics).
Prints the tile summary and the test accuracy (or the agreement with FP32) over time.
"""
from __future__ import annotations

import argparse

import torch

import aimcsim
from aimcsim.data import iterate_batches, load_cifar10
from aimcsim.models import MODEL_NAMES, build_model
from aimcsim.training.hwa import load_weights


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODEL_NAMES, default="f1net")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    model = build_model(args.model).eval()
    if args.weights:
        load_weights(model, args.weights)
    test = load_cifar10(args.data, train=False, limit=args.images)
    analog = aimcsim.convert_to_analog(model).eval()
    print(aimcsim.summary(analog))
    aimcsim.program(analog, seed=0)
    with torch.no_grad():
        for t in (1.0, 3600.0, 86400.0, 365 * 86400.0):
            aimcsim.set_time(analog, t)
            agree = correct = correct_fp32 = 0
            for x, y in iterate_batches(test, 250):
                a, d = analog(x).argmax(1), model(x).argmax(1)
                agree += int((a == d).sum())
                correct += int((a == y).sum())
                correct_fp32 += int((d == y).sum())
            n = len(test)
            print(f"t = {t:>10.0f} s: accuracy {100 * correct / n:5.1f}% (FP32 "
                  f"{100 * correct_fp32 / n:5.1f}%), same class as FP32 for {100 * agree / n:5.1f}%")
    print(aimcsim.saturation(analog))


if __name__ == "__main__":
    main()
