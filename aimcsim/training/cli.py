"""``python -m aimcsim train``: FP32 or hardware-aware training of a zoo network on CIFAR-10."""
from __future__ import annotations

import argparse

from aimcsim.data import load_cifar10
from aimcsim.models import build_model, MODEL_NAMES
from aimcsim.training.distillation import DEFAULT_DISTILL_TEMPERATURE, DEFAULT_DISTILL_WEIGHT
from aimcsim.training.trainer import OPTIMIZERS, SCHEDULES, TrainConfig, train_classifier


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a zoo network in FP32 on CIFAR-10 (resumable)")
    p.add_argument("--model", choices=MODEL_NAMES, required=True)
    p.add_argument("--data", default=None, help="folder holding cifar-10-batches-py")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, history.json)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", choices=SCHEDULES, default="onecycle")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                   help="sgd (Nesterov momentum 0.9) or adamw (transformers)")
    p.add_argument("--swa-start", type=int, default=0, metavar="EPOCH",
                   help="average the weights at the end of every epoch from EPOCH (1-based) on "
                        "and keep the average (stochastic weight averaging; 0: off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--init-from", default=None, metavar="WEIGHTS",
                       help="FP32 training that starts from these weights (model.pt) instead "
                            "of a fresh initialisation: to train a finished run longer")
    start.add_argument("--hwa-from", default=None, metavar="WEIGHTS",
                       help="hardware-aware fine-tuning from these FP32 weights (model.pt)")
    p.add_argument("--weight-noise", type=float, default=0.03,
                   help="HWA weight noise relative to max|W| of each tile")
    p.add_argument("--clip-sigma", type=float, default=2.5,
                   help="HWA weight clipping in standard deviations (0: off)")
    p.add_argument("--noise-model", choices=("gaussian", "device"), default="gaussian",
                   help="HWA weight perturbation: Gaussian noise (--weight-noise) or the "
                        "device model (--device) read at a random time in [--t-min, --t-max]")
    p.add_argument("--device", default=None, metavar="NAME",
                   help="device model of the analog layers of hardware-aware training: pcm "
                        "(default), hermes, hermes-1, rram (valid 1 s to 2 days: give "
                        "--t-max 172800), gaussian, ideal")
    p.add_argument("--t-min", type=float, default=1.0, help="device model: earliest read, s")
    p.add_argument("--t-max", type=float, default=1e6, help="device model: latest read, s")
    p.add_argument("--noise-scale", type=float, default=1.0,
                   help="device model: multiply the read weights' deviation from the float "
                        "weights by this factor in training (noise inflation; 1: off)")
    p.add_argument("--distill-from", default=None, metavar="WEIGHTS",
                   help="knowledge distillation: the float network (model.pt of --model) whose "
                        "soft predictions the trained network learns beside the labels")
    p.add_argument("--distill-weight", type=float, default=None,
                   help="with --distill-from: share of the distillation term in the loss "
                        f"(default {DEFAULT_DISTILL_WEIGHT:g})")
    p.add_argument("--distill-temperature", type=float, default=None,
                   help="with --distill-from: softmax temperature of the distillation term "
                        f"(default {DEFAULT_DISTILL_TEMPERATURE:g})")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> None:
    import torch
    from aimcsim.devices import make_device
    if args.device is not None and not args.hwa_from:
        raise SystemExit("--device applies to hardware-aware training: give --hwa-from")
    if not args.distill_from and (args.distill_weight is not None
                                  or args.distill_temperature is not None):
        raise SystemExit("--distill-weight and --distill-temperature apply to distillation: "
                         "give --distill-from")
    device = make_device(args.device or "pcm")  # an unknown name fails before any loading
    torch.manual_seed(args.seed)
    model = build_model(args.model)
    train = load_cifar10(args.data, train=True, limit=args.limit)
    test = load_cifar10(args.data, train=False)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                         weight_decay=args.weight_decay, schedule=args.schedule, seed=args.seed,
                         threads=args.threads, swa_start=args.swa_start,
                         optimizer=args.optimizer,
                         distill_weight=(DEFAULT_DISTILL_WEIGHT if args.distill_weight is None
                                         else args.distill_weight) if args.distill_from else 0.0,
                         distill_temperature=(DEFAULT_DISTILL_TEMPERATURE
                                              if args.distill_temperature is None
                                              else args.distill_temperature))
    teacher = None
    if args.distill_from:
        from aimcsim.training.hwa import load_weights
        teacher = load_weights(build_model(args.model), args.distill_from)
    start_weights = args.hwa_from or args.init_from  # the two are mutually exclusive
    if start_weights:
        from aimcsim.training.hwa import load_weights
        load_weights(model, start_weights)
    if args.hwa_from:
        from aimcsim.nn import HardwareAwareConfig
        from aimcsim.tiles.config import AnalogConfig
        from aimcsim.training.hwa import hardware_aware_finetune
        hwa = HardwareAwareConfig(weight_noise=args.weight_noise,
                                  clip_sigma=args.clip_sigma or None,
                                  noise_model=args.noise_model, t_min=args.t_min,
                                  t_max=args.t_max, noise_scale=args.noise_scale)
        analog = AnalogConfig(device=device) if args.device else None  # None: the default
        _, history = hardware_aware_finetune(model, train, test, config, args.out, hwa,
                                             analog_config=analog, teacher=teacher)
    else:
        history = train_classifier(model, train, test, config, args.out, teacher=teacher)
    print(f"done: test accuracy {100 * history.get('test_acc', float('nan')):.2f}% after "
          f"{len(history['epochs'])} epochs, {history['wall_seconds'] / 60:.1f} min")
