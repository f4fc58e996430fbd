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

import dataclasses
import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aimcsim.nn.compile import eager_under_compile
from aimcsim.nn.dtypes import computes_in_float32
from aimcsim.nn.functional import torch_analog_pass
from aimcsim.nn.fused import fused_per_patch_pass, fused_per_patch_supported
from aimcsim.nn.input_scaling import ConvWindow, patch_scales, torch_per_vector_pass
from aimcsim.nn.guards import (check_dtype, check_forward, check_output, check_parameters,
                                periphery_overflow, stamp_weights)
from aimcsim.nn.plan import RowBlock, plan_tiles, slot_to_conv_weight, slot_weights
from aimcsim.nn.training_weights import device_model_blocks, gaussian_blocks
from aimcsim.kernels.periphery import absmax_per_pixel, dac_patches, dac_pixels
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.engine import (SaturationStats, analog_pass, analog_pass_per_vector,
                                  bound_iterations)
from aimcsim.tiles.periphery import PeripheryConfig
from aimcsim.tiles.scratch import squared
from aimcsim.tiles.tile import AnalogTile, NotProgrammedError
from aimcsim.validation import (check_bool, check_choice, check_float, check_int, check_seed,
                                check_time)


HWA_NOISE_MODELS = ("gaussian", "device")


@dataclass
class HardwareAwareConfig:
    """Noise model of hardware-aware training (physics.md section 7), applied per mini-batch in
    the training-mode forward pass.

    Attributes:
        noise_model: the weight perturbation of each step (:mod:`aimcsim.nn.training_weights`):
            ``gaussian`` (additive noise of std ``weight_noise``) or ``device`` (the layer's
            device model: programming noise, drift to a time drawn log-uniformly from
            [``t_min``, ``t_max``] seconds with per-device exponents, read noise, and the
            drift compensation inference applies).
        weight_noise: std of additive Gaussian weight noise relative to the tile's max|W|
            (0.02-0.08 is the useful range; above 0.08 networks stop reaching float accuracy;
            accepted: 0 to 10).
        clip_sigma: weights are clipped to +-clip_sigma x std(W) of the layer (None: off;
            accepted: > 0 and <= 1000).
        periphery: run DAC/ADC quantisation, output noise and bound management of the
            layer's AnalogConfig in the training forward pass.
        t_min, t_max: range of the read times of the ``device`` model, seconds (> 0).
        noise_scale: ``device`` model only: the read weights' deviation from the mapped
            float weights is multiplied by this factor, ``W_n = W/w_max + k (W_n(t) -
            W/w_max)`` (noise inflation: train for a harsher device than the one read at
            inference; 1: the device as it is; accepted 0 to 10).
    """

    weight_noise: float = 0.03
    clip_sigma: float | None = 2.5
    periphery: bool = True
    noise_model: str = "gaussian"
    t_min: float = 1.0
    t_max: float = 1e6
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        self.weight_noise = check_float(self.weight_noise, "weight_noise", 0, 10)
        self.clip_sigma = check_float(self.clip_sigma, "clip_sigma", 0, 1000, low_open=True,
                                      allow_none=True)
        self.periphery = check_bool(self.periphery, "periphery")
        check_choice(self.noise_model, HWA_NOISE_MODELS, "noise_model")
        self.t_min = check_float(self.t_min, "t_min", 0, 1e12, low_open=True)
        self.t_max = check_float(self.t_max, "t_max", 0, 1e12, low_open=True)
        self.noise_scale = check_float(self.noise_scale, "noise_scale", 0, 10)
        if self.t_min > self.t_max:
            raise ValueError(f"t_min must not exceed t_max, got t_min={self.t_min!r}, "
                             f"t_max={self.t_max!r}")


