"""LSTM, GRU and Elman RNN whose input and hidden matrices run on crossbar tiles.

Per layer l and direction (``_reverse`` for the backward one) the module holds two
:class:`~aimcsim.nn.layers.AnalogLinear` layers, ``ih_l{l}`` (W_ih, b_ih) and ``hh_l{l}``
(W_hh, b_hh), stacked by gate in torch's order. Gates and state updates are digital (torch).
With g_x = W_ih x_t + b_ih (one analog pass over the whole sequence) and
g_h = W_hh h_{t-1} + b_hh (one analog pass per step):

LSTM (gates i, f, g, o)::

    i, f, g, o = split(g_x + g_h);  c_t = s(f) c_{t-1} + s(i) tanh(g);  h_t = s(o) tanh(c_t)

GRU (gates r, z, n)::

    r = s(g_x,r + g_h,r);  z = s(g_x,z + g_h,z);  n = tanh(g_x,n + r g_h,n)
    h_t = (1 - z) n + z h_{t-1}

RNN::

    h_t = tanh(g_x + g_h)   (or relu)

with s the logistic sigmoid. Layer l > 0 reads the concatenated outputs of both directions of
layer l - 1, with dropout in between in training mode, exactly as torch's ``nn.LSTM``,
``nn.GRU`` and ``nn.RNN``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from aimcsim.nn.composite import analog_linear, load_linear_
from aimcsim.nn.layers import AnalogLinear, HardwareAwareConfig
from aimcsim.tiles.config import AnalogConfig

State = tuple[torch.Tensor, ...]


class _AnalogRecurrent(nn.Module, ABC):
    """Shared stacking, directions, sequence loop and state handling; subclasses set
    ``gates`` and ``state_size`` (1: h, 2: h and c) and implement :meth:`_cell`."""

    gates = 1
    state_size = 1
    analog_kind = "recurrent"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, config: AnalogConfig | None = None,
                 hwa: HardwareAwareConfig | None = None, device=None) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"input_size, hidden_size and num_layers must be >= 1, got "
                             f"{input_size}, {hidden_size}, {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes():
                self.add_module(f"ih_l{layer}{suffix}", analog_linear(
                    width, self.gates * hidden_size, bias, config, hwa, device))
                self.add_module(f"hh_l{layer}{suffix}", analog_linear(
                    hidden_size, self.gates * hidden_size, bias, config, hwa, device))

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def _pair(self, layer: int, suffix: str) -> tuple[AnalogLinear, AnalogLinear]:
        return getattr(self, f"ih_l{layer}{suffix}"), getattr(self, f"hh_l{layer}{suffix}")

    @classmethod
    def from_digital(cls, module: nn.RNNBase, config: AnalogConfig | None = None,
                     hwa: HardwareAwareConfig | None = None, **extra) -> "_AnalogRecurrent":
        """The analog twin of a torch ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with its weights
        (``weight_ih_l0`` -> ``ih_l0.weight``, ...)."""
        if getattr(module, "proj_size", 0):
            raise ValueError("LSTM with proj_size > 0 has no analog counterpart; exclude it "
                             "(exclude=[name]) to keep it digital")
        layer = cls(module.input_size, module.hidden_size, module.num_layers, module.bias,
                    module.batch_first, module.dropout, module.bidirectional, config=config,
                    hwa=hwa, device=module.weight_ih_l0.device, **extra)
        for k in range(module.num_layers):
            for suffix in layer._suffixes():
                ih, hh = layer._pair(k, suffix)
                for part, proj in (("ih", ih), ("hh", hh)):
                    load_linear_(proj, getattr(module, f"weight_{part}_l{k}{suffix}"),
                                 getattr(module, f"bias_{part}_l{k}{suffix}", None))
        layer.train(module.training)
        return layer

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, batch_first={self.batch_first}, dropout={self.dropout}, "
                f"bidirectional={self.bidirectional}")

    # ------------------------------------------------------------------ forward
    def forward(self, input: torch.Tensor, hx=None):
        """Same arguments and returns as torch: ``input`` (L, N, H_in), or (N, L, H_in) with
        ``batch_first``, or unbatched (L, H_in); ``hx`` the initial state(s) of shape
        (num_layers * num_directions, N, H) (zeros when None). Returns ``(output, h_n)``, for
        the LSTM ``(output, (h_n, c_n))``."""
        if isinstance(input, PackedSequence):
            raise ValueError(f"{type(self).__name__} does not take a PackedSequence; pad the "
                             f"batch (torch.nn.utils.rnn.pad_packed_sequence) and pass the "
                             f"padded tensor")
        if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input (L, N, {self.input_size}) "
                             f"or unbatched (L, {self.input_size}), got {tuple(input.shape)}")
        batched = input.dim() == 3
        x = input if not batched else (input.transpose(0, 1) if self.batch_first else input)
        x = x if batched else x.unsqueeze(1)  # (L, N, H_in)
        states = self._initial_states(hx, x, batched)
        finals: list[State] = []
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(self._suffixes()):
                index = layer * self.num_directions + d
                y, state = self._run_direction(x, *self._pair(layer, suffix),
                                               tuple(s[index] for s in states), reverse=d == 1)
                outputs.append(y)
                finals.append(state)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        output = x if not batched else (x.transpose(0, 1) if self.batch_first else x)
        final = tuple(torch.stack([f[i] for f in finals]) for i in range(self.state_size))
        if not batched:
            output = output.squeeze(1)
            final = tuple(s.squeeze(1) for s in final)
        return output, (final if self.state_size > 1 else final[0])

    def _initial_states(self, hx, x: torch.Tensor, batched: bool) -> State:
        shape = (self.num_layers * self.num_directions, x.shape[1], self.hidden_size)
        if hx is None:
            return tuple(x.new_zeros(shape) for _ in range(self.state_size))
        hx = (hx,) if isinstance(hx, torch.Tensor) else tuple(hx)
        if len(hx) != self.state_size:
            raise ValueError(f"{type(self).__name__} expects {self.state_size} initial state "
                             f"tensor(s), got {len(hx)}")
        hx = hx if batched else tuple(h.unsqueeze(1) for h in hx)
        for h in hx:
            if tuple(h.shape) != shape:
                raise ValueError(f"initial state must have shape {shape} "
                                 f"(unbatched: without N), got {tuple(h.shape)}")
        return hx

    def _run_direction(self, x: torch.Tensor, ih: AnalogLinear, hh: AnalogLinear,
                       state: State, reverse: bool) -> tuple[torch.Tensor, State]:
        """One layer, one direction over the sequence x (L, N, H_in) -> (L, N, H)."""
        gx = ih(x)  # the input matrix over all steps at once
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        outputs: list[torch.Tensor | None] = [None] * x.shape[0]
        for t in steps:
            state = self._cell(gx[t], hh(state[0]), state)
            outputs[t] = state[0]
        return torch.stack(outputs), state

    @abstractmethod
    def _cell(self, gx: torch.Tensor, gh: torch.Tensor, state: State) -> State:
        """One time step: the gates from the input and hidden products, the new state
        (each subclass: LSTM, GRU, RNN)."""


class AnalogLSTM(_AnalogRecurrent):
    """``nn.LSTM`` (no ``proj_size``) with W_ih and W_hh on tiles (module docstring)."""

    gates = 4
    state_size = 2
    analog_kind = "lstm"

    def _cell(self, gx, gh, state):
        i, f, g, o = (gx + gh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class AnalogGRU(_AnalogRecurrent):
    """``nn.GRU`` with W_ih and W_hh on tiles (module docstring)."""

    gates = 3
    analog_kind = "gru"

    def _cell(self, gx, gh, state):
        xr, xz, xn = gx.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return ((1 - z) * n + z * state[0],)


class AnalogRNN(_AnalogRecurrent):
    """``nn.RNN`` (tanh or relu) with W_ih and W_hh on tiles (module docstring)."""

    analog_kind = "rnn"

    def __init__(self, *args, nonlinearity: str = "tanh", **kwargs) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(*args, **kwargs)
        self.nonlinearity = nonlinearity

    @classmethod
    def from_digital(cls, module, config=None, hwa=None, **extra):
        return super().from_digital(module, config, hwa, nonlinearity=module.nonlinearity)

    def _cell(self, gx, gh, state):
        return ((torch.tanh if self.nonlinearity == "tanh" else torch.relu)(gx + gh),)
