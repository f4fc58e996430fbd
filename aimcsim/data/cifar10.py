"""CIFAR-10 from its python pickle batches, read without torchvision.

The folder layout is the official one: ``<root>/cifar-10-batches-py/{data_batch_1..5,
test_batch, batches.meta}``. Each batch is a pickle of a dict with ``data`` (N x 3072 uint8,
channel-planar RGB, row-major) and ``labels`` (N ints in 0..9).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
#: Accepted md5 checksums per batch file: the official ones and those of the rebuilt copy
#: described in ``shared/datasets/cifar10/README.md`` (same pixels and labels, no filenames).
BATCH_MD5 = {
    "data_batch_1": {"c99cafc152244af753f735de768cd75f", "751922d7ce26ef0842ebf4ff56450327"},
    "data_batch_2": {"d4bba439e000b95fd0a9bffe97cbabec", "89d319bf612b1fb949087abc9764b693"},
    "data_batch_3": {"54ebc095f3ab1f0389bbae665268c751", "c173cf1b21aa854cd4235bfc62e049c9"},
    "data_batch_4": {"634d18415352ddfa80567beed471001a", "4a9e29fc743496811de6e7fde3c9168e"},
    "data_batch_5": {"482c414d41f54cd18b22e5b47cb7c3cb", "5b2b88d8d787859c8fc235aa7829239e"},
    "test_batch": {"40351d587109b95175f43aff81a1287e", "638bf16a27d281200c8a48ed28e2043c"},
}
#: Per-channel mean and std of the training set on the 0-1 scale (used for normalisation).
TRAIN_MEAN = (0.4913996, 0.4821584, 0.4465309)
TRAIN_STD = (0.2470322, 0.2434851, 0.2615878)
#: Where the shared copy lives on the project's machines, relative to the repository.
DEFAULT_ROOTS = ("../shared/datasets/cifar10", "../../shared/datasets/cifar10",
                 "/work/shared/datasets/cifar10")


class DatasetNotFoundError(FileNotFoundError):
    """CIFAR-10 batches are missing from the given root folder."""


@dataclass(frozen=True)
class CifarSplit:
    """One split of CIFAR-10 in memory.

    Attributes:
        images: uint8 array (N, 3, 32, 32), RGB, values 0-255.
        labels: int64 array (N,), class indices 0-9.
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def default_root() -> Path | None:
    """The first existing CIFAR-10 root among ``$AIMCSIM_CIFAR10`` and the shared locations."""
    candidates = [os.environ.get("AIMCSIM_CIFAR10", "")] + list(DEFAULT_ROOTS)
    here = Path(__file__).resolve().parents[2]
    for cand in candidates:
        if not cand:
            continue
        for base in (Path(cand), here / cand):
            if (base / FOLDER).is_dir():
                return base
    return None


def _missing_message(root: Path, name: str) -> str:
    return (f"CIFAR-10 file '{name}' not found under '{root / FOLDER}'. Put the python version of "
            f"CIFAR-10 there (folder '{FOLDER}' with data_batch_1..5 and test_batch), "
            f"run `python -m aimcsim download --root {root}` (needs internet), or pass root= pointing at the folder "
            f"that holds '{FOLDER}'.")


def _not_found_message() -> str:
    """Message for ``root=None`` when no default location holds the data."""
    searched = ", ".join(f"'{c}'" for c in DEFAULT_ROOTS)
    return (f"CIFAR-10 not found: no '{FOLDER}' folder in $AIMCSIM_CIFAR10 "
            f"({os.environ.get('AIMCSIM_CIFAR10') or 'not set'}) nor in the default locations "
            f"{searched} (relative paths are tried from the working directory and from the "
            f"repository). Set AIMCSIM_CIFAR10 to the folder that holds '{FOLDER}' (with "
            f"data_batch_1..5 and test_batch), pass root= (--data) pointing at it, or fetch the "
            f"official archive with `python -m aimcsim download --root data` (needs internet).")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as fh:
        try:
            entry = pickle.load(fh, encoding="latin1")
        except (pickle.UnpicklingError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable pickle ({exc!r}); the file is truncated "
                             f"or not a CIFAR-10 batch") from exc
    if not isinstance(entry, dict) or "data" not in entry:
        raise ValueError(f"{path}: not a CIFAR-10 batch (no 'data' key)")
    labels_key = "labels" if "labels" in entry else "fine_labels"
    if labels_key not in entry:
        raise ValueError(f"{path}: not a CIFAR-10 batch (no 'labels' key)")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry[labels_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be uint8 of shape (N, 3072), got "
                         f"{data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: str | os.PathLike | None = None, train: bool = True,
                 limit: int | None = None) -> CifarSplit:
    """Load the training (50,000) or test (10,000) split.

    Args:
        root: folder holding ``cifar-10-batches-py``; ``None`` looks in ``$AIMCSIM_CIFAR10``
            and the project's shared dataset folder.
        train: training split if True, else the test split.
        limit: keep only the first ``limit`` images (for quick runs).

    Raises:
        DatasetNotFoundError: when a batch file is missing, saying where to put the data.
        ValueError: when a file is not a valid CIFAR-10 batch, or ``limit`` is < 1.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if root is None:
        found = default_root()
        if found is None:
            raise DatasetNotFoundError(_not_found_message())
        root = found
    root = Path(root)
    images, labels = [], []
    for name in TRAIN_FILES if train else TEST_FILES:
        path = root / FOLDER / name
        if not path.is_file():
            raise DatasetNotFoundError(_missing_message(root, name))
        x, y = _read_batch(path)
        images.append(x)
        labels.append(y)
        if limit is not None and sum(len(v) for v in labels) >= limit:
            break
    x = np.concatenate(images)[:limit]
    y = np.concatenate(labels)[:limit]
    return CifarSplit(images=np.ascontiguousarray(x), labels=y)


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex md5 of a file."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_cifar10(root: str | os.PathLike) -> None:
    """Check every batch file's md5 against the official or the rebuilt checksums.

    Raises:
        DatasetNotFoundError: a file is missing.  ValueError: a checksum does not match.
    """
    root = Path(root)
    for name in BATCH_MD5:  # report a missing file before spending time on checksums
        if not (root / FOLDER / name).is_file():
            raise DatasetNotFoundError(_missing_message(root, name))
    for name, accepted in BATCH_MD5.items():
        path = root / FOLDER / name
        digest = md5sum(path)
        if digest not in accepted:
            raise ValueError(f"{path}: md5 {digest} matches neither the official nor the "
                             f"rebuilt CIFAR-10 checksum")


def download_cifar10(root: str | os.PathLike, url: str = ARCHIVE_URL,
                     archive_md5: str | None = ARCHIVE_MD5) -> Path:
    """Download and unpack the official archive into ``root`` (needs internet).

    The archive's md5 is checked when ``archive_md5`` is given, and every extracted batch is
    checked with :func:`verify_cifar10`. ``url`` may be a ``file://`` address (used by tests).
    Returns the root folder. Does nothing but verify when the batches are already there.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if all((root / FOLDER / name).is_file() for name in BATCH_MD5):
        verify_cifar10(root)
        return root
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "cifar-10-python.tar.gz"
        with urllib.request.urlopen(url) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out)
        if archive_md5 is not None and md5sum(archive) != archive_md5:
            raise ValueError(f"downloaded archive from {url} has md5 {md5sum(archive)}, "
                             f"expected {archive_md5}")
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.name.startswith(FOLDER + "/") and m.isfile() and ".." not in m.name]
            tar.extractall(root, members=members, filter="data")
    verify_cifar10(root)
    return root
