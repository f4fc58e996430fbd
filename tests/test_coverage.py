"""Honest coverage: summary lists every layer with weights (analog or digital) with parameters
and MACs, the conversion warning names the digital ones once, and half-precision inputs."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import aimcsim
from aimcsim.nn import AnalogLinear, convert_to_analog
from aimcsim.nn.dtypes import SUPPORTED_DTYPES
from aimcsim.tiles import AnalogConfig


class Mixed(nn.Module):
    """Embedding -> attention -> LSTM -> Linear, with a Conv3d and a custom matrix on the side."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.lstm = nn.LSTM(8, 6, batch_first=True)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 3)
        self.vol = nn.Conv3d(1, 2, 3)
        self.mix = nn.Parameter(torch.randn(3, 3))

    def forward(self, tokens):
        x = self.emb(tokens)
        x = self.attn(x, x, x, need_weights=False)[0]
        x = self.norm(self.lstm(x)[0])
        return self.head(x) @ self.mix


def rows(text: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in text.splitlines()[2:-2]}


def test_summary_lists_every_layer_with_weights_and_the_mac_share():
    torch.manual_seed(0)
    with pytest.warns(UserWarning) as record:
        analog = convert_to_analog(Mixed(), exclude=["head"])
    assert len(record) == 1
    message = str(record[0].message)
    assert "emb (Embedding)" in message and "vol (Conv3d)" in message
    assert "<root> (Mixed)" in message and "head" not in message and "norm" not in message
    tokens = torch.randint(0, 10, (2, 5))
    table = rows(aimcsim.summary(analog, tokens))
    assert table["attn.q_proj"][1:3] == ["linear", "analog"]
    assert table["attn"][1:3] == ["attention", "digital"]
    assert table["head"][2] == "digital" and table["vol"][2] == "digital"
    assert table["emb"][2] == "digital" and "norm" not in table
    tok = 2 * 5
    assert table["attn.q_proj"][5] == f"{tok * 8 * 8:,}"
    assert table["lstm.hh_l0"][5] == f"{tok * 6 * 24:,}"  # one call per step
    assert table["head"][5] == f"{tok * 6 * 3:,}" and table["emb"][5] == "0"
    assert table["attn"][5] == f"{2 * 2 * 5 * 5 * 8:,}"
    text = aimcsim.summary(analog, tokens)
    on = 4 * tok * 64 + tok * 8 * 24 + tok * 6 * 24
    total = on + tok * 18 + 2 * 2 * 5 * 5 * 8
    assert f"MACs on tiles: {on:,} of {total:,}" in text
    assert "<root>" in text  # the custom matrix
    no_input = aimcsim.summary(analog)
    assert "64/token" in rows(no_input)["attn.q_proj"][5] and rows(no_input)["vol"][5] == "-"
    assert "pass example_input" in no_input
    digital_text = aimcsim.summary(Mixed(), tokens)
    assert f"of {total:,} (0.0%)" in digital_text  # torch's attention counts the same MACs


def test_summary_example_pass_leaves_the_model_untouched():
    model = convert_to_analog(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                                            nn.Flatten(), nn.Linear(4 * 4 * 4, 2)))
    model.train()
    before = model[1].running_mean.clone()
    text = aimcsim.summary(model, torch.randn(2, 3, 6, 6))  # not programmed: runs digital
    assert model.training and model[0].training
    torch.testing.assert_close(model[1].running_mean, before)
    assert f"{2 * 16 * 4 * 27:,}" in rows(text)["0"][5]
    assert "100.0%" in text


def test_exclude_by_name_or_type_silences_the_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        convert_to_analog(nn.Sequential(nn.Embedding(4, 2), nn.Linear(2, 2)), exclude=["0"])
        convert_to_analog(nn.Sequential(nn.Embedding(4, 2), nn.Linear(2, 2)),
                          exclude=[nn.Embedding])
        convert_to_analog(nn.Sequential(nn.LayerNorm(2), nn.BatchNorm1d(2), nn.Linear(2, 2)))
        convert_to_analog(convert_to_analog(nn.Linear(2, 2)))  # already analog: nothing left
        convert_to_analog(convert_to_analog(nn.LSTM(2, 2)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_and_double_inputs_are_computed_in_float32_on_every_path(dtype):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(12, 4))
    analog = convert_to_analog(net, AnalogConfig.ideal()).eval()
    aimcsim.program(analog, 0)
    x = torch.randn(2, 2, 6)
    ref = net(x)
    tol = {"rtol": 2e-2, "atol": 2e-2} if dtype != torch.float64 else {}
    with torch.no_grad():
        out = analog(x.to(dtype))
        with aimcsim.digital(analog):
            digital_out = analog(x.to(dtype))
    assert out.dtype == dtype and digital_out.dtype == dtype
    torch.testing.assert_close(out.float(), ref, **tol)
    torch.testing.assert_close(digital_out.float(), ref, **tol)
    analog.train()
    xh = x.to(dtype).requires_grad_()
    y = analog(xh)
    y.float().sum().backward()
    assert y.dtype == dtype and xh.grad.dtype == dtype


def test_other_dtypes_are_refused_naming_the_layer_and_the_supported_ones():
    layer = convert_to_analog(nn.Linear(3, 2))
    layer.layer_name = "fc"
    for mode in (layer.train, layer.eval):
        mode()
        with pytest.raises(TypeError, match="fc: input dtype int64 .*float32, float16"):
            layer(torch.ones(1, 3, dtype=torch.int64))
    assert torch.float32 in SUPPORTED_DTYPES and isinstance(layer, AnalogLinear)
