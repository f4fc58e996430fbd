"""Analog multi-head attention: torch's outputs in the ideal limit over shapes and options, the
projections run on tiles, transformers never take torch's fused path, state_dict and errors."""
from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import aimcsim
from aimcsim.nn import AnalogLinear, AnalogMultiheadAttention, convert_to_analog
from aimcsim.tiles import AnalogConfig


def converted(module: nn.Module, config: AnalogConfig | None = None, seed: int = 0):
    analog = convert_to_analog(module, config or AnalogConfig.ideal())
    aimcsim.program(analog, seed)
    return analog


@st.composite
def attention_cases(draw):
    heads, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    embed = heads * head_dim
    kdim = draw(st.sampled_from([None, embed, 5]))
    vdim = draw(st.sampled_from([None, embed, 3])) if kdim is not None else None
    options = {name: draw(st.booleans()) for name in
               ("batch_first", "bias", "add_bias_kv", "add_zero_attn")}
    call = {"need_weights": draw(st.booleans()), "average_attn_weights": draw(st.booleans())}
    batched = draw(st.booleans())
    n, tgt, src = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    masks = draw(st.sampled_from(["none", "bool2d", "float3d", "padding", "both"]))
    return heads, embed, kdim, vdim, options, call, batched, n, tgt, src, masks


def make_inputs(embed, kdim, vdim, batch_first, batched, n, tgt, src, gen):
    def seq(length, width):
        if not batched:
            return torch.randn(length, width, generator=gen)
        shape = (n, length, width) if batch_first else (length, n, width)
        return torch.randn(*shape, generator=gen)
    return seq(tgt, embed), seq(src, kdim or embed), seq(src, vdim or embed)


@settings(max_examples=20, deadline=None)
@given(attention_cases())
def test_ideal_attention_equals_torch(case):
    heads, embed, kdim, vdim, options, call, batched, n, tgt, src, masks = case
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(embed, heads, kdim=kdim, vdim=vdim, **options).eval()
    if options["add_bias_kv"]:
        nn.init.normal_(mha.bias_k), nn.init.normal_(mha.bias_v)
    analog = converted(mha).eval()
    assert isinstance(analog, AnalogMultiheadAttention)
    gen = torch.Generator().manual_seed(1)
    q, k, v = make_inputs(embed, kdim, vdim, options["batch_first"], batched, n, tgt, src, gen)
    n_eff = n if batched else 1
    kwargs = dict(call)
    if masks in ("bool2d", "both"):
        mask = torch.rand(tgt, src, generator=gen) > 0.6
        mask[:, 0] = False  # no row fully masked (torch gives NaN there)
        kwargs["attn_mask"] = mask
    if masks == "float3d":
        kwargs["attn_mask"] = torch.randn(n_eff * heads, tgt, src, generator=gen)
    if masks in ("padding", "both"):
        pad = torch.rand(n_eff, src, generator=gen) > 0.5
        pad[:, 0] = False
        kwargs["key_padding_mask"] = pad if batched else pad[0]
    with torch.no_grad():
        ref_out, ref_w = mha(q, k, v, **kwargs)
        out, w = analog(q, k, v, **kwargs)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    if call["need_weights"]:
        torch.testing.assert_close(w, ref_w, rtol=1e-5, atol=1e-5)
    else:
        assert w is None and ref_w is None


