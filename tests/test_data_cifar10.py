"""CIFAR-10 loading, checksums, download and the mini-batch pipeline.

Real-data tests read the shared copy once per module (about 1 s for 180 MB) and are skipped with
a reason when no copy is found (see docs/data.md). Everything else runs on tiny batches written
in the official layout under ``tmp_path``.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from aimcsim.data import cifar10 as cifar_mod
from aimcsim.data import (CifarSplit, DatasetNotFoundError, augment, default_root,
                          download_cifar10, iterate_batches, load_cifar10, to_tensor,
                          verify_cifar10)

ROOT = default_root()
needs_data = pytest.mark.skipif(
    ROOT is None, reason="CIFAR-10 not found: set AIMCSIM_CIFAR10 to the folder holding "
                         "cifar-10-batches-py (see docs/data.md)")

# Published per-channel statistics, as quoted in the shared copy's README.md.
TRAIN_MEAN_255 = (125.30691805, 122.95039414, 113.86538318)
TRAIN_STD_255 = (62.99321928, 62.08870764, 66.70489964)
TEST_MEAN_01 = (0.49421428, 0.48513139, 0.45040909)
TEST_STD_01 = (0.24665252, 0.24289226, 0.26159238)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- helpers

def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and (population) std on the 0-255 scale, via value histograms."""
    values = np.arange(256, dtype=np.float64)
    means, stds = [], []
    for c in range(3):
        counts = np.bincount(images[:, c].reshape(-1), minlength=256).astype(np.float64)
        n = counts.sum()
        mean = (counts * values).sum() / n
        means.append(mean)
        stds.append(np.sqrt((counts * (values - mean) ** 2).sum() / n))
    return np.array(means), np.array(stds)


