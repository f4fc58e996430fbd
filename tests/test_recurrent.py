"""Analog LSTM / GRU / RNN: torch's outputs and final states in the ideal limit, the matrices
run on tiles, dropout between layers in training only, gradients, refusals."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import aimcsim
from aimcsim.nn import (AnalogGRU, AnalogLinear, AnalogLSTM, AnalogRNN, HardwareAwareConfig,
                        convert_to_analog)
from aimcsim.tiles import AnalogConfig

PAIRS = {"lstm": (nn.LSTM, AnalogLSTM), "gru": (nn.GRU, AnalogGRU), "rnn": (nn.RNN, AnalogRNN)}


def run_both(kind: str, batched: bool, with_state: bool, seq: int = 4, batch: int = 2,
             **options):
    torch.manual_seed(0)
    digital_cls, analog_cls = PAIRS[kind]
    net = digital_cls(3, 5, **options).eval()
    analog = convert_to_analog(net, AnalogConfig.ideal()).eval()
    assert type(analog) is analog_cls
    aimcsim.program(analog, 0)
    layers = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
    x = torch.randn(seq, batch, 3)
    if options.get("batch_first"):
        x = x.transpose(0, 1)
    hx = None
    if with_state:
        hx = tuple(torch.randn(layers, batch, 5) for _ in range(2 if kind == "lstm" else 1))
        hx = hx if kind == "lstm" else hx[0]
    if not batched:
        x = x[0] if options.get("batch_first") else x[:, 0]
        if hx is not None:
            hx = tuple(h[:, 0] for h in hx) if kind == "lstm" else hx[:, 0]
    with torch.no_grad():
        return net(x, hx), analog(x, hx)


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(sorted(PAIRS)), st.booleans(), st.booleans(), st.booleans(),
       st.integers(1, 2), st.booleans(), st.booleans())
def test_ideal_recurrent_equals_torch(kind, batch_first, bidirectional, bias, num_layers,
                                      batched, with_state):
    ref, out = run_both(kind, batched, with_state, batch_first=batch_first, bias=bias,
                        bidirectional=bidirectional, num_layers=num_layers)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_bidirectional_two_layer_case(kind):
    ref, out = run_both(kind, True, True, seq=5, batch=3, num_layers=2, bidirectional=True,
                        batch_first=True, dropout=0.3)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert out[0].shape == (3, 5, 10)


def test_relu_rnn_and_a_model_holding_a_recurrent_layer():
    torch.manual_seed(0)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(3, 4, nonlinearity="relu", batch_first=True)
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.rnn(x)[0])
    net = Tagger().eval()
    analog = convert_to_analog(net, AnalogConfig.ideal()).eval()
    assert isinstance(analog.rnn, AnalogRNN) and analog.rnn.nonlinearity == "relu"
    assert [n for n, _ in aimcsim.analog_layers(analog)] == ["rnn.ih_l0", "rnn.hh_l0", "out"]
    aimcsim.program(analog, 0)
    x = torch.randn(2, 6, 3)
    with torch.no_grad():
        torch.testing.assert_close(analog(x), net(x), rtol=1e-5, atol=1e-5)


def test_both_matrices_of_every_layer_and_direction_run_on_tiles():
    torch.manual_seed(0)
    analog = convert_to_analog(nn.GRU(3, 4, num_layers=2, bidirectional=True),
                               AnalogConfig()).eval()
    aimcsim.program(analog, 0)
    aimcsim.set_time(analog, 3600.0)
    calls: dict[str, int] = {}
    for name, layer in aimcsim.analog_layers(analog):
        assert isinstance(layer, AnalogLinear) and layer.layer_name == name
        layer.register_forward_hook(
            lambda m, a, o, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
    with torch.no_grad():
        out, h_n = analog(torch.zeros(6, 2, 3))  # zero input and state stay finite
    assert torch.isfinite(out).all() and h_n.shape == (4, 2, 4)
    assert calls == {f"{part}_l{k}{sfx}": (1 if part == "ih" else 6)
                     for k in range(2) for sfx in ("", "_reverse") for part in ("ih", "hh")}


def test_dropout_in_training_only_and_gradients_flow():
    torch.manual_seed(0)
    exact = HardwareAwareConfig(weight_noise=0.0, clip_sigma=None, periphery=False)
    net = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    analog = convert_to_analog(net, AnalogConfig.ideal(), hwa=exact).train()
    x = torch.randn(5, 2, 3, requires_grad=True)
    a, b = analog(x)[0], analog(x)[0]
    assert not torch.equal(a, b)
    a.pow(2).mean().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in analog.parameters())
    aimcsim.program(analog, 0)
    with torch.no_grad():
        torch.testing.assert_close(analog.eval()(x)[0], net.eval()(x)[0], rtol=1e-5,
                                   atol=1e-5)


def test_refusals_are_clear():
    with pytest.raises(ValueError, match="proj_size"):
        convert_to_analog(nn.LSTM(3, 4, proj_size=2))
    analog = convert_to_analog(nn.LSTM(3, 4), AnalogConfig.ideal()).eval()
    aimcsim.program(analog, 0)
    packed = pack_padded_sequence(torch.randn(4, 2, 3), [4, 2])
    with pytest.raises(ValueError, match="PackedSequence"):
        analog(packed)
    with pytest.raises(ValueError, match="expected input"):
        analog(torch.randn(4, 2, 5))
    with pytest.raises(ValueError, match="initial state"):
        analog(torch.randn(4, 2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(ValueError, match="nonlinearity"):
        AnalogRNN(3, 4, nonlinearity="sigmoid")