def test_packed_projection_is_split_and_every_projection_runs_on_tiles():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    analog = converted(mha).eval()
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    torch.testing.assert_close(analog.k_proj.weight, w_k)
    torch.testing.assert_close(analog.v_proj.bias, mha.in_proj_bias.chunk(3)[2])
    names = [name for name, _ in aimcsim.analog_layers(analog)]
    assert names == ["q_proj", "k_proj", "v_proj", "out_proj"]
    ran = []
    for name, layer in aimcsim.analog_layers(analog):
        assert isinstance(layer, AnalogLinear) and layer.is_programmed
        layer.register_forward_hook(lambda m, a, o, name=name: ran.append(name))
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        analog(x, x, x)
    assert ran == names
    keys = set(analog.state_dict())
    assert {"q_proj.weight", "q_proj.bias", "out_proj.weight", "v_proj._extra_state"} <= keys


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_converted_transformers_never_take_the_fused_path():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2).eval()
    decoder = nn.TransformerDecoderLayer(16, 2, 32, dropout=0.0, batch_first=True).eval()
    noisy = AnalogConfig.ideal().replace(**{"periphery.out_noise": 2.0})
    x, memory = torch.randn(2, 5, 16), torch.randn(2, 4, 16)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[1, 3:] = True
    with torch.no_grad():
        ref = encoder(x, src_key_padding_mask=padding)
        for ref_module, args, kwargs in ((encoder, (x,), {"src_key_padding_mask": padding}),
                                         (encoder.layers[0], (x,), {}),
                                         (decoder, (x, memory), {})):
            noisy_out = converted(ref_module, noisy).eval()(*args, **kwargs)
            assert (noisy_out - ref_module(*args, **kwargs)).abs().max() > 0.1
        ideal = converted(encoder).eval()
        assert ideal.use_nested_tensor is False
        out = ideal(x, src_key_padding_mask=padding)
    torch.testing.assert_close(out[~padding], ref[~padding], rtol=1e-5, atol=1e-5)


def test_exclude_keeps_attention_digital_without_warning_and_errors_are_clear():
    mha = nn.MultiheadAttention(4, 2)
    model = nn.Sequential()
    model.add_module("attn", mha)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = convert_to_analog(model, exclude=["attn"])
        by_type = convert_to_analog(model, exclude=[nn.MultiheadAttention])
    for m in (kept, by_type):  # out_proj is never converted on its own (torch never calls it)
        assert type(m.attn) is nn.MultiheadAttention and type(m.attn.out_proj) is not \
            AnalogLinear
    with pytest.warns(UserWarning, match=r"attn \(MultiheadAttention\)"):
        convert_to_analog(model, mapping={nn.Linear: AnalogLinear})
    analog = converted(mha).eval()
    with pytest.raises(ValueError, match="attn_mask must be"):
        analog(torch.randn(3, 1, 4), torch.randn(2, 1, 4), torch.randn(2, 1, 4),
               attn_mask=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="is_causal"):
        analog(torch.randn(3, 1, 4), torch.randn(3, 1, 4), torch.randn(3, 1, 4),
               is_causal=True)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        AnalogMultiheadAttention(5, 2)


def test_state_dict_round_trip_of_a_converted_transformer_is_bit_identical():
    torch.manual_seed(0)
    model = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    analog = converted(model, AnalogConfig()).eval()
    aimcsim.set_time(analog, 3600.0)
    state = analog.state_dict()
    fresh = convert_to_analog(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)).eval()
    fresh.load_state_dict(state)
    x = torch.randn(4, 2, 8)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), analog(x), rtol=0, atol=0)


@pytest.mark.parametrize("kdim", [None, 5])
def test_hardware_aware_weights_load_into_the_digital_model(tmp_path, kdim):
    """A converted model's model.pt (q, k, v apart) loads into its digital twin (torch's packed
    in_proj_weight, or q/k/v_proj_weight with kdim) with every weight in place: the digital
    model then computes what the analog one computes with noise off."""
    from aimcsim.training.hwa import load_weights

    torch.manual_seed(1)
    digital = nn.MultiheadAttention(6, 2, kdim=kdim, vdim=kdim, batch_first=True)
    analog = convert_to_analog(digital, AnalogConfig.ideal())
    with torch.no_grad():  # weights the digital twin has not seen (as after training)
        for p in analog.parameters():
            p.add_(0.1 * torch.randn_like(p))
    torch.save(analog.state_dict(), tmp_path / "model.pt")
    fresh = load_weights(nn.MultiheadAttention(6, 2, kdim=kdim, vdim=kdim, batch_first=True),
                         tmp_path / "model.pt").eval()
    aimcsim.program(analog, 0)
    analog.eval()
    q = torch.randn(2, 3, 6)
    kv = torch.randn(2, 4, kdim or 6)
    with torch.no_grad():
        torch.testing.assert_close(fresh(q, kv, kv)[0], analog(q, kv, kv)[0],
                                   rtol=1e-5, atol=1e-5)
