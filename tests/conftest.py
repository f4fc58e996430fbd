"""Test-suite settings: hypothesis runs derandomized by default, so CI is reproducible
(``HYPOTHESIS_PROFILE=explore`` draws fresh random examples each run, to hunt for new ones)."""
import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a test module (``pytestmark = usefixtures(...)``): the
    machine's other jobs make a second thread spin, not help."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load_example(name: str):
    """Import ``examples/<name>.py`` as a module (the examples are scripts, not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def self_labelled_tiny_net():
    """A tiny conv + linear network and 64 random images labelled with its own answers, so its
    digital accuracy is exactly 100%: ``(net, CifarSplit)``."""
    import numpy as np
    import torch
    from torch import nn

    from aimcsim.data import CifarSplit, iterate_batches

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 8 * 8, 10)).eval()
    images = np.random.default_rng(0).integers(0, 256, (64, 3, 32, 32), dtype=np.uint8)
    split = CifarSplit(images, np.zeros(64, dtype=np.int64))
    with torch.no_grad():
        labels = torch.cat([net(x).argmax(1) for x, _ in iterate_batches(split, 32)])
    return net, CifarSplit(images, labels.numpy().astype(np.int64))
