"""Datasets: CIFAR-10 read from its pickle batches (no torchvision)."""
from aimcsim.data.cifar10 import (CLASSES, CifarSplit, DatasetNotFoundError, default_root,
                                  download_cifar10, load_cifar10, verify_cifar10)
from aimcsim.data.loader import (CALIBRATION_IMAGES, augment, calibration_batches,
                                 iterate_batches, to_tensor)

__all__ = ["CLASSES", "CifarSplit", "DatasetNotFoundError", "default_root", "download_cifar10",
           "load_cifar10", "verify_cifar10", "CALIBRATION_IMAGES", "augment", "calibration_batches",
           "iterate_batches", "to_tensor"]
