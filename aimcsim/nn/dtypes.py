"""Input dtypes of the analog layers: tiles and periphery compute in float32.

float32 inputs pass unchanged. float16, bfloat16 and float64 inputs are cast to float32 on the
way in and the output is cast back to the input's dtype, on every path (programmed tiles,
hardware-aware training, digital evaluation), so a half-precision network sees half-precision
activations while the crossbar arithmetic keeps its float32 model (the DAC / ADC resolution
is far below either precision). Any other dtype is refused with a TypeError.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch

#: dtypes computed in float32 and returned in their own dtype.
CAST_DTYPES = (torch.float16, torch.bfloat16, torch.float64)
SUPPORTED_DTYPES = (torch.float32,) + CAST_DTYPES


def as_float32(x: torch.Tensor, layer_name: str) -> tuple[torch.Tensor, torch.dtype | None]:
    """``(x in float32, original dtype)`` for float16 / bfloat16 / float64, ``(x, None)`` for
    float32.

    Raises:
        TypeError: for any other dtype (integer, complex, ...), naming the layer and the
            supported dtypes.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer_name}: expected a torch.Tensor input, got {type(x).__name__}")
    if x.dtype in CAST_DTYPES:
        return x.float(), x.dtype
    if x.dtype not in SUPPORTED_DTYPES:
        names = ", ".join(str(d).replace("torch.", "") for d in SUPPORTED_DTYPES)
        raise TypeError(f"{layer_name}: input dtype {str(x.dtype).replace('torch.', '')} is "
                        f"not supported; analog layers take {names} (computed in float32 and "
                        f"returned in the input's dtype)")
    return x, None


def computes_in_float32(forward: Callable) -> Callable:
    """Decorate a layer's ``forward(self, x)``: the input runs in float32 and the output
    returns in the input's dtype (see :func:`as_float32`)."""
    @functools.wraps(forward)
    def wrapper(self, x, *args, **kwargs):
        x32, dtype = as_float32(x, self.layer_name)
        y = forward(self, x32, *args, **kwargs)
        return y if dtype is None else y.to(dtype)
    return wrapper
