"""Guards of the analog layers' forward pass: no silent wrong answer.

- input dtypes: float32 computes as is, float64 is cast to float32 (the tiles compute in
  float32; the output is float32); complex, integer and bool inputs raise a TypeError listing
  the supported dtypes;
- non-finite inputs or biases raise a ValueError naming the layer, and so does an output that
  overflows float32 (a finite but huge input times the weights). The inputs cost nothing on
  the inference path: the Numba DAC already checks them, and when it refuses an input the
  layer checks it again in torch, so a finite input (1e37) is never reported as NaN / inf but
  as too large for the float32 periphery. Every analog forward's output is checked: by the
  per-patch ADC kernel as it converts (Numba convolutions; above a provably safe input scale,
  :func:`aimcsim.tiles.engine.safe_vector_scale`), so such a layer without bias reads its
  output only once; otherwise by one reduction over the output
  (:func:`aimcsim.validation.all_finite`), which also catches NaN inputs on the torch paths;
- weights changed after ``program()`` (an optimizer step, ``load_state_dict`` of other weights,
  ``weight.zero_()``, a new Parameter) raise a RuntimeError in eval mode telling the user to
  call ``aimcsim.program`` again: the tiles hold the old weights. The check is cheap: the
  weight's version counter, storage and identity are compared with those recorded at
  ``program()``; only when they differ are the values compared with a copy kept at
  ``program()`` (so a ``deepcopy``, ``.to()``, ``share_memory()`` or loading identical weights
  does not raise). Training mode (hardware-aware training on the float weights) never checks.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import NoReturn

import torch

from aimcsim.tiles.engine import NonFiniteOutput
from aimcsim.tiles.tile import NotProgrammedError
from aimcsim.validation import all_finite, check_finite

#: dtypes the analog layers compute in directly; float64 is cast to float32.
SUPPORTED_DTYPES = (torch.float32, torch.float64)
_CAST_TO_FLOAT32 = (torch.float64,)


class WeightsChangedError(RuntimeError):
    """An analog layer's weights changed after ``program()``; the tiles hold the old ones."""


@dataclass
class WeightStamp:
    """What ``program()`` saw of the weight Parameter: identity, storage, version and values."""

    param_id: int
    data_ptr: int
    version: int
    values: torch.Tensor

    @classmethod
    def of(cls, weight: torch.Tensor) -> "WeightStamp":
        return cls(id(weight), weight.data_ptr(), weight._version,
                   weight.detach().to("cpu", torch.float32, copy=True))

    def fast_match(self, weight: torch.Tensor) -> bool:
        return (self.param_id == id(weight) and self.data_ptr == weight.data_ptr()
                and self.version == weight._version)

    def __deepcopy__(self, memo) -> "WeightStamp":  # a copied layer re-validates by value
        return WeightStamp(-1, -1, -1, self.values.clone())


def stamp_weights(layer) -> None:
    """Record the weights the tiles were just programmed (or loaded) with."""
    layer._weight_stamp = WeightStamp.of(layer.weight)


def check_weights_unchanged(layer) -> None:
    """Raise :class:`WeightsChangedError` if ``layer.weight`` differs from the programmed one."""
    stamp = getattr(layer, "_weight_stamp", None)
    if stamp is None or stamp.fast_match(layer.weight):
        return
    current = layer.weight.detach().to("cpu", torch.float32)
    if current.shape == stamp.values.shape and torch.equal(current, stamp.values):
        stamp_weights(layer)  # same values, new storage or version: remember the new ones
        return
    raise WeightsChangedError(
        f"{layer.layer_name}: the weights changed after program() (an optimizer step, "
        f"load_state_dict or an in-place edit); the tiles still hold the old ones. Call "
        f"aimcsim.program(model, seed) again to program the new weights (or use train() mode "
        f"for hardware-aware training on the float weights)")


def check_parameters(layer) -> None:
    """Finite weight and bias (at ``program()``)."""
    check_finite(layer.weight.detach(), f"{layer.layer_name}.weight")
    if layer.bias is not None:
        check_finite(layer.bias.detach(), f"{layer.layer_name}.bias")


