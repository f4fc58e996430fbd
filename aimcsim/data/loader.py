"""Mini-batches of CIFAR-10 as normalised float tensors, with crop + flip augmentation.

Augmentation runs on whole batches in torch (pad 4, random 32x32 crop, horizontal flip), so a
2-core machine spends its time in the network, not in per-image Python code.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from aimcsim.data.cifar10 import TRAIN_MEAN, TRAIN_STD, CifarSplit
from aimcsim.validation import check_choice, check_int


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) -> float32, normalised with the training-set mean and std."""
    x = torch.from_numpy(np.asarray(images)).float().div_(255.0)
    mean = torch.tensor(TRAIN_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(TRAIN_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` pixels and random horizontal flip, per image."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h))  # (n, h)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w))  # (n, w)
    flip = torch.rand(n, generator=generator) < 0.5
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols)
    idx_n = torch.arange(n).view(n, 1, 1, 1)
    idx_c = torch.arange(x.shape[1]).view(1, -1, 1, 1)
    return padded[idx_n, idx_c, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]


def iterate_batches(split: CifarSplit, batch_size: int, shuffle: bool = False,
                    augment_data: bool = False, seed: int = 0,
                    channels_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (images, labels) mini-batches; the last batch may be smaller.

    Args:
        split: the data, see :func:`aimcsim.data.load_cifar10`.
        batch_size: images per batch (>= 1).
        shuffle: visit images in a random order drawn from ``seed``.
        augment_data: apply :func:`augment` (training only).
        seed: seed of the order and the augmentation, for reproducible epochs.
        channels_last: return images in channels_last memory format (faster convs on CPU).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    n = len(split)
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    labels = torch.from_numpy(split.labels)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        x = to_tensor(split.images[idx.numpy()])
        if augment_data:
            x = augment(x, gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, labels[idx]


#: How AdaBS calibration images are prepared: "augmented" (the training augmentation, crop +
#: flip) or "plain" (as stored).
CALIBRATION_IMAGES = ("augmented", "plain")


def calibration_batches(split: CifarSplit, count: int, batch_size: int,
                        images: str = "augmented", seed: int = 0) -> list[torch.Tensor]:
    """The first ``count`` images of ``split`` as channels-last batches for re-measuring batch
    norms (AdaBS, :func:`aimcsim.adapt_batchnorm`), with the training augmentation
    (``images="augmented"``, crop + flip drawn from ``seed``) or without (``"plain"``).

    Augmented is the default because the stored batch-norm statistics were measured on
    augmented images: re-measured on 500 plain training images, the *digital* FP32 ResNet-32
    (92.00%) falls to 90.93% (2,000 augmented: 91.84%); see docs/usage.md.

    Raises:
        ValueError: ``count`` < 1 or more than ``split`` holds, or an unknown ``images``.
    """
    check_choice(images, CALIBRATION_IMAGES, "images")
    count = check_int(count, "count", 1, len(split))
    first = CifarSplit(split.images[:count], split.labels[:count])
    return [x for x, _ in iterate_batches(first, batch_size, augment_data=images == "augmented",
                                          seed=seed, channels_last=True)]