def _write_batch(path: Path, data, labels, **extra) -> None:
    entry = {"batch_label": "test batch", "labels": labels, "data": data, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(entry, fh, protocol=2)


def _tiny_layout(folder: Path, per_batch: int = 6, seed: int = 0) -> dict[str, tuple]:
    """Write data_batch_1..5 and test_batch with ``per_batch`` random images each."""
    rng = np.random.default_rng(seed)
    written = {}
    for name in cifar_mod.TRAIN_FILES + cifar_mod.TEST_FILES:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        _write_batch(folder / cifar_mod.FOLDER / name, data, labels)
        written[name] = (data, labels)
    meta = {"label_names": list(cifar_mod.CLASSES), "num_cases_per_batch": per_batch,
            "num_vis": 3072}
    with open(folder / cifar_mod.FOLDER / "batches.meta", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    return written


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _make_archive(src: Path, dest: Path, extra: dict[str, bytes] | None = None) -> Path:
    """tar.gz of ``src/cifar-10-batches-py`` in the official layout (+ optional extra members)."""
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src / cifar_mod.FOLDER, arcname=cifar_mod.FOLDER)
        for name, payload in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return dest


# --------------------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def real_train() -> CifarSplit:
    if ROOT is None:
        pytest.skip("CIFAR-10 not found (see docs/data.md)")
    return load_cifar10(ROOT, train=True)


@pytest.fixture(scope="module")
def real_test() -> CifarSplit:
    if ROOT is None:
        pytest.skip("CIFAR-10 not found (see docs/data.md)")
    return load_cifar10(ROOT, train=False)


@needs_data
def test_real_shapes_dtypes_and_class_balance(real_train, real_test):
    for split, n, per_class in ((real_train, 50_000, 5_000), (real_test, 10_000, 1_000)):
        assert len(split) == n
        assert split.images.shape == (n, 3, 32, 32)
        assert split.images.dtype == np.uint8
        assert split.images.flags["C_CONTIGUOUS"]
        assert split.labels.shape == (n,)
        assert split.labels.dtype == np.int64
        assert split.labels.min() == 0 and split.labels.max() == 9
        assert np.bincount(split.labels, minlength=10).tolist() == [per_class] * 10


@needs_data
def test_real_channel_statistics_match_published_values(real_train, real_test):
    mean, std = _channel_stats(real_train.images)
    np.testing.assert_allclose(mean / 255, np.array(TRAIN_MEAN_255) / 255, rtol=0, atol=1e-6)
    np.testing.assert_allclose(std / 255, np.array(TRAIN_STD_255) / 255, rtol=0, atol=1e-6)
    mean, std = _channel_stats(real_test.images)
    np.testing.assert_allclose(mean / 255, TEST_MEAN_01, rtol=0, atol=1e-6)
    np.testing.assert_allclose(std / 255, TEST_STD_01, rtol=0, atol=1e-6)
    # The normalisation constants of the loader are these published training statistics.
    np.testing.assert_allclose(cifar_mod.TRAIN_MEAN, np.array(TRAIN_MEAN_255) / 255, atol=1e-6)
    np.testing.assert_allclose(cifar_mod.TRAIN_STD, np.array(TRAIN_STD_255) / 255, atol=1e-6)


@needs_data
def test_real_limit_takes_the_first_images(real_train):
    head = load_cifar10(ROOT, train=True, limit=12_345)  # spans two batch files
    assert len(head) == 12_345
    np.testing.assert_array_equal(head.images, real_train.images[:12_345])
    np.testing.assert_array_equal(head.labels, real_train.labels[:12_345])


@needs_data
def test_verify_accepts_the_shared_copy():
    verify_cifar10(ROOT)


@needs_data
def test_md5_table_lists_official_and_rebuilt_checksums_of_the_readme():
    readme = ROOT / "README.md"
    if not readme.is_file():
        pytest.skip(f"no README.md next to the shared copy in {ROOT}")
    rows = re.findall(r"^\|\s*(data_batch_\d|test_batch)\s*\|\s*([0-9a-f]{32}).*?\|\s*"
                      r"([0-9a-f]{32})", readme.read_text(), flags=re.MULTILINE)
    assert len(rows) == 6
    for name, official, rebuilt in rows:
        assert {official, rebuilt} <= cifar_mod.BATCH_MD5[name], name


# --------------------------------------------------------------------------- missing / corrupt

def test_missing_root_says_where_to_put_the_data(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar10(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "data_batch_1" in message and "python -m aimcsim download" in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_test_batch_only(tmp_path):
    _tiny_layout(tmp_path)
    (tmp_path / cifar_mod.FOLDER / "test_batch").unlink()
    assert len(load_cifar10(tmp_path, train=True)) == 30
    with pytest.raises(DatasetNotFoundError, match="test_batch"):
        load_cifar10(tmp_path, train=False)
    with pytest.raises(DatasetNotFoundError, match="test_batch"):
        verify_cifar10(tmp_path)


def test_no_default_location_mentions_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("AIMCSIM_CIFAR10", str(tmp_path / "nowhere"))
    monkeypatch.setattr(cifar_mod, "DEFAULT_ROOTS", (str(tmp_path / "also-nowhere"),))
    assert default_root() is None
    with pytest.raises(DatasetNotFoundError) as info:
        load_cifar10(None)
    message = str(info.value)
    assert "AIMCSIM_CIFAR10" in message and "cifar-10-batches-py" in message
    assert "python -m aimcsim download" in message


def test_environment_variable_selects_the_root(tmp_path, monkeypatch):
    written = _tiny_layout(tmp_path)
    monkeypatch.setenv("AIMCSIM_CIFAR10", str(tmp_path))
    assert default_root() == tmp_path
    split = load_cifar10(None, train=False)
    np.testing.assert_array_equal(split.images.reshape(-1, 3072), written["test_batch"][0])


def test_tiny_layout_round_trip_is_channel_planar(tmp_path):
    written = _tiny_layout(tmp_path, per_batch=4)
    split = load_cifar10(tmp_path, train=True)
    assert split.images.shape == (20, 3, 32, 32)
    data, labels = written["data_batch_1"]
    # Row layout: 1024 red values, then green, then blue, each row-major.
    np.testing.assert_array_equal(split.images[0, 0], data[0, :1024].reshape(32, 32))
    np.testing.assert_array_equal(split.images[0, 2, 5], data[0, 2048 + 5 * 32:2048 + 6 * 32])
    assert split.labels[:4].tolist() == labels
    assert len(load_cifar10(tmp_path, train=True, limit=7)) == 7
    with pytest.raises(ValueError, match="limit"):
        load_cifar10(tmp_path, limit=0)


@pytest.mark.parametrize("case", ["wrong_width", "wrong_dtype", "label_10", "label_negative",
                                  "label_count", "no_labels", "not_a_dict", "truncated"])
def test_corrupted_batch_raises_value_error(tmp_path, case):
    _tiny_layout(tmp_path, per_batch=4)
    path = tmp_path / cifar_mod.FOLDER / "data_batch_1"
    good = np.zeros((4, 3072), dtype=np.uint8)
    if case == "wrong_width":
        _write_batch(path, np.zeros((4, 3000), dtype=np.uint8), [0, 1, 2, 3])
    elif case == "wrong_dtype":
        _write_batch(path, good.astype(np.float32), [0, 1, 2, 3])
    elif case == "label_10":
        _write_batch(path, good, [0, 1, 10, 3])
    elif case == "label_negative":
        _write_batch(path, good, [0, -1, 2, 3])
    elif case == "label_count":
        _write_batch(path, good, [0, 1, 2])
    elif case == "no_labels":
        with open(path, "wb") as fh:
            pickle.dump({"data": good}, fh, protocol=2)
    elif case == "not_a_dict":
        with open(path, "wb") as fh:
            pickle.dump([good, [0, 1, 2, 3]], fh, protocol=2)
    else:
        path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match="data_batch_1"):
        load_cifar10(tmp_path, train=True)


# --------------------------------------------------------------------------- checksums, download

@pytest.fixture
def tiny_archive(tmp_path, monkeypatch):
    """An official-layout tar.gz of tiny batches, with BATCH_MD5 patched to accept them."""
    src = tmp_path / "src"
    written = _tiny_layout(src)
    monkeypatch.setattr(cifar_mod, "BATCH_MD5", {
        name: {_md5(src / cifar_mod.FOLDER / name)} for name in written})
    archive = _make_archive(src, tmp_path / "cifar-10-python.tar.gz")
    return archive, written


def test_verify_rejects_a_changed_file(tmp_path, tiny_archive):
    _, written = tiny_archive
    root = tmp_path / "copy"
    _tiny_layout(root)  # same seed: same bytes as the archived files
    verify_cifar10(root)
    data, labels = written["data_batch_3"]
    data = data.copy()
    data[0, 0] ^= 1
    _write_batch(root / cifar_mod.FOLDER / "data_batch_3", data, labels)
    with pytest.raises(ValueError, match="data_batch_3"):
        verify_cifar10(root)


def test_download_from_file_url(tmp_path, tiny_archive, capsys):
    archive, written = tiny_archive
    root = tmp_path / "root"
    assert download_cifar10(root, url=archive.as_uri(), archive_md5=_md5(archive)) == root
    train = load_cifar10(root, train=True)
    expected = np.concatenate([written[n][0] for n in cifar_mod.TRAIN_FILES])
    np.testing.assert_array_equal(train.images.reshape(-1, 3072), expected)
    assert train.labels.tolist() == sum((written[n][1] for n in cifar_mod.TRAIN_FILES), [])
    assert (root / cifar_mod.FOLDER / "batches.meta").is_file()
    # Already there: only verified, the (now unreachable) URL is not fetched again.
    assert download_cifar10(root, url=(tmp_path / "gone.tar.gz").as_uri()) == root
    # and so does the command line
    from aimcsim.__main__ import main
    main(["download", "--root", str(root)])
    assert "verified" in capsys.readouterr().out


def test_download_with_wrong_archive_md5_extracts_nothing(tmp_path, tiny_archive):
    archive, _ = tiny_archive
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="md5"):
        download_cifar10(root, url=archive.as_uri(), archive_md5="0" * 32)
    assert not (root / cifar_mod.FOLDER).exists()


def test_download_rejects_batches_with_unknown_checksums(tmp_path, tiny_archive, monkeypatch):
    archive, _ = tiny_archive
    monkeypatch.setattr(cifar_mod, "BATCH_MD5", {n: {"f" * 32} for n in cifar_mod.BATCH_MD5})
    with pytest.raises(ValueError, match="checksum"):
        download_cifar10(tmp_path / "root", url=archive.as_uri(), archive_md5=None)


def test_download_extracts_only_the_batch_folder(tmp_path, tiny_archive):
    archive, _ = tiny_archive
    src = tmp_path / "src"
    evil = _make_archive(src, tmp_path / "evil.tar.gz",
                         extra={"../escaped.txt": b"x", "elsewhere.txt": b"y",
                                f"{cifar_mod.FOLDER}/../../up.txt": b"z"})
    root = tmp_path / "deep" / "root"
    download_cifar10(root, url=evil.as_uri(), archive_md5=_md5(evil))
    assert sorted(p.name for p in root.iterdir()) == [cifar_mod.FOLDER]
    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert not (tmp_path / "up.txt").exists() and not (tmp_path / "deep" / "up.txt").exists()


# --------------------------------------------------------------------------- batches, augmentation

def _split(n: int = 10, seed: int = 0) -> CifarSplit:
    rng = np.random.default_rng(seed)
    return CifarSplit(images=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                      labels=np.arange(n, dtype=np.int64))


def test_to_tensor_normalises_with_training_statistics():
    mean = np.array(cifar_mod.TRAIN_MEAN) * 255
    std = np.array(cifar_mod.TRAIN_STD) * 255
    img = np.zeros((1, 3, 32, 32), dtype=np.uint8)
    img[0, :, 0, 0] = np.round(mean).astype(np.uint8)
    img[0, :, 0, 1] = 255
    x = to_tensor(img)
    assert x.dtype == torch.float32 and x.shape == (1, 3, 32, 32)
    np.testing.assert_allclose(x[0, :, 0, 0], (np.round(mean) - mean) / std, atol=1e-5)
    np.testing.assert_allclose(x[0, :, 0, 1], (255 - mean) / std, atol=1e-5)
    np.testing.assert_allclose(x[0, :, 1, 1], -mean / std, atol=1e-5)


def test_iterate_batches_shapes_and_order():
    split = _split(10)
    batches = list(iterate_batches(split, batch_size=4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    for x, y in batches:
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32)
        assert y.dtype == torch.int64
    assert torch.cat([y for _, y in batches]).tolist() == list(range(10))
    torch.testing.assert_close(torch.cat([x for x, _ in batches]), to_tensor(split.images))
    x, _ = next(iterate_batches(split, 4, channels_last=True))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(split, 0))


def test_shuffle_is_a_seeded_permutation():
    split = _split(50)

    def order(seed):
        return torch.cat([y for _, y in iterate_batches(split, 16, shuffle=True, seed=seed)])

    first, again, other = order(3), order(3), order(4)
    assert sorted(first.tolist()) == list(range(50))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.tolist() != list(range(50))


def test_augmented_batches_are_reproducible_from_the_seed():
    split = _split(12)

    def run(seed):
        return [x for x, _ in iterate_batches(split, 5, shuffle=True, augment_data=True,
                                              seed=seed)]

    a, b, c = run(7), run(7), run(8)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not all(torch.equal(u, v) for u, v in zip(a, c))


def _reference_views(img: np.ndarray, pad: int) -> dict[tuple[int, int, bool], np.ndarray]:
    """Every crop of the zero-padded image at offset (dy, dx), with and without mirroring."""
    c, h, w = img.shape
    padded = np.zeros((c, h + 2 * pad, w + 2 * pad), dtype=img.dtype)
    padded[:, pad:pad + h, pad:pad + w] = img
    views = {}
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            views[(dy, dx, False)] = crop
            views[(dy, dx, True)] = crop[:, :, ::-1]
    return views


def test_augment_is_a_crop_of_the_padded_image_or_its_mirror():
    n, pad = 300, 4
    # Distinct positive values, so every (offset, flip) gives a different picture.
    base = torch.arange(1, 2 * 32 * 32 + 1, dtype=torch.float32).view(1, 2, 32, 32)
    x = base.repeat(n, 1, 1, 1)
    x_before = x.clone()
    out = augment(x, torch.Generator().manual_seed(0), pad=pad)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(x, x_before)  # input untouched
    views = _reference_views(base[0].numpy(), pad)
    seen = []
    for i in range(n):
        matches = [k for k, v in views.items() if np.array_equal(out[i].numpy(), v)]
        assert len(matches) == 1, f"image {i} is no crop/flip of the padded input"
        seen.append(matches[0])
    dys = {k[0] for k in seen}
    dxs = {k[1] for k in seen}
    flips = sum(k[2] for k in seen)
    assert dys == set(range(2 * pad + 1)) and dxs == set(range(2 * pad + 1))
    assert 0.35 * n < flips < 0.65 * n


def test_augment_by_hand_on_a_tiny_image():
    # 1 channel, 2x3 image; pad 1 -> 4x5 padded, 3x3 possible offsets.
    img = torch.tensor([[[[1., 2., 3.], [4., 5., 6.]]]])
    found = set()
    for seed in range(60):
        out = augment(img, torch.Generator().manual_seed(seed), pad=1)[0, 0].tolist()
        found.add(tuple(map(tuple, out)))
    assert ((1., 2., 3.), (4., 5., 6.)) in found          # centre crop, no flip
    assert ((3., 2., 1.), (6., 5., 4.)) in found          # centre crop, mirrored
    assert ((0., 0., 0.), (0., 1., 2.)) in found or ((0., 0., 0.), (2., 1., 0.)) in found
    for rows in found:  # never anything but padding zeros and the original pixels
        assert set(v for r in rows for v in r) <= {0., 1., 2., 3., 4., 5., 6.}


def test_augment_without_padding_only_flips():
    x = torch.randn(64, 3, 32, 32)
    out = augment(x, torch.Generator().manual_seed(1), pad=0)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all())
    assert 0 < int(mirrored.sum()) < 64
