"""Supervised training of a classifier on CIFAR-10 with checkpoints every epoch and resume.

The same loop serves FP32 training and hardware-aware training: the latter passes a model whose
layers inject noise and quantise in their forward pass (see :mod:`aimcsim.training.hwa`).
A killed run restarts from the last completed epoch with the same data order, learning-rate
schedule and optimizer state.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from aimcsim.data.cifar10 import CifarSplit
from aimcsim.data.loader import iterate_batches
from aimcsim.threads import set_compute_threads
from aimcsim.training.distillation import DEFAULT_DISTILL_TEMPERATURE, DistillationLoss
from aimcsim.training.state_file import load_state, save_compressed_state
from aimcsim.training.weight_averaging import WeightAverage, recompute_batchnorm_statistics
from aimcsim.validation import check_bool, check_choice, check_float, check_int

SCHEDULES = ("onecycle", "cosine", "constant")
#: Upper limit of epochs and batch sizes (beyond it a run cannot finish on this simulator).
MAX_COUNT = 1 << 20
OPTIMIZERS = ("sgd", "adamw")
#: Settings that fix the course of a run (data order, schedule, optimizer). A checkpoint only
#: resumes under the same values; the others (threads, memory format, eval batch) may change.
RESUME_KEYS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule", "seed",
               "swa_start", "optimizer", "distill_weight", "distill_temperature")


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run.

    Attributes:
        epochs: passes over the training set.
        batch_size: images per SGD step.
        lr: peak learning rate (one-cycle), initial learning rate (cosine) or the learning
            rate throughout (constant).
        momentum: SGD momentum (Nesterov); unused by AdamW.
        weight_decay: L2 penalty (SGD) or decoupled weight decay (AdamW) on the weight tensors
            (convolutions, linear layers); biases (1-D, or parameters named ``bias`` such as
            the ViT's position embeddings) and batch-norm / layer-norm scales and shifts are
            not decayed.
        schedule: ``onecycle``, ``cosine`` or ``constant``.
        seed: seed of initialisation-independent randomness (data order, augmentation).
        channels_last: use the channels_last memory format (faster convs on CPU).
        threads: torch and Numba threads (0 keeps their defaults;
            :func:`aimcsim.threads.set_compute_threads`).
        eval_batch_size: images per batch when testing.
        swa_start: 0 for no weight averaging; else the weights are averaged at the end of
            every epoch from this one (1-based) to the last, and the run's final weights are
            that average with batch-norm statistics measured again (see
            :mod:`aimcsim.training.weight_averaging`).
        optimizer: ``sgd`` (Nesterov momentum) or ``adamw`` (betas 0.9, 0.999; the usual
            choice for transformers). With ``onecycle`` the schedule also cycles SGD's
            momentum or AdamW's beta1.
        distill_weight: share ``a`` in [0, 1] of the distillation term in the loss (0: plain
            cross-entropy; > 0 needs a teacher, see
            :class:`aimcsim.training.distillation.DistillationLoss`).
        distill_temperature: softmax temperature ``T`` > 0 of the distillation term.
    """

    epochs: int = 60
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    seed: int = 0
    channels_last: bool = True
    threads: int = 0
    eval_batch_size: int = 250
    swa_start: int = 0
    optimizer: str = "sgd"
    distill_weight: float = 0.0
    distill_temperature: float = DEFAULT_DISTILL_TEMPERATURE

    def __post_init__(self) -> None:
        self.epochs = check_int(self.epochs, "epochs", 1, MAX_COUNT)
        self.batch_size = check_int(self.batch_size, "batch_size", 1, MAX_COUNT)
        self.lr = check_float(self.lr, "lr", 0, 1e3, low_open=True)
        self.momentum = check_float(self.momentum, "momentum (Nesterov SGD)", 0, 1,
                                    low_open=True, high_open=True)
        self.weight_decay = check_float(self.weight_decay, "weight_decay", 0, 1e3)
        check_choice(self.schedule, SCHEDULES, "schedule")
        self.seed = check_int(self.seed, "seed", 0)
        self.channels_last = check_bool(self.channels_last, "channels_last")
        self.threads = check_int(self.threads, "threads", 0, 4096)
        self.eval_batch_size = check_int(self.eval_batch_size, "eval_batch_size", 1, MAX_COUNT)
        self.swa_start = check_int(self.swa_start, "swa_start (0: off, else an epoch)", 0,
                                   self.epochs)
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        self.distill_weight = check_float(self.distill_weight, "distill_weight", 0, 1)
        self.distill_temperature = check_float(self.distill_temperature, "distill_temperature",
                                               0, 1e3, low_open=True)