_UINT64 = (1 << 64) - 1


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
        self._program_key: tuple[int, ...] = (0,)
        self._read_key: tuple[int, ...] = (0, 0)
        self._reads = 0
        self._forward_calls = 0
        self.input_range: float | None = None
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
        self._program_key = tuple(int(v) for v in seq.generate_state(2, np.uint32))
        self._reads = 0
        self._start_read((0, 0))
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
        self._reads += 1
        self._start_read((1, int(seed) & _UINT64) if seed is not None else (2, self._reads))
        self._refresh_cache()

    def _start_read(self, read_key: tuple[int, int]) -> None:
        """Name the read whose forward passes follow: their noise streams derive from the
        programming seed, this read's key and the pass count since the read, never from
        anything that ran before it."""
        self._read_key = read_key
        self._forward_calls = 0

    def _pass_seeds(self) -> list[int]:
        """One 64-bit noise seed per row block for the next forward pass (order-free)."""
        call = self._forward_calls
        self._forward_calls += 1
        seq = np.random.SeedSequence([*self._program_key, *self._read_key, call])
        return [int(v) for v in seq.generate_state(len(self._blocks), np.uint64)]

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
    @property
    def input_scaling(self) -> str:
        return self.analog_config.periphery.input_scaling

    def _static_range(self) -> float:
        """The calibrated input range of ``input_scaling="static"``."""
        if self.input_range is None:
            raise ValueError(f"{self.layer_name}: input_scaling='static' needs a calibrated "
                             f"input range; call aimcsim.calibrate_input_ranges(model, batches) "
                             f"or set layer.input_range")
        return self.input_range

    def _row_periphery(self) -> PeripheryConfig:
        """The periphery of a pass that scales each sample (row) as one vector: a static
        range acts as constant noise management."""
        periphery = self.analog_config.periphery
        if periphery.input_scaling != "static":
            return periphery
        return dataclasses.replace(periphery, noise_management="constant",
                                   nm_constant=self._static_range())

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
                y = self._torch_forward(x, [(c["w"], c["scale"], c["var"])
                                            for c in self._cache],
                                        self._eval_generators(x.device))
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
        """Hardware-aware training: the clipped float weights, perturbed by the noise model of
        ``hwa.noise_model`` (:mod:`aimcsim.nn.training_weights`), through the torch
        periphery."""
        w = self.clipped_weight()
        if self.hwa.noise_model == "device":
            blocks = device_model_blocks(self, w)
        else:
            blocks = gaussian_blocks(self, w)
        if not self.hwa.periphery:
            out = None
            for block, (w_n, scale, _) in zip(self._blocks, blocks):
                y = self._block_gemm_torch(x, block, w_n * scale.reshape(
                    (-1,) + (1,) * (w_n.dim() - 1)))
                out = self._place(out, y, block, x)
            return self._finish(out)
        return self._torch_forward(x, blocks)

    def _torch_forward(self, x: torch.Tensor, blocks, generators=None) -> torch.Tensor:
        """The periphery in torch ops around each row block's GEMM (training, other devices,
        gradients); ``generators``: one torch generator per block, or None for the global
        one."""
        x = self._prepare_input(x)
        out = None
        for b, (block, (w_n, scale, var)) in enumerate(zip(self._blocks, blocks)):
            xs = self._slice_input(x, block)

            def gemm(v, block=block, w_n=w_n):
                return self._gemm_torch(v, w_n, block.groups)
            var_gemm = None
            if var is not None:
                def var_gemm(v, block=block, var=var):
                    return self._gemm_torch(v, var, block.groups)
            generator = None if generators is None else generators[b]
            y = self._torch_pass(xs, gemm, scale, var_gemm, generator)
            out = self._place(out, y, block, x)
        return self._finish(out)

    def _torch_pass(self, xs, gemm, scale, var_gemm, generator) -> torch.Tensor:
        """One tile row block's periphery in torch, each sample one input vector."""
        return torch_analog_pass(xs, gemm, scale, self._row_periphery(), var_gemm, generator)

    def _eval_generators(self, device: torch.device) -> list[torch.Generator]:
        """Order-free noise for the torch path of a programmed layer (one generator per
        block, seeded like the Numba path)."""
        return [torch.Generator(device).manual_seed(seed & ((1 << 63) - 1))
                for seed in self._pass_seeds()]

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
        """The Numba periphery around each row block's native convolution (no unfolding)."""
        periphery = self.analog_config.periphery
        if periphery.input_scaling == "per_patch_exact":
            return self._unfolded_forward(x)
        x = self._prepare_input(x).detach()
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        if not channels_last:
            x = x.contiguous()
        xn = self._as_channel_view(x, channels_last)
        out_t = None
        out_n = None
        written = np.zeros(self.weight.shape[0], bool)
        seeds = self._pass_seeds()
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
                    t = self._from_channel_view(squared(xq), x, i1 - i0, channels_last)
                    return self._as_channel_view(self._gemm_torch(t, var, block.groups),
                                                 channels_last)
            col_scale = cache["scale"].numpy()
            axis = 2 if channels_last else 1
            whole = out_n is None and o0 == 0 and o1 == self.weight.shape[0]
            if not whole and out_n is None:
                out_t = torch.empty(self._output_shape(x), dtype=torch.float32)
                if channels_last:
                    out_t = out_t.contiguous(memory_format=torch.channels_last)
                out_n = self._as_channel_view(out_t, channels_last)
            dest = None if whole else (out_n[:, :, o0:o1] if channels_last else out_n[:, o0:o1])
            accumulate = bool(written[o0:o1].any())
            if periphery.input_scaling == "per_image":
                res = analog_pass(xs, gemm, dest, col_scale, axis, periphery,
                                  np.random.default_rng(seeds[b]), accumulate=accumulate,
                                  var_gemm=var_gemm, stats=self.stats)
            else:
                res = analog_pass_per_vector(xs, self._kernel_dac(axis, x), gemm, dest,
                                             col_scale, axis, periphery, seeds[b],
                                             accumulate=accumulate, var_gemm=var_gemm,
                                             stats=self.stats)
            if whole:
                out_t = self._from_channel_view(res, None, o1 - o0, channels_last,
                                                spatial=geometry["shape"][2:])
                out_n = res
            written[o0:o1] = True
        if not written.all():  # channels no tile writes (cannot happen for valid plans)
            raise RuntimeError(f"{self.layer_name}: output channels left unwritten")
        return self._finish(out_t)

    def _kernel_dac(self, axis: int, x: torch.Tensor):
        """The DAC step of :func:`analog_pass_per_vector` for this layer's input ``x`` (the
        prepared 4-D tensor): per-patch abs-max scales (``dac_per_patch``) or one constant
        scale (static range, constant or no noise management)."""
        periphery = self.analog_config.periphery
        h, w = x.shape[2:]
        window = self._window().kernel_parameters(h, w)
        positions = int(window[10] * window[11])
        bound, step = periphery.inp_bound, periphery.inp_step

        def per_patch(xs: np.ndarray, xq: np.ndarray) -> np.ndarray:
            scales = np.empty((xs.shape[0], positions), np.float32)
            if not dac_patches(xs, xq, axis, h, w, window, scales, bound, step):
                raise ValueError(f"{self.layer_name} input contains NaN or inf values")
            return scales

        def constant(xs: np.ndarray, xq: np.ndarray) -> np.ndarray:
            n = xs.shape[0]
            if not absmax_per_pixel(xs, axis, np.empty((n, h * w), np.float32)):
                raise ValueError(f"{self.layer_name} input contains NaN or inf values")
            value = self._constant_scale()
            dac_pixels(xs, xq, np.full((n, h * w), value, np.float32), axis, bound, step)
            return np.full((n, positions), value, np.float32)

        abs_max = periphery.input_scaling == "per_patch" and \
            periphery.noise_management == "abs_max"
        return per_patch if abs_max else constant

    def _constant_scale(self) -> float:
        """The input scale when it is the same for every vector: the static range, the
        constant of noise management, or 1."""
        periphery = self.analog_config.periphery
        if periphery.input_scaling == "static":
            return self._static_range()
        return periphery.nm_constant if periphery.noise_management == "constant" else 1.0

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
                       "hwa": json.dumps(asdict(self.hwa)), "programmed": self.is_programmed,
                       "input_range": self.input_range,
                       "noise_keys": json.dumps([list(self._program_key),
                                                 list(self._read_key), self._reads])}
        if self.is_programmed:
            from aimcsim.nn.persistence import tiles_to_state
            state.update(tiles_to_state(self.tiles))
        return state

    def set_extra_state(self, state: dict) -> None:
        from aimcsim.nn.persistence import (config_mismatch, read_extra_state, read_input_range,
                                            read_noise_keys, tiles_from_state)
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
        self.input_range = read_input_range(state, self.layer_name)
        keys = read_noise_keys(state, self.layer_name)
        if keys is not None:
            self._program_key, read_key, self._reads = keys
            self._start_read(read_key)
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

    @eager_under_compile
    @computes_in_float32
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
        periphery = self._row_periphery()
        x = x.detach().contiguous()
        xn = x.numpy().reshape(x.shape[0], 1, -1)
        out = None
        seeds = self._pass_seeds()
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
                        periphery, np.random.default_rng(seeds[b]), accumulate=True, var_gemm=var_gemm,
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

    @eager_under_compile
    @computes_in_float32
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

    def _window(self) -> ConvWindow:
        """The convolution's 2-D window (kernel, stride, dilation, zero padding)."""
        padding = self._conv_padding()
        if isinstance(padding, int):
            padding = (padding, padding)
        return ConvWindow.of(self._kernel_2d, self._stride_2d, self._dilation_2d, padding)

    def _torch_pass(self, xs, gemm, scale, var_gemm, generator) -> torch.Tensor:
        """One row block's periphery in torch: per image as the rows of a linear layer, else
        one vector per output position (:func:`torch_per_vector_pass`)."""
        periphery = self.analog_config.periphery
        if periphery.input_scaling == "per_image":
            return super()._torch_pass(xs, gemm, scale, var_gemm, generator)
        if periphery.input_scaling != "static" and var_gemm is None and generator is None \
                and fused_per_patch_supported(xs, periphery):
            window = self._window().kernel_parameters(*xs.shape[2:])
            return fused_per_patch_pass(xs, window, gemm, scale, periphery,
                                        bound_iterations(periphery))
        if periphery.input_scaling != "static" and periphery.noise_management == "abs_max":
            pixel_max = xs.detach().abs().amax(dim=1, keepdim=True)
            pixel, patch = patch_scales(pixel_max, self._window())
        else:
            pixel = patch = torch.tensor(self._constant_scale(), dtype=xs.dtype,
                                         device=xs.device)
        return torch_per_vector_pass(xs, pixel, patch, gemm, scale, periphery, var_gemm,
                                     generator)

    def _unfolded_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The exact per-patch reference: every patch unfolded and run through its tiles as
        one input vector (DAC with its own scale, bound management repeating its own DAC).
        Slow (k x k copies of the input); ``input_scaling="per_patch_exact"``."""
        x = self._prepare_input(x).detach()
        window = self._window()
        if any(window.pad):
            x = F.pad(x, window.pad)
        n = x.shape[0]
        spatial = [(size - d * (k - 1) - 1) // s + 1 for size, k, s, d in
                   zip(x.shape[2:], window.kernel, window.stride, window.dilation)]
        out = torch.zeros([n, self.out_channels] + spatial, dtype=torch.float32)
        seeds = self._pass_seeds()
        for b, (block, cache) in enumerate(zip(self._blocks, self._cache)):
            i0, i1 = block.in_channels
            o0, o1 = block.out_channels
            cols = F.unfold(x[:, i0:i1], window.kernel, window.dilation, 0, window.stride)
            positions = cols.shape[2]
            vectors = cols.transpose(1, 2).reshape(n * positions, 1, -1).contiguous().numpy()
            matrix = self._dense_block_matrix(cache["w"], block, i1 - i0)
            var_gemm = None
            if cache["var"] is not None:
                var_matrix = self._dense_block_matrix(cache["var"], block, i1 - i0)

                def var_gemm(v, m=var_matrix):
                    return (torch.from_numpy(v * v).squeeze(1) @ m.t()).numpy()[:, None]

            def gemm(v, m=matrix):
                return (torch.from_numpy(v).squeeze(1) @ m.t()).numpy()[:, None]
            y = analog_pass(vectors, gemm, None, cache["scale"].numpy(), 2,
                            self.analog_config.periphery, np.random.default_rng(seeds[b]),
                            accumulate=False, var_gemm=var_gemm, stats=self.stats)
            y = torch.from_numpy(y).view(n, positions, o1 - o0).transpose(1, 2)
            out[:, o0:o1] += y.reshape(n, o1 - o0, *out.shape[2:])
        return self._finish(out)

    @staticmethod
    def _dense_block_matrix(weight: torch.Tensor, block: RowBlock, in_channels: int
                            ) -> torch.Tensor:
        """A row block's conv weights (C_out_block, C_in_block / G, *k) as the dense
        (C_out_block, C_in_block * k) matrix of its unfolded input (zeros off the diagonal
        blocks of a grouped tile)."""
        c_out = weight.shape[0]
        if block.groups == 1:
            return weight.reshape(c_out, -1)
        dense = weight.new_zeros((c_out, in_channels) + tuple(weight.shape[2:]))
        cout_g, cin_g = c_out // block.groups, in_channels // block.groups
        for g in range(block.groups):
            dense[g * cout_g:(g + 1) * cout_g, g * cin_g:(g + 1) * cin_g] = \
                weight[g * cout_g:(g + 1) * cout_g]
        return dense.reshape(c_out, -1)

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
