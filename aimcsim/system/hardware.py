"""The chip the system model maps a network onto: :class:`HardwareConfig`.

Defaults follow ``docs/physics.md`` section 8 (Le Gallo et al., Nat. Electron. 2023;
Khaddam-Aljameh et al. 2022; ISAAC, Shafiee et al. 2016):

* 64 cores ("tiles") of 256 x 256 PCM unit cells, 8-bit inputs and outputs, 1 GHz, one ADC per
  column.
* 8-bit SAR ADC: 1.56 pJ and 0.78 ns per conversion (ISAAC).
* An MVM's latency is set by the input encoding and the ADC, not by the matrix size:
  PWM inputs need ``2^(b-1) - 1`` clock steps for signed ``b``-bit inputs (one integration, one
  conversion per column); bit-serial inputs need ``b`` integrations, each followed by a
  conversion.
* About 10 TOPS/W at the core: the array energy per MAC (:attr:`HardwareConfig.energy_per_mac_j`)
  defaults to what is left of a 10 TOPS/W budget for a fully used 256 x 256 core after the
  ADC and DAC energy (see :meth:`HardwareConfig.calibrated`).

Assumptions that are not from physics.md (they are config fields; change them freely):
DAC energy 0.1 pJ per input value, data movement 1 pJ per byte (the order of an on-chip SRAM
access, Horowitz ISSCC 2014), 0.1 pJ per digital operation (8/16-bit integer add or multiply,
same source), a 32 GB/s link per layer (32 bytes per clock), 64 digital operations per clock
per layer.

Units: seconds, hertz, joules, bytes. Field names carry the unit (``_s``, ``_hz``, ``_j``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from aimcsim.validation import check_float, check_int

INPUT_MODES = ("pwm", "bit_serial")

#: core efficiency that calibrates the default array energy (physics.md section 8), TOPS/W
DEFAULT_CORE_TOPS_PER_W = 10.0
_DEFAULT_ADC_J = 1.56e-12
_DEFAULT_DAC_J = 0.1e-12


def _mac_energy_for(core_tops_per_w: float, rows: int, cols: int, phases: int,
                    conversions_per_column: int, adc_j: float, dac_j: float) -> float:
    """Array energy per MAC and read phase (J) that makes a fully used rows x cols tile reach
    ``core_tops_per_w`` (2 ops per MAC) once the ADC and DAC energy of one MVM are paid."""
    if not core_tops_per_w > 0:
        raise ValueError(f"core_tops_per_w must be > 0, got {core_tops_per_w}")
    budget = 2.0 * rows * cols / (core_tops_per_w * 1e12)
    periphery = cols * conversions_per_column * adc_j + rows * dac_j
    if budget <= periphery:
        raise ValueError(f"core_tops_per_w={core_tops_per_w} leaves no energy for the array: "
                         f"ADC + DAC cost {periphery:.3e} J per MVM, the budget is "
                         f"{budget:.3e} J")
    return (budget - periphery) / (phases * rows * cols)


#: 0.1935 pJ: a 256 x 256 tile with one 8-bit conversion per column reaches 10 TOPS/W
_DEFAULT_MAC_J = _mac_energy_for(DEFAULT_CORE_TOPS_PER_W, 256, 256, 1, 1, _DEFAULT_ADC_J,
                                 _DEFAULT_DAC_J)


@dataclass(frozen=True)
class HardwareConfig:
    """One analog in-memory-computing chip (defaults: physics.md section 8).

    Attributes:
        tile_rows: unit cells per tile column, i.e. matrix rows (inputs) per tile.
        tile_cols: unit cells per tile row, i.e. matrix columns (outputs) per tile.
        tiles_per_chip: crossbar tiles (cores) on one chip.
        input_bits: DAC resolution in bits (input activations).
        output_bits: ADC resolution in bits (output activations).
        signed_inputs: inputs carry a sign (PWM then needs 2^(b-1) - 1 steps, not 2^b - 1).
        input_mode: ``pwm`` (pulse-width modulated inputs, one integration) or ``bit_serial``
            (one integration and conversion per input bit).
        clock_hz: digital clock, Hz.
        pwm_step_s: duration of one PWM step, seconds (None: one clock period).
        read_phases: integrations per MVM (1: one-phase read; 4: the chip's high-precision
            four-phase read). Multiplies integration time, ADC conversions and array energy.
        adc_conversion_s: time of one ADC conversion, seconds.
        columns_per_adc: columns sharing one ADC (1: one ADC per column); conversions of the
            columns sharing an ADC are sequential.
        bus_bytes_per_s: bandwidth of the link into (and out of) one layer, bytes/second.
        digital_ops_per_cycle: digital operations (adds, multiplies, compares) one layer's
            digital unit completes per clock cycle.
        energy_per_adc_conversion_j: energy of one ADC conversion, joules.
        energy_per_dac_conversion_j: energy to apply one input value to one row for one MVM,
            joules.
        energy_per_mac_j: energy of one multiply-accumulate in the array (one used cell, one
            MVM, one read phase), joules.
        energy_per_byte_j: energy to move one byte between layers (bus + buffer), joules.
        energy_per_digital_op_j: energy of one digital operation, joules.
    """

    tile_rows: int = 256
    tile_cols: int = 256
    tiles_per_chip: int = 64
    input_bits: int = 8
    output_bits: int = 8
    signed_inputs: bool = True
    input_mode: str = "pwm"
    clock_hz: float = 1e9
    pwm_step_s: float | None = None
    read_phases: int = 1
    adc_conversion_s: float = 0.78e-9
    columns_per_adc: int = 1
    bus_bytes_per_s: float = 32e9
    digital_ops_per_cycle: int = 64
    energy_per_adc_conversion_j: float = _DEFAULT_ADC_J
    energy_per_dac_conversion_j: float = _DEFAULT_DAC_J
    energy_per_mac_j: float = _DEFAULT_MAC_J
    energy_per_byte_j: float = 1e-12
    energy_per_digital_op_j: float = 0.1e-12

    def __post_init__(self) -> None:
        for name in ("tile_rows", "tile_cols", "tiles_per_chip", "input_bits", "output_bits",
                     "read_phases", "columns_per_adc", "digital_ops_per_cycle"):
            check_int(getattr(self, name), name, 1)  # (a frozen dataclass: checked only)
        if self.input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {self.input_mode!r}")
        if self.signed_inputs and self.input_mode == "pwm" and self.input_bits < 2:
            raise ValueError("input_bits must be >= 2 for signed PWM inputs (one bit is the sign)")
        for name in ("clock_hz", "adc_conversion_s", "bus_bytes_per_s"):
            check_float(getattr(self, name), name, 0, low_open=True)
        check_float(self.pwm_step_s, "pwm_step_s", 0, low_open=True, allow_none=True)
        for name in ("energy_per_adc_conversion_j", "energy_per_dac_conversion_j",
                     "energy_per_mac_j", "energy_per_byte_j", "energy_per_digital_op_j"):
            check_float(getattr(self, name), name, 0)

    # ------------------------------------------------------------------ derived timing
    @property
    def clock_period_s(self) -> float:
        """One clock cycle, seconds."""
        return 1.0 / self.clock_hz

    @property
    def pwm_steps(self) -> int:
        """PWM steps of one input: 2^(b-1) - 1 for signed inputs, 2^b - 1 otherwise."""
        bits = self.input_bits - 1 if self.signed_inputs else self.input_bits
        return 2 ** bits - 1

    @property
    def conversion_round_s(self) -> float:
        """Time to convert every column of a tile once, seconds (ADCs work in parallel)."""
        return self.columns_per_adc * self.adc_conversion_s

    @property
    def conversions_per_column(self) -> int:
        """ADC conversions of one column per MVM (phases x input bits for bit-serial)."""
        per_phase = 1 if self.input_mode == "pwm" else self.input_bits
        return self.read_phases * per_phase

    @property
    def mvm_latency_s(self) -> float:
        """Latency of one MVM on a tile, seconds; independent of the matrix size.

        PWM: phases x (steps x step time + one conversion round).
        Bit-serial: phases x bits x (one clock of integration + one conversion round).
        """
        if self.input_mode == "pwm":
            step = self.pwm_step_s if self.pwm_step_s is not None else self.clock_period_s
            return self.read_phases * (self.pwm_steps * step + self.conversion_round_s)
        return self.read_phases * self.input_bits * (self.clock_period_s
                                                     + self.conversion_round_s)

    @property
    def activation_bytes(self) -> int:
        """Bytes of one activation value on the bus (ceil(max(input, output bits) / 8))."""
        return math.ceil(max(self.input_bits, self.output_bits) / 8)

    @property
    def digital_ops_per_s(self) -> float:
        """Digital operations per second of one layer's digital unit."""
        return self.digital_ops_per_cycle * self.clock_hz

    @property
    def cells_per_tile(self) -> int:
        return self.tile_rows * self.tile_cols

    # ------------------------------------------------------------------ derived energy
    def mvm_energy_j(self, rows: int, cols: int) -> float:
        """Energy of one MVM using ``rows`` x ``cols`` cells of one tile, joules
        (array + ADC of the used columns + DAC of the used rows)."""
        if not (0 < rows <= self.tile_rows and 0 < cols <= self.tile_cols):
            raise ValueError(f"rows, cols must be in 1..{self.tile_rows}, 1..{self.tile_cols}; "
                             f"got {rows}, {cols}")
        return (self.read_phases * rows * cols * self.energy_per_mac_j
                + cols * self.conversions_per_column * self.energy_per_adc_conversion_j
                + rows * self.energy_per_dac_conversion_j)

    @property
    def core_tops_per_w(self) -> float:
        """TOPS/W of one fully used tile (2 ops per MAC, array + ADC + DAC only)."""
        ops = 2.0 * self.cells_per_tile
        return ops / self.mvm_energy_j(self.tile_rows, self.tile_cols) / 1e12

    @property
    def peak_tops(self) -> float:
        """Tera-operations per second with every cell of every tile busy (2 ops per MAC)."""
        return 2.0 * self.cells_per_tile * self.tiles_per_chip / self.mvm_latency_s / 1e12

    # ------------------------------------------------------------------ construction
    @classmethod
    def calibrated(cls, core_tops_per_w: float = DEFAULT_CORE_TOPS_PER_W,
                   **overrides) -> "HardwareConfig":
        """A config whose ``energy_per_mac_j`` makes a fully used tile reach
        ``core_tops_per_w`` (TOPS/W) given its ADC and DAC energy and input mode."""
        if "energy_per_mac_j" in overrides:
            raise ValueError("energy_per_mac_j is what calibrated() computes; do not pass it")
        probe = cls(**overrides)
        mac = _mac_energy_for(core_tops_per_w, probe.tile_rows, probe.tile_cols,
                              probe.read_phases, probe.conversions_per_column,
                              probe.energy_per_adc_conversion_j,
                              probe.energy_per_dac_conversion_j)
        return replace(probe, energy_per_mac_j=mac)

    def replace(self, **changes) -> "HardwareConfig":
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "HardwareConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown HardwareConfig fields: {sorted(unknown)}")
        return cls(**data)