def check_dtype(layer, x: torch.Tensor) -> torch.Tensor:
    """``x`` in a dtype the layer computes in (float64 cast to float32), else TypeError."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer.layer_name}: input must be a torch.Tensor, got "
                        f"{type(x).__name__}")
    if x.dtype in _CAST_TO_FLOAT32:
        return x.to(torch.float32)
    if x.dtype.is_complex or not x.dtype.is_floating_point:
        supported = ", ".join(map(str, SUPPORTED_DTYPES))
        raise TypeError(f"{layer.layer_name}: input dtype {x.dtype} is not supported; analog "
                        f"layers take floating-point inputs ({supported}; float64 is cast to "
                        f"float32)")
    return x


def check_conv_shape(layer, x: torch.Tensor) -> None:
    """A convolution's input: the right number of dims and channels, each spatial size at least
    1, covering the (dilated) kernel after padding, and larger than a reflect padding."""
    dims, shape = layer._expected_dims, tuple(x.shape)
    if x.dim() != dims or x.shape[1] != layer.in_channels:
        raise ValueError(f"{layer.layer_name}: expected input of {dims} dims with "
                         f"{layer.in_channels} channels, got {shape}")
    for axis, size in enumerate(shape[2:]):
        span = layer.dilation[axis] * (layer.kernel_size[axis] - 1) + 1
        if layer.padding == "same":  # the larger side of torch's "same" padding
            pad = (span - 1) - (span - 1) // 2
        else:
            pad = 0 if layer.padding == "valid" else layer.padding[axis]
        too_small = size < 1 or (layer.padding != "same" and size + 2 * pad < span)
        if layer.padding_mode == "reflect":
            too_small = too_small or pad >= size
        elif layer.padding_mode == "circular":
            too_small = too_small or pad > size
        if too_small:
            raise ValueError(f"{layer.layer_name}: input {shape} is too small along spatial "
                             f"axis {axis} for kernel {tuple(layer.kernel_size)}, dilation "
                             f"{tuple(layer.dilation)}, padding {layer.padding!r} "
                             f"({layer.padding_mode})")


def check_forward(layer, x: torch.Tensor) -> torch.Tensor:
    """Every check of an analog forward pass; returns the input to compute with.

    Always the dtype and a convolution's input shape (digital-eval mode stops there); then a
    finite bias; in eval mode also programmed tiles (:class:`NotProgrammedError`) and
    unchanged weights. (The input's finiteness is checked by the kernels and by
    :func:`check_output`, at no extra cost on the inference path.)
    """
    x = check_dtype(layer, x)
    if hasattr(layer, "_expected_dims"):
        check_conv_shape(layer, x)
    if layer.digital_eval and not layer.training:
        return x
    if layer.bias is not None:
        check_finite(layer.bias.detach(), f"{layer.layer_name}.bias")
    if not layer.training:
        if not layer.is_programmed:
            raise NotProgrammedError(f"{layer.layer_name}: read before program(); call "
                                     f"aimcsim.program(model, seed) or layer.program(seed)")
        check_weights_unchanged(layer)
    return x


def _refuse_non_finite_input(layer, x: torch.Tensor) -> None:
    check_finite(x.detach(), f"{layer.layer_name} input")


def check_output(layer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``y`` if finite, else a ValueError naming the layer: its input held NaN / inf, or a
    finite input and finite weights gave an output beyond float32 (e.g. |x| ~ 1e37 times
    |w| ~ 1e3). One reduction over the output; never a silent inf or NaN."""
    if all_finite(y):
        return y
    refuse_non_finite_output(layer, x)


def refuse_non_finite_output(layer, x: torch.Tensor) -> NoReturn:
    """The ValueError for a layer whose output is not finite, naming the cause: NaN / inf in
    its input or its weights, or a finite input too large for float32."""
    _refuse_non_finite_input(layer, x)
    check_finite(layer.weight.detach(), f"{layer.layer_name}.weight")  # (training diverged)
    peak = float(x.detach().abs().max()) if x.numel() else 0.0
    raise ValueError(f"{layer.layer_name} input: the output overflows float32 (inputs up to "
                     f"|x| = {peak:.3g}, weights up to "
                     f"{float(layer.weight.detach().abs().max()):.3g}); scale the input down")


@contextlib.contextmanager
def periphery_overflow(layer, x: torch.Tensor):
    """The Numba DAC refuses inputs whose per-vector sum is not finite ("input contains NaN or
    inf values"). Re-check such an input in torch: it holds NaN / inf (ValueError naming the
    layer), or it is finite but so large (~1e37 and up) that the float32 sum overflowed, which
    is reported as such, never as NaN. A :class:`~aimcsim.tiles.engine.NonFiniteOutput` of
    the per-patch ADC becomes :func:`refuse_non_finite_output`'s error."""
    try:
        yield
    except NonFiniteOutput:  # found by the ADC kernel as it converted (no second read)
        try:
            refuse_non_finite_output(layer, x)
        except ValueError as err:
            raise err from None  # the layer's error alone, not the kernel's count
    except ValueError as err:
        if "NaN or inf" not in str(err) or "input" not in str(err):
            raise
        _refuse_non_finite_input(layer, x)
        peak = float(x.detach().abs().max()) if x.numel() else 0.0
        raise ValueError(f"{layer.layer_name} input: finite values up to |x| = {peak:.3g} are "
                         f"too large for the float32 periphery (a sum over an input vector "
                         f"overflows float32); scale the input down") from None
