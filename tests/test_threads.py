"""One switch for torch's and Numba's threads (a one-thread job must not start Numba workers
on every core)."""
from __future__ import annotations

import subprocess
import sys

import numba
import numpy as np
import pytest
import torch

from aimcsim.data import CifarSplit
from aimcsim.models import build_model
from aimcsim.threads import set_compute_threads
from aimcsim.training import TrainConfig, train_classifier


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads(), numba.get_num_threads()
    yield
    torch.set_num_threads(before[0])
    numba.set_num_threads(before[1])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_both_pools_follow_and_zero_leaves_them(restore_threads):
    set_compute_threads(2)
    assert (torch.get_num_threads(), numba.get_num_threads()) == (2, 2)
    set_compute_threads(1)
    assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
    set_compute_threads(0)
    assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
    set_compute_threads(10 ** 6)  # Numba capped at the workers it started with
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", None])
def test_bad_counts_are_refused(bad):
    with pytest.raises(ValueError, match="threads"):
        set_compute_threads(bad)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_a_one_thread_training_run_uses_one_numba_thread(restore_threads, tmp_path):
    numba.set_num_threads(2)
    rng = np.random.default_rng(0)
    split = CifarSplit(rng.integers(0, 256, (8, 3, 32, 32), dtype=np.uint8),
                       rng.integers(0, 10, 8).astype(np.int64))
    train_classifier(build_model("f1net"), split, None,
                     TrainConfig(epochs=1, batch_size=8, threads=1), tmp_path, progress=False)
    assert numba.get_num_threads() == 1


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 Numba threads")
def test_torch_keeps_its_count_when_numbas_pool_starts():
    """With Numba's OpenMP layer, starting Numba's pool after torch has run a parallel op
    resets the calling thread's OpenMP count, which is torch's too (torch back at 2 threads
    beside a busy-waiting OpenMP worker). A fresh process: the pool starts only once."""
    code = ("import torch\n"
            "(torch.randn(4_000_000) * 2).sum()\n"
            "from aimcsim.threads import set_compute_threads\n"
            "set_compute_threads(1)\n"
            "import numba\n"
            "print(torch.get_num_threads(), numba.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert out == ["1", "1"], out