@torch.no_grad()
def evaluate(model: nn.Module, split: CifarSplit, batch_size: int = 250,
             channels_last: bool = True, progress: bool = False) -> float:
    """Top-1 accuracy (fraction 0-1) of ``model`` on ``split``, in eval mode."""
    if len(split) == 0:
        raise ValueError("cannot evaluate on an empty split")
    was_training = model.training
    model.eval()
    correct = 0
    batches = iterate_batches(split, batch_size, channels_last=channels_last)
    total_batches = math.ceil(len(split) / batch_size)
    for x, y in tqdm(batches, total=total_batches, disable=not progress, desc="eval",
                     leave=False):
        correct += int((model(x).argmax(1) == y).sum())
    model.train(was_training)
    return correct / len(split)


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW over the model's parameters, weight decay on weight tensors
    only (see :class:`TrainConfig`)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        plain = param.ndim <= 1 or name == "bias" or name.endswith(".bias")
        (no_decay if plain else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.999))
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)


def _make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total,
                                                   pct_start=0.15, div_factor=10.0,
                                                   final_div_factor=100.0)
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=total)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)


def _digital_weights(model: nn.Module):
    """Evaluate analog (hardware-aware) models on the float weights their training forward
    uses (clipped, without noise) during training."""
    if not any(hasattr(m, "digital_eval") for m in model.modules()):
        return contextlib.nullcontext()
    from aimcsim.nn.model_api import digital
    return digital(model, hwa_clipping=True)


def _check_resumable(saved: dict | None, config: TrainConfig, path: Path) -> None:
    """Refuse to resume a checkpoint written under other run settings (see RESUME_KEYS)."""
    if not saved:
        return
    current = asdict(config)
    # a key the saved run predates had its default value then
    defaults = asdict(TrainConfig())
    diff = {k: (saved.get(k, defaults[k]), current[k]) for k in RESUME_KEYS
            if saved.get(k, defaults[k]) != current[k]}
    if diff:
        listed = ", ".join(f"{k}={old!r} (now {new!r})" for k, (old, new) in diff.items())
        raise ValueError(f"{path} was written by a run with other settings: {listed}. A run "
                         f"resumes only with the settings it started with (the learning-rate "
                         f"schedule and data order depend on them); use the same settings or a "
                         f"new output folder.")


def _use_weight_average(model: nn.Module, average: WeightAverage, train: CifarSplit,
                        test: CifarSplit | None, config: TrainConfig, history: dict,
                        progress: bool) -> None:
    """Load the averaged weights into ``model``, measure its batch-norm statistics again and
    record the average's test accuracy in ``history``."""
    started = time.time()
    average.copy_to(model)
    batches = iterate_batches(train, config.batch_size, shuffle=True, augment_data=True,
                              seed=config.seed * 100_003 + config.epochs,
                              channels_last=config.channels_last)
    bar = tqdm(batches, total=math.ceil(len(train) / config.batch_size), disable=not progress,
               desc="batch-norm statistics of the averaged weights")
    images = recompute_batchnorm_statistics(model, bar)
    history["weight_average"] = {"snapshots": average.count, "first_epoch": config.swa_start,
                                 "batchnorm_images": images}
    if test is not None:
        if "test_acc" in history:
            history["test_acc_last_epoch"] = history["test_acc"]
        with _digital_weights(model):
            history["test_acc"] = evaluate(model, test, config.eval_batch_size,
                                           config.channels_last)
        if progress:
            print(f"averaged weights of {average.count} epochs: test accuracy "
                  f"{100 * history['test_acc']:.2f}%", flush=True)
    history["weight_average"]["seconds"] = time.time() - started


