"""HardwareConfig: physics.md section 8 defaults, MVM latency model, energy calibration and
validation."""
from __future__ import annotations

import math

import pytest

from aimcsim.system import HardwareConfig


def test_defaults_follow_physics_section_8():
    hw = HardwareConfig()
    assert (hw.tile_rows, hw.tile_cols, hw.tiles_per_chip) == (256, 256, 64)
    assert (hw.input_bits, hw.output_bits, hw.clock_hz) == (8, 8, 1e9)
    assert hw.columns_per_adc == 1
    assert hw.energy_per_adc_conversion_j == pytest.approx(1.56e-12)
    assert hw.adc_conversion_s == pytest.approx(0.78e-9)
    assert hw.activation_bytes == 1
    # about 10 TOPS/W at the core, by calibration of the array energy
    assert hw.core_tops_per_w == pytest.approx(10.0)


def test_mvm_latency_depends_on_input_bits_and_adc_not_matrix_size():
    hw = HardwareConfig()
    # signed 8-bit PWM: 127 steps of 1 ns, then one conversion of 0.78 ns
    assert hw.mvm_latency_s == pytest.approx(127e-9 + 0.78e-9)
    assert HardwareConfig(signed_inputs=False).mvm_latency_s == pytest.approx(255.78e-9)
    assert HardwareConfig(tile_rows=512, tile_cols=512).mvm_latency_s == hw.mvm_latency_s
    serial = HardwareConfig(input_mode="bit_serial")
    assert serial.mvm_latency_s == pytest.approx(8 * (1e-9 + 0.78e-9))
    assert serial.conversions_per_column == 8
    shared = HardwareConfig(input_mode="bit_serial", columns_per_adc=128)
    assert shared.mvm_latency_s == pytest.approx(8 * (1e-9 + 128 * 0.78e-9))
    four = HardwareConfig(read_phases=4)
    assert four.mvm_latency_s == pytest.approx(4 * hw.mvm_latency_s)
    assert four.conversions_per_column == 4


def test_peak_throughput_is_close_to_the_published_chip():
    # Le Gallo 2023: 63.1 TOPS (8-bit, one-phase); the model: 64 x 2 x 65536 / 127.78 ns
    assert HardwareConfig().peak_tops == pytest.approx(2 * 65536 * 64 / 127.78e-9 / 1e12)
    assert 55 < HardwareConfig().peak_tops < 70


def test_mvm_energy_and_calibration():
    hw = HardwareConfig()
    full = hw.mvm_energy_j(256, 256)
    assert full == pytest.approx(2 * 65536 / 10e12)
    part = hw.mvm_energy_j(16, 8)
    assert part == pytest.approx(16 * 8 * hw.energy_per_mac_j + 8 * 1.56e-12 + 16 * 0.1e-12)
    serial = HardwareConfig.calibrated(5.0, input_mode="bit_serial")
    assert serial.core_tops_per_w == pytest.approx(5.0)
    with pytest.raises(ValueError, match="core_tops_per_w"):
        HardwareConfig.calibrated(1e6)
    with pytest.raises(ValueError, match="energy_per_mac_j"):
        HardwareConfig.calibrated(10.0, energy_per_mac_j=1e-13)
    with pytest.raises(ValueError, match="rows, cols"):
        hw.mvm_energy_j(300, 1)


@pytest.mark.parametrize("field,value", [
    ("tile_rows", 0), ("tiles_per_chip", 1.5), ("input_bits", True), ("input_mode", "analog"),
    ("clock_hz", 0.0), ("clock_hz", math.inf), ("adc_conversion_s", -1.0),
    ("bus_bytes_per_s", 0), ("energy_per_adc_conversion_j", -1e-12), ("pwm_step_s", 0.0),
    ("read_phases", 0)])
def test_bad_fields_name_the_argument(field, value):
    with pytest.raises(ValueError, match=field):
        HardwareConfig(**{field: value})


def test_round_trip_and_unknown_fields():
    hw = HardwareConfig(input_mode="bit_serial", tiles_per_chip=8)
    assert HardwareConfig.from_dict(hw.to_dict()) == hw
    with pytest.raises(ValueError, match="unknown"):
        HardwareConfig.from_dict({"tiles": 3})
    assert hw.replace(tile_rows=128).tile_rows == 128
