"""Energy per inference and its breakdown; TOPS and TOPS/W.

Per MVM of an analog layer with ``rows x cols`` weights per group on ``row_tiles x col_tiles``
tiles (joules):

* array: ``read_phases x rows x cols x groups x energy_per_mac_j`` (only used cells draw
  current);
* ADC: every row tile converts each of its used columns ``conversions_per_column`` times
  (1 per phase for PWM, 1 per bit and phase for bit-serial):
  ``row_tiles x cols x groups x conversions_per_column x energy_per_adc_conversion_j``;
* DAC: every column tile drives each used row once:
  ``col_tiles x rows x groups x energy_per_dac_conversion_j``.

Per sample, over all layers: MVMs x the above; data movement: every activation byte is written
once by its producer and read once by each consumer (``(input + output bytes) x
energy_per_byte_j`` per layer) plus the partial sums of row tiles moved to their adder;
digital: bias, batch-norm, activations, pooling, residual adds and partial-sum adds, each
``energy_per_digital_op_j``. Operations: 2 per MAC of the analog layers.
Not modelled: leakage and idle power, clock and control, weight programming, off-chip memory
(DRAM) and host transfers, im2col line buffers inside a core, repeated MVMs of bound management.
"""
from __future__ import annotations

from dataclasses import dataclass

from aimcsim.system.hardware import HardwareConfig
from aimcsim.system.mapping import ChipMapping
from aimcsim.system.stages import Stage, StageGraph

COMPONENTS = ("adc", "dac", "array", "movement", "digital")


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy of one sample (inference), joules, and its operation count."""

    adc_j: float = 0.0
    dac_j: float = 0.0
    array_j: float = 0.0
    movement_j: float = 0.0
    digital_j: float = 0.0
    ops: int = 0

    @property
    def total_j(self) -> float:
        return self.adc_j + self.dac_j + self.array_j + self.movement_j + self.digital_j

    @property
    def core_j(self) -> float:
        """Array + ADC + DAC (what a core-level TOPS/W figure counts), joules."""
        return self.adc_j + self.dac_j + self.array_j

    @property
    def tops_per_w(self) -> float:
        """Operations per joule / 1e12, everything counted."""
        return self.ops / self.total_j / 1e12 if self.total_j > 0 else 0.0

    @property
    def core_tops_per_w(self) -> float:
        return self.ops / self.core_j / 1e12 if self.core_j > 0 else 0.0

    def __add__(self, other: "EnergyBreakdown") -> "EnergyBreakdown":
        return EnergyBreakdown(self.adc_j + other.adc_j, self.dac_j + other.dac_j,
                               self.array_j + other.array_j,
                               self.movement_j + other.movement_j,
                               self.digital_j + other.digital_j, self.ops + other.ops)

    def shares(self) -> dict[str, float]:
        """Fraction of the total per component."""
        total = self.total_j
        return {c: (getattr(self, f"{c}_j") / total if total else 0.0) for c in COMPONENTS}

    def to_dict(self) -> dict:
        return {**{f"{c}_j": getattr(self, f"{c}_j") for c in COMPONENTS},
                "total_j": self.total_j, "ops": self.ops, "tops_per_w": self.tops_per_w,
                "core_tops_per_w": self.core_tops_per_w}


def layer_energy(stage: Stage, mapping: ChipMapping, hardware: HardwareConfig | None = None
                 ) -> EnergyBreakdown:
    """Energy of one layer for one sample (see the module docstring)."""
    hardware = hardware or mapping.hardware
    act = hardware.activation_bytes
    moved = (stage.input_numel + stage.output_numel) * act
    digital_ops = stage.digital_ops
    adc = dac = array = 0.0
    ops = 0
    if stage.is_analog:
        layer = mapping[stage.name]
        mvms, g = stage.mvms, layer.groups
        array = mvms * hardware.read_phases * layer.rows * layer.cols * g \
            * hardware.energy_per_mac_j
        adc = mvms * layer.row_tiles * layer.cols * g * hardware.conversions_per_column \
            * hardware.energy_per_adc_conversion_j
        dac = mvms * layer.col_tiles * layer.rows * g * hardware.energy_per_dac_conversion_j
        partial = (layer.row_tiles - 1) * layer.cols * g * mvms
        digital_ops += partial
        moved += partial * act
        ops = 2 * stage.macs
    return EnergyBreakdown(adc_j=adc, dac_j=dac, array_j=array,
                           movement_j=moved * hardware.energy_per_byte_j,
                           digital_j=digital_ops * hardware.energy_per_digital_op_j, ops=ops)


def energy_per_inference(stages: StageGraph, mapping: ChipMapping,
                         hardware: HardwareConfig | None = None
                         ) -> tuple[EnergyBreakdown, dict[str, EnergyBreakdown]]:
    """Total energy of one sample and the per-layer breakdown (joules)."""
    hardware = hardware or mapping.hardware
    per_layer = {s.name: layer_energy(s, mapping, hardware) for s in stages}
    total = EnergyBreakdown()
    for e in per_layer.values():
        total = total + e
    return total, per_layer


def energy_rows(per_layer: dict[str, EnergyBreakdown]) -> list[dict]:
    """One table row per layer (nanojoules)."""
    return [{"layer": name, **{f"{c}_nj": getattr(e, f"{c}_j") * 1e9 for c in COMPONENTS},
             "total_nj": e.total_j * 1e9} for name, e in per_layer.items()]
