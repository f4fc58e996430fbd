"""Stochastic weight averaging: the running mean of snapshots and the batch-norm re-measurement."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from aimcsim.training.weight_averaging import WeightAverage, recompute_batchnorm_statistics


def _net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 2))


@settings(max_examples=15, deadline=None)
@given(snapshots=st.integers(1, 6), seed=st.integers(0, 1000))
def test_average_is_the_arithmetic_mean_of_the_snapshots(snapshots, seed):
    nets = [_net(seed + i) for i in range(snapshots)]
    average = WeightAverage()
    for net in nets:
        average.add(net)
    assert average.count == snapshots
    target = _net(seed + 99)
    buffers_before = {k: v.clone() for k, v in target.named_buffers()}
    average.copy_to(target)
    for name, param in target.named_parameters():
        expected = torch.stack([dict(n.named_parameters())[name].detach() for n in nets]).mean(0)
        torch.testing.assert_close(param.detach(), expected, rtol=1e-5, atol=1e-6)
    for name, buffer in target.named_buffers():  # buffers are not averaged
        assert torch.equal(buffer, buffers_before[name])


def test_average_round_trips_through_its_state_and_refuses_misuse():
    average = WeightAverage()
    with pytest.raises(ValueError, match="no snapshot"):
        average.copy_to(_net(0))
    average.add(_net(0))
    average.add(_net(1))
    restored = WeightAverage()
    restored.load_state_dict(average.state_dict())
    restored.add(_net(2))
    average.add(_net(2))
    a, b = _net(5), _net(6)
    average.copy_to(a)
    restored.copy_to(b)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="differ"):
        average.add(nn.Linear(3, 2))


def test_batchnorm_statistics_are_the_average_over_all_batches():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, momentum=0.1)
    model = nn.Sequential(bn).eval()
    data = torch.randn(8, 16, 3, 5, 5) * torch.tensor([1.0, 2.0, 0.5]).view(1, 1, 3, 1, 1) \
        + torch.tensor([0.3, -1.0, 4.0]).view(1, 1, 3, 1, 1)
    seen = recompute_batchnorm_statistics(model, ((x, None) for x in data))
    assert seen == 8 * 16
    flat = data.transpose(0, 2).reshape(3, -1)
    torch.testing.assert_close(bn.running_mean, flat.mean(1), rtol=1e-5, atol=1e-5)
    batch_vars = data.transpose(1, 2).reshape(8, 3, -1).var(2, unbiased=True).mean(0)
    torch.testing.assert_close(bn.running_var, batch_vars, rtol=1e-5, atol=1e-5)
    assert bn.momentum == 0.1 and not model.training  # settings restored
    assert bn.num_batches_tracked == 8


def test_batchnorm_recompute_without_norms_or_batches():
    assert recompute_batchnorm_statistics(nn.Linear(2, 2), [(torch.zeros(1, 2), None)]) == 0
    net = _net(0)
    net[1].running_mean.fill_(0.5)
    with pytest.raises(ValueError, match="no batches"):
        recompute_batchnorm_statistics(net, [])
    assert torch.equal(net[1].running_mean, torch.full((4,), 0.5))  # left as it was
