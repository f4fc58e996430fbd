"""Configuration of analog tiles: device model, periphery, mapping, drift compensation.

Everything round-trips through JSON (:meth:`AnalogConfig.to_dict` / :meth:`AnalogConfig.from_dict`).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields, is_dataclass

from aimcsim.devices import DeviceModel, PCMDevice, device_from_dict
from aimcsim.devices.pcm_like import PCMLikeDevice
from aimcsim.tiles.ir_drop import IR_DROP_METHODS, MAX_SEGMENT_OHM
from aimcsim.tiles.periphery import PeripheryConfig
from aimcsim.validation import MAX_TILE_SIDE, check_bool, check_choice, check_float, check_int

WEIGHT_SCALING = ("tile", "column")
#: How the two devices of a pair drift after programming (see :class:`MappingConfig`).
PAIR_DRIFT = ("independent", "net")
READ_NOISE_SAMPLING = ("per_read", "per_mvm")
GDC_GRANULARITY = ("tile", "column")
GDC_CALIBRATION = ("dense", "one_hot")
GDC_REFERENCE = ("read", "programmed")
GEMM_PRECISION = ("bfloat16", "float32")
#: Values that fields added since had before they existed: a configuration stored without
#: them (a saved layer, a study's record) was computed with these, not with today's defaults.
STORED_BEFORE = {"gemm_precision": "float32"}
#: Upper limit of the full-scale read voltage, volts.
MAX_READ_VOLTAGE_V = 10.0


@dataclass
class MappingConfig:
    """How a weight matrix is laid onto tiles.

    Attributes:
        rows: tile rows (inputs), 1 to 65536 (``MAX_TILE_SIDE``); default 512.
        cols: tile columns (outputs), 1 to 65536; default 512.
        weight_scaling: ``tile``: w_max = max|W| of the tile; ``column``: one w_max per output
            column. The largest |w| maps to g_max.
        pair_drift: how a pair's two devices evolve after programming (physics.md section 1).
            ``independent`` (default): each device drifts and read-noises on its own,
            G+_read - G-_read. ``net`` (aihwkit 1.1.0's PCM model): the tile keeps only the
            net programmed conductance W_prog = G+_prog - G-_prog (µS), re-splits it onto
            one device (G'+ = r max(W_prog, 0), G'- = r max(-W_prog, 0), with
            r = g_max / max|W_prog| over the tile, or over the column with ``column``
            scaling), and drifts and read-noises that pair: each re-split device keeps the
            drift exponent drawn at programming for the device in its place (so a pair whose
            net sign flipped drifts with its idle device's exponent) and its Q_s comes from
            its re-split conductance; the read weight is (G'+_read - G'-_read) / r. PCM-like
            devices only (those with a drift exponent and Q_s); the torch sampling of
            device-model hardware-aware training does not model it (ValueError).
    """

    rows: int = 512
    cols: int = 512
    weight_scaling: str = "tile"
    pair_drift: str = "independent"

    def __post_init__(self) -> None:
        self.rows = check_int(self.rows, "rows", 1, MAX_TILE_SIDE)
        self.cols = check_int(self.cols, "cols", 1, MAX_TILE_SIDE)
        check_choice(self.weight_scaling, WEIGHT_SCALING, "weight_scaling")
        check_choice(self.pair_drift, PAIR_DRIFT, "pair_drift")


@dataclass
class DriftCompensationConfig:
    """Global drift compensation (GDC, physics.md section 6).

    Right after programming (t = 0) a fixed calibration batch is read through the tile:
    s0 = mean |y|. At time t: s(t) likewise, and outputs are multiplied by alpha = s0 / s(t).

    Attributes:
        enabled: apply GDC.
        granularity: ``tile`` (one alpha per tile) or ``column`` (one per output column).
        calibration_vectors: size of the ``dense`` calibration batch, 1 to 65536.
        calibration: the calibration inputs. ``dense``: ``calibration_vectors`` inputs uniform
            in [-1, 1] from a fixed seed (every device contributes to every output; output
            noise averages out). ``one_hot``: the identity, one input row at a time, as
            aihwkit 1.1.0 reads its tiles; each output then holds one device and the output
            noise and ADC step inflate mean |y| as weights drift down, so alpha
            under-compensates (measured in docs/physics.md).
        reference: what s0 is measured on. ``read`` (default): a read right after programming
            (t = 0, read noise included), as a chip measures it. ``programmed``: the programmed
            conductances without read noise (output noise and ADC still apply), as aihwkit
            1.1.0 does; with one-hot calibration the read noise at t = 0 raises s0, and so
            alpha, by about 0.2% on ResNet-32 (physics.md, "Global drift compensation").
    """

    enabled: bool = True
    granularity: str = "tile"
    calibration_vectors: int = 32
    calibration: str = "dense"
    reference: str = "read"

    def __post_init__(self) -> None:
        self.enabled = check_bool(self.enabled, "enabled")
        check_choice(self.granularity, GDC_GRANULARITY, "granularity")
        self.calibration_vectors = check_int(self.calibration_vectors, "calibration_vectors", 1,
                                             MAX_TILE_SIDE)
        check_choice(self.calibration, GDC_CALIBRATION, "calibration")
        check_choice(self.reference, GDC_REFERENCE, "reference")


@dataclass
class IRDropConfig:
    """Finite wire resistance of the crossbar (IR drop; physics.md, "IR drop").

    Row wires are driven at the column-0 end by the DAC, column wires are held at virtual
    ground by the sense amplifier past the last row; each segment between neighbouring
    crosspoints (and to the driver or the sense amplifier) has the given resistance. The
    circuit is linear, so IR drop is a fixed distortion of the conductances that the tile
    folds into its weights at every read (``aimcsim/tiles/ir_drop.py``); MVMs cost the same.
    Zero resistance (the default) leaves every result unchanged, bit for bit.

    Attributes:
        r_row_ohm: resistance of one row-wire segment, ohms (0 to 1e6).
        r_col_ohm: resistance of one column-wire segment, ohms (0 to 1e6).
        read_voltage_v: the row voltage of a full-scale input (normalised input 1), volts
            (> 0, <= 10). Outputs in normalised units do not depend on it (the circuit is
            linear); it sets the volts and microamperes of the exact nodal reference.
        method: ``decoupled`` (default: each wire solved exactly as a ladder, the row and
            column wires decoupled; O(rows x cols) per read) or ``exact`` (the exact nodal
            solve of every unit input, one sparse factorisation per array and read: seconds
            for 256 x 256 arrays, minutes for 512 x 512).
    """

    r_row_ohm: float = 0.0
    r_col_ohm: float = 0.0
    read_voltage_v: float = 0.2
    method: str = "decoupled"

    def __post_init__(self) -> None:
        for name in ("r_row_ohm", "r_col_ohm"):
            setattr(self, name, check_float(getattr(self, name), name, 0, MAX_SEGMENT_OHM))
        self.read_voltage_v = check_float(self.read_voltage_v, "read_voltage_v", 0,
                                          MAX_READ_VOLTAGE_V, low_open=True)
        check_choice(self.method, IR_DROP_METHODS, "method")

    @property
    def enabled(self) -> bool:
        """True when some wire has resistance."""
        return self.r_row_ohm > 0 or self.r_col_ohm > 0


@dataclass
class AnalogConfig:
    """Everything that defines an analog tile.

    Attributes:
        device: the conductance device model (default: PCM of physics.md).
        periphery: DAC, ADC, output noise, noise and bound management.
        mapping: tile size and weight scaling.
        drift_compensation: GDC settings.
        read_noise_sampling: ``per_read``: one read-noise draw per "read the network at time t"
            (weights fixed for a whole evaluation); ``per_mvm``: fresh read noise at every MVM
            (what a chip does; costs one extra GEMM of x^2 with the per-device variances).
        ir_drop: wire resistance of the arrays (default: none).
        gemm_precision: the number format of the GEMM at the heart of every inference pass of
            programmed tiles (both backends). ``bfloat16`` (default): the DAC outputs and the
            read weights W_n are rounded to bfloat16 (8-bit significand, nearest, ties to
            even: relative error at most 2^-8), their products summed in float32, and each
            GEMM output rounded to bfloat16 before output noise and ADC. The rounding is far
            below the physics it sits in (a weight's 2^-8 against programming noise of
            several percent of g_max; an output's against output noise of 0.06 ADC units and
            a 9-bit ADC step of 0.047): its measured error and accuracy cost are in
            docs/physics.md ("GEMM precision"). Where the CPU has native bfloat16
            convolutions (AVX512-BF16 or AMX) the convolutions run in bfloat16 (1.7-2.8x
            faster than float32: benchmarks/bench_gemm_precision.py); elsewhere the same roundings are applied around a float32
            GEMM, so results agree across machines up to the order of float32 sums.
            ``float32``: every operand and output in float32 (the exact reference;
            ``AnalogConfig.ideal()`` uses it). Hardware-aware training passes (gradients)
            compute in float32.
    """

    device: DeviceModel = field(default_factory=PCMDevice)
    periphery: PeripheryConfig = field(default_factory=PeripheryConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    drift_compensation: DriftCompensationConfig = field(default_factory=DriftCompensationConfig)
    read_noise_sampling: str = "per_read"
    ir_drop: IRDropConfig = field(default_factory=IRDropConfig)
    gemm_precision: str = "bfloat16"

    def __post_init__(self) -> None:
        for name, kind in (("device", DeviceModel), ("periphery", PeripheryConfig),
                           ("mapping", MappingConfig),
                           ("drift_compensation", DriftCompensationConfig),
                           ("ir_drop", IRDropConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name} must be a {kind.__name__}, got "
                                 f"{type(getattr(self, name)).__name__}")
        check_choice(self.read_noise_sampling, READ_NOISE_SAMPLING, "read_noise_sampling")
        check_choice(self.gemm_precision, GEMM_PRECISION, "gemm_precision")
        if self.mapping.pair_drift == "net" and not isinstance(self.device, PCMLikeDevice):
            raise ValueError(f"mapping.pair_drift='net' needs a PCM-like device (a drift "
                             f"exponent and a read-noise Q_s per device, e.g. PCMDevice or "
                             f"HermesPCMDevice), got {type(self.device).__name__}")

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {"device": self.device.to_dict(), "periphery": asdict(self.periphery),
                "mapping": asdict(self.mapping),
                "drift_compensation": asdict(self.drift_compensation),
                "read_noise_sampling": self.read_noise_sampling,
                "ir_drop": asdict(self.ir_drop), "gemm_precision": self.gemm_precision}

    @classmethod
    def from_dict(cls, data: dict) -> "AnalogConfig":
        """Inverse of :meth:`to_dict`; unknown keys or invalid values raise ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"an AnalogConfig dict is needed, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown AnalogConfig keys {sorted(unknown)}; known: {sorted(known)}")
        kwargs = {}
        if "device" in data:
            kwargs["device"] = device_from_dict(data["device"])
        for name, kind in (("periphery", PeripheryConfig), ("mapping", MappingConfig),
                           ("drift_compensation", DriftCompensationConfig),
                           ("ir_drop", IRDropConfig)):
            if name in data:
                kwargs[name] = _dataclass_from_dict(kind, data[name])
        for name in ("read_noise_sampling", "gemm_precision"):
            if name in data:
                kwargs[name] = data[name]
        return cls(**kwargs)

    @classmethod
    def from_stored(cls, data: dict) -> "AnalogConfig":
        """:meth:`from_dict` of a configuration aimcsim stored itself (a saved layer, a
        study's record): a field it lacks gets the value it had before the field existed
        (:data:`STORED_BEFORE`), not today's default, so old results keep computing as they
        did."""
        if not isinstance(data, dict):
            raise ValueError(f"an AnalogConfig dict is needed, got {type(data).__name__}")
        return cls.from_dict({**STORED_BEFORE, **data})

    def replace(self, **changes) -> "AnalogConfig":
        """A deep copy with some top-level fields or dotted sub-fields changed, e.g.
        ``config.replace(**{"periphery.out_noise": 0.0, "read_noise_sampling": "per_mvm"})``."""
        new = copy.deepcopy(self)
        for key, value in changes.items():
            target = new
            *path, last = key.split(".")
            for part in path:
                if part not in _field_names(target):
                    raise ValueError(f"unknown config field {key!r}")
                target = getattr(target, part)
            if last not in _field_names(target):
                raise ValueError(f"unknown config field {key!r}")
            if isinstance(target, DeviceModel) and not isinstance(value, type(target.config)):
                raise ValueError(f"{key} must be a {type(target.config).__name__}, got "
                                 f"{type(value).__name__}")
            setattr(target, last, value)
            if hasattr(target, "__post_init__"):
                target.__post_init__()
        new.__post_init__()
        return new

    @classmethod
    def ideal(cls) -> "AnalogConfig":
        """Every non-ideality off: exact device, ideal converters, no GDC."""
        from aimcsim.devices import ideal_device
        return cls(device=ideal_device(), periphery=PeripheryConfig.ideal(),
                   drift_compensation=DriftCompensationConfig(enabled=False),
                   gemm_precision="float32")


def _field_names(target) -> set[str]:
    """The fields ``replace`` may set on ``target``: a dataclass's fields, a device's config."""
    if isinstance(target, DeviceModel):
        return {"config"}
    return {f.name for f in fields(target)} if is_dataclass(target) else set()


def _dataclass_from_dict(kind, data: dict):
    if not isinstance(data, dict):
        raise ValueError(f"{kind.__name__} must be given as a dict, got {type(data).__name__}")
    known = {f.name for f in fields(kind)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {kind.__name__} keys {sorted(unknown)}; known: {sorted(known)}")
    return kind(**data)
