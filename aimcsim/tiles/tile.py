"""One crossbar tile: a weight block stored as differential conductance pairs.

Mapping (physics.md section 1): for a weight w of the tile, G+ = max(w, 0) / w_max * g_max and
G- = max(-w, 0) / w_max * g_max (µS), with w_max = max|W| of the tile (or of each column). The
normalised weight the array computes with is W_n = (G+ - G-) / g_max, in [-1, 1]; the read-out
weight is W_n * w_max. With IR drop on (``config.ir_drop``) the read conductances become the
effective conductances of the circuit with resistive wires (``aimcsim/tiles/ir_drop.py``) before
the difference is taken; the MVM itself is unchanged. With ``mapping.pair_drift = "net"`` the
programmed pairs are re-split onto one device each (``aimcsim/tiles/pair_drift.py``) and the
read weight is W_n = (G'+ - G'-) / (r g_max), r the re-split scale.

Life cycle: ``program(seed)`` samples the programmed state once (programming noise, drift
exponents) and measures the drift-compensation reference (on a read at t = 0, or on the
programmed conductances, ``drift_compensation.reference``); ``set_time(t)`` re-evaluates drift and
read noise at t seconds after programming without re-programming; ``mvm(x)`` runs the
periphery of ``engine.analog_pass`` around the matrix product.

A tile may hold G independent diagonal blocks (grouped convolutions): its weights have shape
(G, r, c) and it computes y[:, g] = x[:, g] @ W[g]; cells off the diagonal blocks are unused.
"""
from __future__ import annotations

import numpy as np
from threadpoolctl import ThreadpoolController

from aimcsim.devices import DeviceState
from aimcsim.tiles.config import AnalogConfig
from aimcsim.tiles.engine import SaturationStats, analog_pass
from aimcsim.tiles.ir_drop import tile_ir_drop
from aimcsim.tiles.pair_drift import resplit_net_pairs
from aimcsim.validation import check_finite, check_int, check_seed, check_time

#: Seed of the fixed calibration inputs of drift compensation.
CALIBRATION_SEED = 20_2006
#: Tile GEMMs are at most N x 512 x 512: one BLAS thread does them without waking (and leaving
#: spinning) a BLAS thread pool that would compete with torch's and Numba's threads.
_BLAS = ThreadpoolController()


class NotProgrammedError(RuntimeError):
    """A tile or layer was read before ``program()``."""


def _generator(seed: int | np.random.SeedSequence) -> np.random.Generator:
    if isinstance(seed, np.random.SeedSequence):
        return np.random.Generator(np.random.PCG64(seed))
    return np.random.default_rng(int(seed))


