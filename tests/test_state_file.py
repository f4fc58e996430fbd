"""aimcsim.training.state_file: compressed training states, read back exactly."""
from __future__ import annotations

import io

import pytest
import torch

from aimcsim.models import build_model
from aimcsim.training.state_file import TORCH_SIGNATURE, load_state, save_compressed_state


def _state() -> dict:
    torch.manual_seed(0)
    model = build_model("t500")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3,
            "history": '{"epochs": []}', "torch_rng": torch.get_rng_state()}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_a_compressed_state_reads_back_bit_for_bit_and_is_smaller(tmp_path):
    state = _state()
    plain = io.BytesIO()
    torch.save(state, plain)
    save_compressed_state(state, tmp_path / "checkpoint.pt")
    written = (tmp_path / "checkpoint.pt").read_bytes()
    assert not written.startswith(TORCH_SIGNATURE)
    assert len(written) < 0.95 * plain.tell()  # weights and momentum of T500: about 0.88
    assert _equal(load_state(tmp_path / "checkpoint.pt"), state)
    assert not list(tmp_path.glob("*.tmp"))


def test_plain_torch_files_still_load_and_other_files_are_refused(tmp_path):
    state = _state()
    torch.save(state, tmp_path / "old.pt")  # a checkpoint written before compression
    assert _equal(load_state(tmp_path / "old.pt"), state)
    (tmp_path / "junk.pt").write_bytes(b"not a state")
    with pytest.raises(ValueError, match="neither a torch.save file"):
        load_state(tmp_path / "junk.pt")