def train_classifier(model: nn.Module, train: CifarSplit, test: CifarSplit | None,
                     config: TrainConfig, out_dir: str | os.PathLike,
                     progress: bool = True,
                     finalize: Callable[[nn.Module], object] | None = None,
                     teacher: nn.Module | None = None) -> dict:
    """Train ``model`` and return the history ``{"epochs": [...], "test_acc": ..., ...}``.

    Writes ``out_dir/checkpoint.pt`` after every epoch (model, optimizer, scheduler, history;
    zlib-compressed, :mod:`aimcsim.training.state_file`),
    ``out_dir/history.json`` and, at the end, ``out_dir/model.pt`` (state dict only), after
    ``finalize(model)`` when given (it may change the weights in place; the checkpoint keeps
    the weights as trained, so ``model.pt`` appears only once it is final). If a
    checkpoint exists, training resumes after its last completed epoch, with torch's global
    random state as it was then (hardware-aware noise draws from it), so a killed and resumed
    run ends where an uninterrupted one would. With ``config.swa_start`` the weights are
    averaged from that epoch on (the running average is part of the checkpoint) and
    ``model.pt`` holds the average, its batch-norm statistics measured again over one
    augmented pass of ``train``; ``history["test_acc"]`` is then the average's accuracy and
    ``history["test_acc_last_epoch"]`` that of the last epoch's weights. With
    ``config.distill_weight > 0`` the loss distils ``teacher``'s predictions
    (:class:`aimcsim.training.distillation.DistillationLoss`).

    Raises:
        ValueError: the checkpoint in ``out_dir`` was written with other settings
            (:data:`RESUME_KEYS`), e.g. another number of epochs; or a teacher without
            ``config.distill_weight`` or the weight without a teacher.
    """
    if (teacher is None) != (config.distill_weight == 0.0):
        raise ValueError("distillation needs both a teacher and distill_weight > 0, got "
                         f"teacher={'given' if teacher is not None else None}, "
                         f"distill_weight={config.distill_weight}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_compute_threads(config.threads)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = _make_optimizer(model, config)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    scheduler = _make_scheduler(optimizer, config, steps_per_epoch)
    distill = None if teacher is None else DistillationLoss(
        teacher.to(memory_format=memory_format), config.distill_weight,
        config.distill_temperature)
    history: dict = {"config": asdict(config), "epochs": []}
    start_epoch = 0
    average = WeightAverage() if config.swa_start else None
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        state = load_state(ckpt_path)
        saved_history = json.loads(state["history"])
        _check_resumable(saved_history.get("config"), config, ckpt_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        if average is not None and "weight_average" in state:
            average.load_state_dict(state["weight_average"])
        history = saved_history
        start_epoch = int(state["epoch"])
        if progress:
            print(f"resuming {out} after epoch {start_epoch}/{config.epochs}")
    for epoch in range(start_epoch, config.epochs):
        model.train()
        started = time.time()
        seen = correct = 0
        loss_sum = 0.0
        batches = iterate_batches(train, config.batch_size, shuffle=True, augment_data=True,
                                  seed=config.seed * 100_003 + epoch,
                                  channels_last=config.channels_last)
        bar = tqdm(batches, total=steps_per_epoch, disable=not progress,
                   desc=f"epoch {epoch + 1}/{config.epochs}")
        for x, y in bar:
            logits = model(x)
            loss = distill(x, logits, y) if distill else nn.functional.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} in epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += y.numel()
            loss_sum += float(loss.detach()) * y.numel()
            correct += int((logits.argmax(1) == y).sum())
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}%",
                            lr=f"{scheduler.get_last_lr()[0]:.3g}")
        record = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                  "seconds": time.time() - started}
        if test is not None:
            with _digital_weights(model):
                record["test_acc"] = evaluate(model, test, config.eval_batch_size,
                                              config.channels_last)
        history["epochs"].append(record)
        if progress:
            print(json.dumps(record), flush=True)
        checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
                      "history": json.dumps(history), "torch_rng": torch.get_rng_state()}
        if average is not None and epoch + 1 >= config.swa_start:
            average.add(model)
            checkpoint["weight_average"] = average.state_dict()
        save_compressed_state(checkpoint, ckpt_path)
        (out / "history.json").write_text(json.dumps(history, indent=1))
    history["wall_seconds"] = sum(r["seconds"] for r in history["epochs"])
    if history["epochs"] and "test_acc" in history["epochs"][-1]:
        history["test_acc"] = history["epochs"][-1]["test_acc"]
    if average is not None:
        _use_weight_average(model, average, train, test, config, history, progress)
    if finalize is not None:
        finalize(model)
        history["model_pt"] = f"weights after {finalize.__name__}"
    (out / "history.json").write_text(json.dumps(history, indent=1))
    torch.save(model.to(memory_format=torch.contiguous_format).state_dict(), out / "model.pt")
    return history