class AnalogTile:
    """A block of weights on one crossbar.

    Args:
        weights: (r, c) or (G, r, c) float array: r inputs (rows), c outputs (columns) per
            block; G * r <= mapping.rows and G * c <= mapping.cols.
        config: the analog configuration.
    """

    def __init__(self, weights: np.ndarray, config: AnalogConfig) -> None:
        w = np.asarray(weights, dtype=np.float32)
        if w.ndim == 2:
            w = w[None]
        if w.ndim != 3 or min(w.shape) < 1:
            raise ValueError(f"weights must have shape (rows, cols) or (groups, rows, cols), "
                             f"got {np.shape(weights)}")
        check_finite(w, "weights")
        groups, rows, cols = w.shape
        if groups * rows > config.mapping.rows or groups * cols > config.mapping.cols:
            raise ValueError(f"weights {tuple(w.shape)} need {groups * rows} x {groups * cols} "
                             f"cells, more than a {config.mapping.rows} x {config.mapping.cols} "
                             f"tile")
        self.weights = w
        self.config = config
        self.stats = SaturationStats()
        self._state: DeviceState | None = None
        self._w_max: np.ndarray | None = None
        self._resplit_scale: np.ndarray | None = None
        self._w_n: np.ndarray | None = None
        self._g_read: np.ndarray | None = None
        self._var_n: np.ndarray | None = None
        self._alpha: np.ndarray | None = None
        self._s0: np.ndarray | None = None
        self._mvm_rng: np.random.Generator | None = None
        self._read_seq: np.random.SeedSequence | None = None
        self.t: float | None = None

    # ----------------------------------------------------------------- geometry
    @property
    def groups(self) -> int:
        return int(self.weights.shape[0])

    @property
    def in_size(self) -> int:
        """Inputs of the tile (rows used): G * r."""
        return self.groups * int(self.weights.shape[1])

    @property
    def out_size(self) -> int:
        """Outputs of the tile (columns used): G * c."""
        return self.groups * int(self.weights.shape[2])

    @property
    def utilisation(self) -> float:
        """Fraction of the tile's cells holding a weight."""
        used = self.weights.size
        return used / (self.config.mapping.rows * self.config.mapping.cols)

    @property
    def is_programmed(self) -> bool:
        return self._state is not None

    # ----------------------------------------------------------------- programming
    def program(self, seed: int | np.random.SeedSequence) -> None:
        """Program the conductances (one sample of programming noise and drift exponents),
        then read at t = 0 and record the drift-compensation reference."""
        seed = check_seed(seed)
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        program_seq, read_seq, mvm_seq = seq.spawn(3)
        device = self.config.device
        w = self.weights
        if self.config.mapping.weight_scaling == "tile":
            w_max = np.full((1, 1, w.shape[2]), np.abs(w).max(), np.float32)
            w_max = np.broadcast_to(w_max, (w.shape[0], 1, w.shape[2])).copy()
        else:
            w_max = np.abs(w).max(axis=1, keepdims=True)
        w_max = w_max.astype(np.float32)  # 0 for an all-zero tile (column): output_scale 0
        divisor = np.where(w_max > 0, w_max, np.float32(1.0)).astype(np.float32)
        g_max = np.float32(device.g_max)
        targets = np.stack([np.maximum(w, 0), np.maximum(-w, 0)]) / divisor * g_max
        targets = np.minimum(targets, g_max).astype(np.float32)
        state = device.program(targets, _generator(program_seq))
        self._resplit_scale = None
        if self.config.mapping.pair_drift == "net":
            state, self._resplit_scale = resplit_net_pairs(state, device,
                                                           self.config.mapping.weight_scaling)
        self._state = state
        self._w_max = w_max
        self._read_seq = read_seq
        self._mvm_rng = _generator(mvm_seq)
        self._alpha = None
        self._s0 = None
        self.stats = SaturationStats()
        self.set_time(0.0)
        gdc = self.config.drift_compensation
        if gdc.enabled:
            reference = (self._programmed_weights(), None) if gdc.reference == "programmed" \
                else None
            self._s0 = self._calibration_readout(weights=reference)
            self._alpha = np.ones_like(self._s0)

    def _require_programmed(self) -> None:
        if self._state is None:
            raise NotProgrammedError("tile read before program(): call program(seed) first")

    def set_time(self, t: float, seed: int | None = None) -> None:
        """Read the devices at ``t`` >= 0 seconds after programming (drift + one read-noise draw,
        or the read-noise variance for per-MVM sampling) and update drift compensation.

        ``seed`` picks the read-noise draw; by default each call takes the next draw of the
        tile's read stream, so a sequence of calls is reproducible from the programming seed.
        """
        self._require_programmed()
        t = check_time(t)
        seed = check_int(seed, "seed", 0, allow_none=True)
        device = self.config.device
        if seed is None:
            (read_seq,) = self._read_seq.spawn(1)
        else:
            read_seq = np.random.SeedSequence(int(seed))
        rng = _generator(read_seq)
        std = None
        if self.config.read_noise_sampling == "per_read":
            g = device.read(self._state, t, rng)
        else:
            g = device.drifted(self._state, t)
            std = device.read_noise_std(self._state, t)
        ir_drop = self.config.ir_drop
        if ir_drop.enabled:
            self._g_read = g
            g, factors = tile_ir_drop(g, ir_drop.r_row_ohm, ir_drop.r_col_ohm, ir_drop.method)
            if std is not None:
                std = (std * factors).astype(np.float32)
        unit = self._unit()
        self._var_n = None if std is None else (
            (std[0] ** 2 + std[1] ** 2) / unit ** 2).astype(np.float32)
        self._w_n = ((g[0] - g[1]) / unit).astype(np.float32)
        self.t = t
        if self._s0 is not None:
            self._alpha = np.ones_like(self._s0)
            s_t = self._calibration_readout(rng)
            self._alpha = np.where(s_t > 0, self._s0 / np.where(s_t > 0, s_t, 1), 1.0
                                   ).astype(np.float32)

    def _unit(self) -> np.float32 | np.ndarray:
        """µS per unit of normalised weight: g_max, times r for re-split pairs."""
        g_max = np.float32(self.config.device.g_max)
        return g_max if self._resplit_scale is None else g_max * self._resplit_scale

    def _programmed_weights(self) -> np.ndarray:
        """W_n of the programmed conductances (t = 0, no read noise; IR drop folded in)."""
        g = self.config.device.drifted(self._state, 0.0)
        ir_drop = self.config.ir_drop
        if ir_drop.enabled:
            g, _ = tile_ir_drop(g, ir_drop.r_row_ohm, ir_drop.r_col_ohm, ir_drop.method)
        return ((g[0] - g[1]) / self._unit()).astype(np.float32)

    def _calibration_inputs(self) -> np.ndarray:
        """The fixed calibration batch (same at programming and at every later read)."""
        gdc = self.config.drift_compensation
        key = (gdc.calibration, gdc.calibration_vectors, self.in_size)
        if getattr(self, "_cal_key", None) != key:
            if gdc.calibration == "one_hot":
                self._cal_inputs = np.eye(self.in_size, dtype=np.float32)
            else:
                cal_rng = np.random.default_rng(CALIBRATION_SEED)
                self._cal_inputs = cal_rng.uniform(-1, 1, (gdc.calibration_vectors, self.in_size)
                                                   ).astype(np.float32)
            self._cal_key = key
        return self._cal_inputs

    def _calibration_readout(self, rng: np.random.Generator | None = None,
                             weights: tuple[np.ndarray, np.ndarray | None] | None = None
                             ) -> np.ndarray:
        """Mean |y| of the calibration batch in ADC units: a scalar per tile or per column.
        ``weights``: (W_n, per-MVM variance or None) to read instead of the current read."""
        x = self._calibration_inputs()
        y = self._mvm_raw(x, rng or self._mvm_rng, scaled=False, stats=None, weights=weights)
        if self.config.drift_compensation.granularity == "tile":
            return np.full(self.out_size, np.abs(y).mean(), np.float32)
        return np.abs(y).mean(axis=0).astype(np.float32)

    # ----------------------------------------------------------------- reading
    @property
    def normalized_weights(self) -> np.ndarray:
        """W_n = (G+ - G-) / g_max at the current time, (G, r, c) float32 (effective
        conductances with IR drop on; (G'+ - G'-) / (r g_max) for net pair drift)."""
        self._require_programmed()
        return self._w_n

    @property
    def read_conductances(self) -> np.ndarray | None:
        """G+ and G- (2, G, r, c), µS, of the last read (the mean conductances with per-MVM
        read noise; the re-split pair for net pair drift), before IR drop; kept only when IR
        drop is on (else None)."""
        self._require_programmed()
        return self._g_read

    @property
    def read_variance(self) -> np.ndarray | None:
        """Per-device read-noise variance of W_n (per-MVM sampling), else None."""
        self._require_programmed()
        return self._var_n

    @property
    def output_scale(self) -> np.ndarray:
        """Per output column (G * c,): w_max x drift-compensation alpha (ADC units -> output);
        0 for the columns of an all-zero tile (or all-zero column with per-column scaling), so
        they output exact zeros instead of scaled output noise."""
        self._require_programmed()
        scale = self._w_max.reshape(-1)
        if self._alpha is not None:
            scale = scale * self._alpha
        return scale.astype(np.float32)

    @property
    def drift_compensation(self) -> np.ndarray | None:
        """The current GDC factors alpha = s0 / s(t) per output column, or None when off."""
        return None if self._alpha is None else self._alpha.copy()

    def read_weights(self) -> np.ndarray:
        """Read-out weights W_n * w_max (without GDC) at the current time, (G, r, c)."""
        return self.normalized_weights * self._w_max

    def _gemm(self, w: np.ndarray):
        groups, rows, cols = w.shape

        def gemm(xq: np.ndarray) -> np.ndarray:
            x = xq.reshape(xq.shape[0], groups, rows)
            with _BLAS.limit(limits=1, user_api="blas"):
                y = np.einsum("ngr,grc->ngc", x, w, optimize=True) if groups > 1 \
                    else x[:, 0] @ w[0]
            return np.ascontiguousarray(y, dtype=np.float32).reshape(xq.shape[0], 1, groups * cols)
        return gemm

    def _mvm_raw(self, x: np.ndarray, rng: np.random.Generator, scaled: bool,
                 stats: SaturationStats | None,
                 weights: tuple[np.ndarray, np.ndarray | None] | None = None) -> np.ndarray:
        n = x.shape[0]
        out = np.empty((n, 1, self.out_size), np.float32)
        col_scale = self.output_scale if scaled else np.ones(self.out_size, np.float32)
        w_n, var_n = (self._w_n, self._var_n) if weights is None else weights
        var_gemm = self._gemm(var_n) if var_n is not None else None
        if var_gemm is not None:
            base = var_gemm
            var_gemm = lambda xq: base(xq * xq)  # noqa: E731  (variance of sum x_i w_i)
        analog_pass(x.reshape(n, 1, -1), self._gemm(w_n), out, col_scale, 2,
                    self.config.periphery, rng, accumulate=False, var_gemm=var_gemm, stats=stats)
        return out.reshape(n, self.out_size)

    def mvm(self, x: np.ndarray) -> np.ndarray:
        """Analog matrix-vector products of a batch: x (N, in_size) -> y (N, out_size), in the
        units of the weights times the inputs."""
        self._require_programmed()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.in_size:
            raise ValueError(f"x must have shape (N, {self.in_size}), got {x.shape}")
        check_finite(x, "x")
        return self._mvm_raw(x, self._mvm_rng, scaled=True, stats=self.stats)
