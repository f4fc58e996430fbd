"""Analog Linear / Conv1d / Conv2d layers whose weights live on crossbar tiles.

Each layer subclasses its torch counterpart (same parameters, same ``state_dict`` keys, so
``isinstance(layer, nn.Conv2d)`` still holds) and adds:

- ``program(seed)``: cut the weight into tiles (:mod:`aimcsim.nn.plan`) and program them;
- ``set_time(t)``: read all tiles at t seconds after programming (drift, read noise, GDC);
- a forward pass through the tiles. On the CPU in inference it runs the fused Numba periphery
  around the native GEMM / convolution (no unfolding). In training mode (hardware-aware
  training) and on other devices it runs :func:`aimcsim.nn.functional.torch_analog_pass`,
  differentiable with straight-through quantisers, on the float weights with injected noise
  (training) or on the programmed weights (inference).

Bias and everything outside the layer stay digital.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aimcsim.kernels.rng import seed_from
from aimcsim.nn.functional import torch_analog_pass
from aimcsim.nn.guards import (check_dtype, check_forward, check_output, check_parameters,
                                periphery_overflow, stamp_weights)
from aimcsim.nn.plan import RowBlock, plan_tiles, slot_to_conv_weight, slot_weights
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.engine import SaturationStats, analog_pass
from aimcsim.tiles.tile import AnalogTile, NotProgrammedError
from aimcsim.validation import check_bool, check_float, check_int, check_seed, check_time


@dataclass
class HardwareAwareConfig:
    """Noise model of hardware-aware training (physics.md section 7), applied per mini-batch in
    the training-mode forward pass.

    Attributes:
        weight_noise: std of additive Gaussian weight noise relative to the tile's max|W|
            (0.02-0.08 is the useful range; above 0.08 networks stop reaching float accuracy;
            accepted: 0 to 10).
        clip_sigma: weights are clipped to +-clip_sigma x std(W) of the layer (None: off;
            accepted: > 0 and <= 1000).
        periphery: run DAC/ADC quantisation, output noise and bound management of the
            layer's AnalogConfig in the training forward pass.
    """

    weight_noise: float = 0.03
    clip_sigma: float | None = 2.5
    periphery: bool = True

    def __post_init__(self) -> None:
        self.weight_noise = check_float(self.weight_noise, "weight_noise", 0, 10)
        self.clip_sigma = check_float(self.clip_sigma, "clip_sigma", 0, 1000, low_open=True,
                                      allow_none=True)
        self.periphery = check_bool(self.periphery, "periphery")


class AnalogLayerMixin:
    """Tiles, programming, time and the analog forward shared by every analog layer.

    Subclasses set ``_kernel`` (the spatial kernel size, () for linear) and implement
    ``_gemm_torch(x, weight, groups)`` and ``_prepare_input(x)``.
    """

    analog_kind = "analog"
    _kernel: tuple[int, ...] = ()

    def _init_analog(self, config: AnalogConfig | None,
                     hwa: HardwareAwareConfig | None) -> None:
        for value, kind, name in ((config, AnalogConfig, "config"),
                                  (hwa, HardwareAwareConfig, "hwa")):
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"{name} must be an instance of {kind.__name__} or None, got "
                                 f"{type(value).__name__}")
        self.analog_config = config if config is not None else AnalogConfig()
        self.config_explicit = config is not None
        self.hwa = hwa if hwa is not None else HardwareAwareConfig()
        self.layer_name = type(self).__name__
        self.digital_eval = False
        self._tiles: list[list[AnalogTile]] | None = None
        self._blocks: list[RowBlock] = self._make_plan()
        self._cache: list[dict] | None = None
        self._seed_entropy: int | None = None
        self.stats = SaturationStats()

    # ------------------------------------------------------------------ plan / tiles
    def _make_plan(self) -> list[RowBlock]:
        mapping = self.analog_config.mapping
        groups = getattr(self, "groups", 1)
        area = int(np.prod(self._kernel)) if self._kernel else 1
        in_ch = self.weight.shape[1] * groups
        try:
            return plan_tiles(in_ch, self.weight.shape[0], area, groups, mapping.rows,
                              mapping.cols)
        except ValueError as err:
            raise ValueError(f"{getattr(self, 'layer_name', type(self).__name__)}: {err}") from None

    @property
    def tiles(self) -> list[AnalogTile]:
        """All tiles of the layer (empty before programming)."""
        return [t for row in (self._tiles or []) for t in row]

    @property
    def n_tiles(self) -> int:
        return sum(len(b.slots) for b in self._blocks)

    @property
    def is_programmed(self) -> bool:
        return self._tiles is not None

    @property
    def time(self) -> float | None:
        """Seconds since programming at which the tiles were last read."""
        return self.tiles[0].t if self._tiles else None

    def tile_utilisation(self) -> float:
        """Used cells / cells of the allocated tiles."""
        mapping = self.analog_config.mapping
        return self.weight.numel() / (self.n_tiles * mapping.rows * mapping.cols)

    def program(self, seed: int | np.random.SeedSequence = 0) -> None:
        """Program the layer's current weights onto its tiles (one sample of programming noise)
        and read them at t = 0."""
        seed = check_seed(seed)
        check_parameters(self)
        weight = self.weight.detach().to("cpu", torch.float32).numpy()
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self._seed_entropy = seq.entropy if isinstance(seq.entropy, int) else None
        self._seed_spawn_key = tuple(seq.spawn_key)
        self._blocks = self._make_plan()
        children = iter(seq.spawn(self.n_tiles))
        groups = getattr(self, "groups", 1)
        w = weight.reshape(weight.shape[0], weight.shape[1], -1)
        self._tiles = [[AnalogTile(slot_weights(w, slot, groups), self.analog_config)
                        for slot in block.slots] for block in self._blocks]
        for tile in self.tiles:
            tile.program(next(children))
        self.stats = SaturationStats()
        self._refresh_cache()
        stamp_weights(self)

    def set_time(self, t: float, seed: int | None = None) -> None:
        """Read every tile at ``t`` >= 0 seconds after programming (no re-programming)."""
        if self._tiles is None:
            raise NotProgrammedError(f"{self.layer_name}: set_time() before program()")
        t = check_time(t)
        seed = check_int(seed, "seed", 0, allow_none=True)
        for i, tile in enumerate(self.tiles):
            tile.set_time(t, None if seed is None else int(seed) * 7919 + i)
        self._refresh_cache()

    def _refresh_cache(self) -> None:
        device = self.weight.device
        cache = []
        for block, row in zip(self._blocks, self._tiles):
            w = np.concatenate([slot_to_conv_weight(t.normalized_weights, self._kernel)
                                for t in row])
            var = None
            if row[0].read_variance is not None:
                var = np.concatenate([slot_to_conv_weight(t.read_variance, self._kernel)
                                      for t in row])
            scale = np.concatenate([t.output_scale for t in row])
            entry = {"w": torch.from_numpy(w), "scale": torch.from_numpy(scale),
                     "var": None if var is None else torch.from_numpy(var)}
            if device.type != "cpu":
                entry = {k: (v.to(device) if v is not None else None) for k, v in entry.items()}
            cache.append(entry)
        self._cache = cache

    # ------------------------------------------------------------------ forward
    def _analog_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dispatch: digital / training (float weights + noise) / programmed tiles."""
        x = check_forward(self, x)  # dtype, finite bias, programmed, weights unchanged (guards)
        if (self.digital_eval and not self.training) or x.shape[0] == 0:
            return self._digital_forward(x)  # (an empty batch: the empty output, right shape)
        with periphery_overflow(self, x):
            if self.training:
                y = self._training_forward(x)
            elif x.device.type == "cpu" and not (torch.is_grad_enabled() and x.requires_grad):
                y = self._kernel_forward(x)
            else:
                y = self._torch_forward(x, [(c["w"], c["scale"], c["var"]) for c in self._cache])
        return check_output(self, x, y)  # finite (a huge input can overflow float32)

    def clipped_weight(self) -> torch.Tensor:
        """The float weights of the hardware-aware forward: W clipped to
        +-clip_sigma x std(W) of the layer (W itself when clipping is off). The gradient passes
        the clip unchanged (straight-through), so clipped weights keep learning."""
        w = self.weight
        if self.hwa.clip_sigma is not None and w.numel() > 1:
            bound = (self.hwa.clip_sigma * w.detach().std()).clamp_min(1e-12)
            w = w + (torch.clamp(w.detach(), -bound, bound) - w.detach())
        return w

    def _digital_weight(self) -> torch.Tensor:
        return self.clipped_weight() if self.digital_eval == "clipped" else self.weight

    def _training_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Hardware-aware training: clipped, noisy float weights through the torch periphery."""
        w = self.clipped_weight()
        blocks = []
        groups = getattr(self, "groups", 1)
        for block in self._blocks:
            o0, o1 = block.out_channels
            i0, i1 = block.in_channels
            if block.groups == 1:
                cin_g = self.weight.shape[1]
                g = o0 // (self.weight.shape[0] // groups)
                wb = w[o0:o1, i0 - g * cin_g:i1 - g * cin_g]
            else:
                wb = w[o0:o1]
            scales = []
            for slot in block.slots:
                a, b = slot.out_channels[0] - o0, slot.out_channels[1] - o0
                w_max = wb[a:b].detach().abs().max().clamp_min(1e-12)
                scales.append(w_max.expand(b - a))
            scale = torch.cat(scales)
            w_n = wb / scale.reshape((-1,) + (1,) * (wb.dim() - 1))
            if self.hwa.weight_noise > 0:
                w_n = w_n + self.hwa.weight_noise * torch.randn_like(w_n)
            blocks.append((w_n, scale, None))
        if not self.hwa.periphery:
            out = None
            for block, (w_n, scale, _) in zip(self._blocks, blocks):
                y = self._block_gemm_torch(x, block, w_n * scale.reshape(
                    (-1,) + (1,) * (w_n.dim() - 1)))
                out = self._place(out, y, block, x)
            return self._finish(out)
        return self._torch_forward(x, blocks)

    def _torch_forward(self, x: torch.Tensor, blocks) -> torch.Tensor:
        periphery = self.analog_config.periphery
        x = self._prepare_input(x)
        out = None
        for block, (w_n, scale, var) in zip(self._blocks, blocks):
            xs = self._slice_input(x, block)

            def gemm(v, block=block, w_n=w_n):
                return self._gemm_torch(v, w_n, block.groups)
            var_gemm = None
            if var is not None:
                def var_gemm(v, block=block, var=var):
                    return self._gemm_torch(v, var, block.groups)
            y = torch_analog_pass(xs, gemm, scale, periphery, var_gemm)
            out = self._place(out, y, block, x)
        return self._finish(out)

    def _place(self, out, y, block: RowBlock, x) -> torch.Tensor:
        o0, o1 = block.out_channels
        c_out = self.weight.shape[0]
        if out is None and o0 == 0 and o1 == c_out:
            return y
        if out is None:
            out = torch.zeros((y.shape[0], c_out) + tuple(y.shape[2:]), dtype=y.dtype,
                              device=y.device)
        pad = [0, 0] * (y.dim() - 2) + [o0, c_out - o1]
        return out + F.pad(y, pad)

    # ------------------------------------------------------------------ kernel path (CPU)
    def _kernel_forward(self, x: torch.Tensor) -> torch.Tensor:
        periphery = self.analog_config.periphery
        x = self._prepare_input(x).detach()
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        if not channels_last:
            x = x.contiguous()
        xn = self._as_channel_view(x, channels_last)
        out_t = None
        out_n = None
        written = np.zeros(self.weight.shape[0], bool)
        for b, (block, cache) in enumerate(zip(self._blocks, self._cache)):
            i0, i1 = block.in_channels
            o0, o1 = block.out_channels
            xs = xn[:, :, i0:i1] if channels_last else xn[:, i0:i1]
            geometry = {}

            def gemm(xq, weight=cache["w"], block=block, geometry=geometry):
                t = self._from_channel_view(xq, x, i1 - i0, channels_last)
                y = self._gemm_torch(t, weight, block.groups)
                geometry["shape"] = y.shape
                return self._as_channel_view(y, channels_last)
            var_gemm = None
            if cache["var"] is not None:
                def var_gemm(xq, var=cache["var"], block=block):
                    t = self._from_channel_view(xq * xq, x, i1 - i0, channels_last)
                    return self._as_channel_view(self._gemm_torch(t, var, block.groups),
                                                 channels_last)
            rng = self._forward_rng(b)
            col_scale = cache["scale"].numpy()
            axis = 2 if channels_last else 1
            if out_n is None and o0 == 0 and o1 == self.weight.shape[0]:
                res = analog_pass(xs, gemm, None, col_scale, axis, periphery, rng,
                                  accumulate=False, var_gemm=var_gemm, stats=self.stats)
                out_t = self._from_channel_view(res, None, o1 - o0, channels_last,
                                                spatial=geometry["shape"][2:])
                out_n = res
            else:
                if out_n is None:
                    y_shape = self._output_shape(x)
                    out_t = torch.empty(y_shape, dtype=torch.float32)
                    if channels_last:
                        out_t = out_t.contiguous(memory_format=torch.channels_last)
                    out_n = self._as_channel_view(out_t, channels_last)
                dest = out_n[:, :, o0:o1] if channels_last else out_n[:, o0:o1]
                accumulate = bool(written[o0:o1].any())
                analog_pass(xs, gemm, dest, col_scale, axis, periphery, rng,
                            accumulate=accumulate, var_gemm=var_gemm, stats=self.stats)
            written[o0:o1] = True
        if not written.all():  # channels no tile writes (cannot happen for valid plans)
            raise RuntimeError(f"{self.layer_name}: output channels left unwritten")
        return self._finish(out_t)

    def _forward_rng(self, block_index: int) -> np.random.Generator:
        tile = self._tiles[block_index][0]
        return tile._mvm_rng

    @staticmethod
    def _as_channel_view(t: torch.Tensor, channels_last: bool) -> np.ndarray:
        """(N, C, *S) tensor -> numpy (N, C, prod S) or, channels_last, (N, prod S, C)."""
        n, c = t.shape[0], t.shape[1]
        if channels_last:
            return t.permute(0, 2, 3, 1).numpy().reshape(n, -1, c)
        return t.numpy().reshape(n, c, -1)

    @staticmethod
    def _from_channel_view(a: np.ndarray, like: torch.Tensor | None, channels: int,
                           channels_last: bool, spatial=None) -> torch.Tensor:
        if spatial is None:
            spatial = like.shape[2:]
        n = a.shape[0]
        t = torch.from_numpy(a)
        if channels_last:
            return t.view(n, *spatial, channels).permute(0, 3, 1, 2)
        return t.view(n, channels, *spatial)

    # ------------------------------------------------------------------ state_dict
    def get_extra_state(self) -> dict:
        state: dict = {"config": json.dumps(self.analog_config.to_dict()),
                       "hwa": json.dumps(asdict(self.hwa)), "programmed": self.is_programmed}
        if self.is_programmed:
            from aimcsim.nn.persistence import tiles_to_state
            state.update(tiles_to_state(self.tiles))
        return state

    def set_extra_state(self, state: dict) -> None:
        from aimcsim.nn.persistence import config_mismatch, read_extra_state, tiles_from_state
        saved, hwa, programmed = read_extra_state(state, self.layer_name)  # ValueError if bad
        if self.config_explicit:
            diff = config_mismatch(self.analog_config, saved)
            if diff:
                raise ValueError(f"{self.layer_name}: the state_dict was saved with a different "
                                 f"analog config ({diff}); convert without a config to adopt the "
                                 f"saved one, or pass the same config")
        else:
            self.analog_config = saved
        self.hwa = hwa
        self._blocks = self._make_plan()
        self._tiles, self._cache = None, None  # unprogrammed unless the saved tiles load
        if not programmed:
            return
        check_parameters(self)
        weight = self.weight.detach().to("cpu", torch.float32).numpy()
        w = weight.reshape(weight.shape[0], weight.shape[1], -1)
        groups = getattr(self, "groups", 1)
        tiles = [[AnalogTile(slot_weights(w, slot, groups), self.analog_config)
                  for slot in block.slots] for block in self._blocks]
        tiles_from_state([t for row in tiles for t in row], state, self.layer_name)
        self._tiles = tiles
        self._refresh_cache()
        stamp_weights(self)

    def _apply(self, fn, recurse=True):  # keep cached tile weights on the module's device
        result = super()._apply(fn, recurse)
        if self._tiles is not None:
            self._refresh_cache()
        return result


class AnalogLinear(AnalogLayerMixin, nn.Linear):
    """``nn.Linear`` on crossbar tiles: y = x W^T (+ bias, digital)."""

    analog_kind = "linear"
    _kernel = ()

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 config: AnalogConfig | None = None, hwa: HardwareAwareConfig | None = None,
                 device=None, dtype=None) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias, device=device, dtype=dtype)
        self._init_analog(config, hwa)

    @classmethod
    def from_digital(cls, module: nn.Linear, config: AnalogConfig | None = None,
                     hwa: HardwareAwareConfig | None = None) -> "AnalogLinear":
        layer = cls(module.in_features, module.out_features, module.bias is not None, config,
                    hwa, device=module.weight.device)
        layer.load_state_dict(module.state_dict(), strict=False)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_dtype(self, x)
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self.layer_name}: expected input (..., {self.in_features}), "
                             f"got {tuple(x.shape)}")
        lead = x.shape[:-1]
        y = self._analog_forward(x.reshape(-1, self.in_features))
        return y.reshape(*lead, self.out_features)

    def _digital_forward(self, x):
        return F.linear(x, self._digital_weight(), self.bias)

    def _prepare_input(self, x):
        return x

    def _slice_input(self, x, block):
        return x[:, block.in_channels[0]:block.in_channels[1]]

    def _gemm_torch(self, v, weight, groups):
        return v @ weight.t()

    def _block_gemm_torch(self, x, block, weight):
        return self._gemm_torch(self._slice_input(x, block), weight, 1)

    def _as_channel_view(self, t, channels_last):  # (N, C) -> (N, 1, C)
        return t.numpy().reshape(t.shape[0], 1, -1)

    def _from_channel_view(self, a, like, channels, channels_last, spatial=None):
        return torch.from_numpy(a).view(a.shape[0], -1)

    def _kernel_forward(self, x):
        periphery = self.analog_config.periphery
        x = x.detach().contiguous()
        xn = x.numpy().reshape(x.shape[0], 1, -1)
        out = None
        for b, (block, cache) in enumerate(zip(self._blocks, self._cache)):
            i0, i1 = block.in_channels
            o0, o1 = block.out_channels
            weight_t = cache["w"].t()

            def gemm(xq, weight_t=weight_t):
                return (torch.from_numpy(xq.reshape(xq.shape[0], -1)) @ weight_t).numpy(
                ).reshape(xq.shape[0], 1, -1)
            var_gemm = None
            if cache["var"] is not None:
                var_t = cache["var"].t()

                def var_gemm(xq, var_t=var_t):
                    sq = torch.from_numpy((xq * xq).reshape(xq.shape[0], -1))
                    return (sq @ var_t).numpy().reshape(xq.shape[0], 1, -1)
            if out is None:
                out = np.zeros((x.shape[0], 1, self.out_features), np.float32)
            analog_pass(xn[:, :, i0:i1], gemm, out[:, :, o0:o1], cache["scale"].numpy(), 2,
                        periphery, self._forward_rng(b), accumulate=True, var_gemm=var_gemm,
                        stats=self.stats)
        return self._finish(torch.from_numpy(out.reshape(x.shape[0], -1)))

    def _finish(self, y):
        return y + self.bias if self.bias is not None else y


class _AnalogConvNd(AnalogLayerMixin):
    """Shared code of the analog convolutions (computed as 2-D convolutions)."""

    @classmethod
    def from_digital(cls, module: nn.Module, config: AnalogConfig | None = None,
                     hwa: HardwareAwareConfig | None = None):
        """The analog twin of a torch convolution, with its weights and bias."""
        layer = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                    module.padding, module.dilation, module.groups, module.bias is not None,
                    module.padding_mode, config, hwa, device=module.weight.device)
        layer.load_state_dict(module.state_dict(), strict=False)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.dim() == self._expected_dims - 1:
            return self._analog_forward(x.unsqueeze(0)).squeeze(0)  # unbatched, as in torch
        return self._analog_forward(x)

    def _digital_forward(self, x):
        return self._conv_forward(x, self._digital_weight(), self.bias)

    def _prepare_input(self, x):
        expected = self._expected_dims
        if x.dim() != expected or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.layer_name}: expected input of {expected} dims with "
                             f"{self.in_channels} channels, got {tuple(x.shape)}")
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
        return self._to_2d(x)

    def _slice_input(self, x, block):
        return x[:, block.in_channels[0]:block.in_channels[1]]

    def _conv_padding(self):
        return 0 if self.padding_mode != "zeros" else self._padding_2d

    def _gemm_torch(self, v, weight, groups):
        return F.conv2d(v, self._weight_2d(weight), None, self._stride_2d, self._conv_padding(),
                        self._dilation_2d, groups)

    def _block_gemm_torch(self, x, block, weight):
        return self._gemm_torch(self._slice_input(x, block), weight, block.groups)

    def _output_shape(self, x):
        probe = F.conv2d(x[:1, :1].new_zeros((1, 1) + tuple(x.shape[2:])),
                         x.new_zeros((1, 1) + tuple(self._kernel_2d)), None, self._stride_2d,
                         self._conv_padding(), self._dilation_2d)
        return (x.shape[0], self.out_channels) + tuple(probe.shape[2:])

    def _finish(self, y):
        if self.bias is not None:
            y = y + self.bias.reshape(1, -1, 1, 1)
        return self._from_2d(y)


class AnalogConv2d(_AnalogConvNd, nn.Conv2d):
    """``nn.Conv2d`` on crossbar tiles (stride, padding modes, dilation, groups)."""

    analog_kind = "conv2d"
    _expected_dims = 4

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 config: AnalogConfig | None = None, hwa: HardwareAwareConfig | None = None,
                 device=None, dtype=None) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device=device, dtype=dtype)
        self._kernel = tuple(self.kernel_size)
        self._kernel_2d = tuple(self.kernel_size)
        self._stride_2d = tuple(self.stride)
        self._dilation_2d = tuple(self.dilation)
        self._padding_2d = self.padding
        self._init_analog(config, hwa)

    def _to_2d(self, x):
        return x

    def _from_2d(self, y):
        return y

    def _weight_2d(self, w):
        return w


class AnalogConv1d(_AnalogConvNd, nn.Conv1d):
    """``nn.Conv1d`` on crossbar tiles, computed as a 2-D convolution of height 1."""

    analog_kind = "conv1d"
    _expected_dims = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 config: AnalogConfig | None = None, hwa: HardwareAwareConfig | None = None,
                 device=None, dtype=None) -> None:
        nn.Conv1d.__init__(self, in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups, bias, padding_mode, device=device, dtype=dtype)
        self._kernel = tuple(self.kernel_size)
        self._kernel_2d = (1,) + tuple(self.kernel_size)
        self._stride_2d = (1,) + tuple(self.stride)
        self._dilation_2d = (1,) + tuple(self.dilation)
        self._padding_2d = self.padding if isinstance(self.padding, str) else (0,) + tuple(
            self.padding)
        self._init_analog(config, hwa)

    def _to_2d(self, x):
        return x.unsqueeze(2)

    def _from_2d(self, y):
        return y.squeeze(2)

    def _weight_2d(self, w):
        return w.unsqueeze(2) if w.dim() == 3 else w


ANALOG_LAYERS = (AnalogLinear, AnalogConv1d, AnalogConv2d)
