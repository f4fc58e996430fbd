"""Tiles: mapping to differential pairs, programming once and reading at any time, the MVM
limits, splitting, drift compensation, reproducibility and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimcsim.devices import PCMDevice
from aimcsim.tiles import (AnalogConfig, AnalogTile, NotProgrammedError, PeripheryConfig,
                           TiledMatrix)

YEAR = 365 * 24 * 3600.0


def ideal(**changes) -> AnalogConfig:
    return AnalogConfig.ideal().replace(**changes)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 70), cols=st.integers(1, 40), batch=st.integers(1, 8),
       seed=st.integers(0, 1000))
def test_ideal_tile_is_exact_matmul(rows, cols, batch, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    x = rng.standard_normal((batch, rows)).astype(np.float32)
    tile = AnalogTile(w, ideal())
    tile.program(seed)
    tile.set_time(rng.uniform(0, 1e6))
    np.testing.assert_allclose(tile.mvm(x), x @ w, rtol=1e-4, atol=1e-4 * np.abs(x @ w).max())


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(2, 90), cols=st.integers(2, 60), tile_rows=st.integers(1, 32),
       tile_cols=st.integers(1, 32), seed=st.integers(0, 1000))
def test_split_tiles_with_noise_off_equal_one_big_tile(rows, cols, tile_rows, tile_cols, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    x = rng.standard_normal((5, rows)).astype(np.float32)
    big = TiledMatrix(w, ideal())
    small = TiledMatrix(w, ideal(**{"mapping.rows": tile_rows, "mapping.cols": tile_cols}))
    assert len(small.row_blocks) == -(-rows // tile_rows)
    assert len(small.col_blocks) == -(-cols // tile_cols)
    for m in (big, small):
        m.program(seed)
    np.testing.assert_allclose(small.mvm(x), big.mvm(x), rtol=1e-4,
                               atol=1e-4 * np.abs(x @ w).max())


def test_differential_pair_mapping_and_readout():
    w = np.array([[0.5, -1.0], [0.0, 0.25]], np.float32)
    tile = AnalogTile(w, ideal())
    tile.program(0)
    g_max = tile.config.device.g_max
    state = tile._state
    np.testing.assert_allclose(state.g_target[0, 0], np.maximum(w, 0) / 1.0 * g_max)
    np.testing.assert_allclose(state.g_target[1, 0], np.maximum(-w, 0) / 1.0 * g_max)
    np.testing.assert_allclose(tile.read_weights()[0], w, atol=1e-6)


def test_column_scaling_maps_each_columns_max_to_g_max():
    w = np.array([[0.1, -4.0], [0.05, 2.0]], np.float32)
    tile = AnalogTile(w, ideal(**{"mapping.weight_scaling": "column"}))
    tile.program(0)
    g_max = tile.config.device.g_max
    g = tile._state.g_target[0, 0] + tile._state.g_target[1, 0]
    np.testing.assert_allclose(g.max(axis=0), [g_max, g_max])
    np.testing.assert_allclose(tile.read_weights()[0], w, rtol=1e-6)


def test_same_seed_same_numbers_and_tiles_are_independent():
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (100, 100)).astype(np.float32)
    x = rng.standard_normal((4, 100)).astype(np.float32)
    outs = []
    for _ in range(2):
        tile = AnalogTile(w, AnalogConfig())
        tile.program(7)
        tile.set_time(3600.0)
        outs.append(tile.mvm(x))
    np.testing.assert_array_equal(outs[0], outs[1])
    m = TiledMatrix(np.concatenate([w, w], axis=1),
                    AnalogConfig().replace(**{"mapping.cols": 100}))
    m.program(3)
    a, b = (t._state.g_prog - t._state.g_target for t in m.all_tiles)
    active = m.all_tiles[0]._state.active & m.all_tiles[1]._state.active
    corr = np.corrcoef(a[active], b[active])[0, 1]
    assert abs(corr) < 4 / np.sqrt(active.sum())


def test_reading_at_new_time_does_not_reprogram():
    w = np.random.default_rng(1).uniform(-1, 1, (64, 32)).astype(np.float32)
    tile = AnalogTile(w, AnalogConfig())
    tile.program(0)
    g_prog = tile._state.g_prog.copy()
    nu = tile._state.nu.copy()
    for t in (1.0, 3600.0, YEAR):
        tile.set_time(t)
        np.testing.assert_array_equal(tile._state.g_prog, g_prog)
        np.testing.assert_array_equal(tile._state.nu, nu)
    tile.set_time(3600.0, seed=5)
    first = tile.normalized_weights.copy()
    tile.set_time(3600.0, seed=5)
    np.testing.assert_array_equal(tile.normalized_weights, first)
    tile.set_time(3600.0, seed=6)
    assert not np.array_equal(tile.normalized_weights, first)


def _output_scale(tile: AnalogTile, x: np.ndarray) -> float:
    return float(np.abs(tile.mvm(x)).mean())


def test_gdc_restores_the_output_scale_after_one_year():
    rng = np.random.default_rng(2)
    w = rng.uniform(-1, 1, (256, 128)).astype(np.float32)
    x = rng.uniform(-1, 1, (64, 256)).astype(np.float32)
    on = AnalogTile(w, AnalogConfig())
    off = AnalogTile(w, AnalogConfig().replace(**{"drift_compensation.enabled": False}))
    for tile in (on, off):
        tile.program(4)
    s0 = _output_scale(on, x)
    on.set_time(YEAR)
    off.set_time(YEAR)
    assert _output_scale(off, x) < 0.8 * s0  # drift alone shrinks the outputs
    assert abs(_output_scale(on, x) / s0 - 1) < 0.02
    assert on.drift_compensation[0] > 1.3


def test_one_hot_calibration_under_compensates_like_aihwkit():
    """One-hot calibration reads single devices through the output noise and ADC, so alpha
    falls short as weights drift down; the dense batch compensates closely."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((256, 64)) * 0.3).astype(np.float32)
    x = rng.uniform(-1, 1, (64, 256)).astype(np.float32)
    scales = {}
    for calibration in ("dense", "one_hot"):
        tile = AnalogTile(w, AnalogConfig().replace(
            **{"drift_compensation.calibration": calibration}))
        tile.program(4)
        s0 = _output_scale(tile, x)
        tile.set_time(YEAR)
        scales[calibration] = _output_scale(tile, x) / s0
        assert tile._calibration_inputs().shape == ((256, 256) if calibration == "one_hot"
                                                    else (32, 256))
    assert abs(scales["dense"] - 1) < 0.05
    assert scales["one_hot"] < scales["dense"] - 0.025


@pytest.mark.parametrize("ir_drop", [0.0, 5.0])
def test_gdc_reference_on_the_programmed_conductances_skips_only_the_read_noise(ir_drop):
    """``reference="programmed"`` (aihwkit's): s0 is what a tile without read noise measures
    (same programming, same output-noise draws), bit for bit, with or without IR drop; with
    one-hot calibration the read noise at t = 0 raises the ``read`` reference above it."""
    w = (np.random.default_rng(6).standard_normal((256, 64)) * 0.3).astype(np.float32)
    base = AnalogConfig(device=PCMDevice(noise_idle_devices=True)).replace(**{
        "drift_compensation.calibration": "one_hot", "ir_drop.r_row_ohm": ir_drop})
    quiet = base.replace(**{"device.config": PCMDevice(read_noise_scale=0.0,
                                                       noise_idle_devices=True).config})
    for sampling in ("per_read", "per_mvm"):
        s0 = {}
        for name, config, reference in (("programmed", base, "programmed"),
                                        ("read", base, "read"), ("quiet", quiet, "read")):
            tile = AnalogTile(w, config.replace(**{"drift_compensation.reference": reference,
                                                   "read_noise_sampling": sampling}))
            tile.program(2)
            s0[name] = tile._s0
        np.testing.assert_array_equal(s0["programmed"], s0["quiet"])
        assert s0["read"][0] > s0["programmed"][0]


def test_gdc_reference_programmed_compensates_to_the_noise_free_mean():
    """Ideal periphery, one-hot calibration, no programming noise or drift: alpha at t is
    mean|W / w_max| / mean|W_n(t)| exactly (s0 on the programmed weights)."""
    w = (np.random.default_rng(7).standard_normal((64, 32)) * 0.3).astype(np.float32)
    config = AnalogConfig(device=PCMDevice(prog_noise_scale=0.0, drift_scale=0.0),
                          periphery=PeripheryConfig.ideal()).replace(**{
        "drift_compensation.calibration": "one_hot",
        "drift_compensation.reference": "programmed"})
    tile = AnalogTile(w, config)
    tile.program(1)
    tile.set_time(86400.0)
    expected = np.abs(w / np.abs(w).max()).mean() / np.abs(tile.normalized_weights).mean()
    np.testing.assert_allclose(tile.drift_compensation, expected, rtol=1e-5)
    assert abs(expected - 1) > 1e-4  # the read noise moved mean|W_n|


def test_per_mvm_read_noise_adds_variance_but_keeps_the_mean():
    rng = np.random.default_rng(3)
    w = rng.uniform(-1, 1, (128, 16)).astype(np.float32)
    x = np.repeat(rng.uniform(-1, 1, (1, 128)).astype(np.float32), 4000, axis=0)
    quiet = PeripheryConfig(inp_bits=None, out_bits=None, out_bound=None, out_noise=0.0)
    cfg = AnalogConfig(periphery=quiet, read_noise_sampling="per_mvm").replace(
        **{"drift_compensation.enabled": False})
    tile = AnalogTile(w, cfg)
    tile.program(0)
    tile.set_time(3600.0)
    y = tile.mvm(x)
    w_drift = tile.read_weights()[0]
    expected_std = np.sqrt((x[:1] ** 2) @ tile.read_variance[0])[0] * tile._w_max.reshape(-1)
    np.testing.assert_allclose(y.mean(axis=0), (x[:1] @ w_drift)[0],
                               atol=float(4 * expected_std.max() / np.sqrt(len(x))))
    np.testing.assert_allclose(y.std(axis=0), expected_std, rtol=0.1)


def test_bound_management_removes_saturation():
    w = np.full((64, 4), 1.0, np.float32)
    x = np.ones((3, 64), np.float32)
    base = PeripheryConfig(out_noise=0.0, out_bound=12.0, inp_bits=None)
    results = {}
    for mode in ("none", "iterative"):
        cfg = AnalogConfig(periphery=PeripheryConfig(**{**base.__dict__,
                                                        "bound_management": mode}))
        tile = AnalogTile(w, cfg.replace(**{"drift_compensation.enabled": False}))
        tile.program(0)
        results[mode] = (tile.mvm(x), tile.stats)
    y_none, stats_none = results["none"]
    y_it, stats_it = results["iterative"]
    assert stats_none.clipped == 12 and stats_it.clipped == 0
    assert stats_it.repeated_vectors >= 3
    exact = x @ tile.read_weights()[0]
    assert np.abs(y_none).max() <= 12.0 + 1e-5
    np.testing.assert_allclose(y_it, exact, rtol=0.05)


def test_config_round_trips_through_json():
    cfg = AnalogConfig(read_noise_sampling="per_mvm").replace(**{"periphery.out_bits": 8,
                                                                 "mapping.rows": 256})
    text = json.dumps(cfg.to_dict())
    back = AnalogConfig.from_dict(json.loads(text))
    assert back.to_dict() == cfg.to_dict()
    with pytest.raises(ValueError, match="unknown"):
        AnalogConfig.from_dict({**cfg.to_dict(), "colour": "blue"})


def test_bad_input_is_rejected_with_clear_errors():
    w = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="weights"):
        AnalogTile(np.array([[np.nan, 1.0]]), AnalogConfig())
    with pytest.raises(ValueError, match="tile"):
        AnalogTile(np.ones((600, 3)), AnalogConfig())
    tile = AnalogTile(w, AnalogConfig())
    with pytest.raises(NotProgrammedError):
        tile.mvm(np.ones((1, 4)))
    with pytest.raises(NotProgrammedError):
        tile.set_time(1.0)
    tile.program(0)
    with pytest.raises(ValueError, match="t must"):
        tile.set_time(-1.0)
    with pytest.raises(ValueError, match="t must"):
        tile.set_time(float("nan"))
    with pytest.raises(ValueError, match="x contains NaN"):
        tile.mvm(np.array([[1.0, np.inf, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        tile.mvm(np.ones((2, 5)))
    with pytest.raises(ValueError, match="read_noise_sampling"):
        AnalogConfig(read_noise_sampling="sometimes")
    with pytest.raises(ValueError, match="weight_scaling"):
        AnalogConfig().replace(**{"mapping.weight_scaling": "row"})
    with pytest.raises(ValueError, match="unknown config field"):
        AnalogConfig().replace(**{"periphery.adc_bits": 8})
    with pytest.raises(ValueError, match="device"):
        AnalogConfig(device="pcm")


def test_default_device_is_pcm():
    assert isinstance(AnalogConfig().device, PCMDevice)


@pytest.mark.parametrize("scaling", ["tile", "column"])
@pytest.mark.parametrize("noise_idle", [False, True])
def test_all_zero_tile_outputs_exact_zeros(scaling, noise_idle):
    """w_max = 0 (no weight on the tile) gives output_scale 0: exact zeros, no output noise
    scaled by a stand-in w_max of 1, at any time, with GDC and per-MVM read noise."""
    config = AnalogConfig(device=PCMDevice(noise_idle_devices=noise_idle)).replace(**{
        "mapping.weight_scaling": scaling, "periphery.out_noise": 0.5})
    x = np.random.default_rng(0).standard_normal((16, 6)).astype(np.float32)
    for sampling in ("per_read", "per_mvm"):
        tile = AnalogTile(np.zeros((6, 5), np.float32),
                          config.replace(read_noise_sampling=sampling))
        tile.program(3)
        for t in (0.0, 3600.0, YEAR):
            tile.set_time(t)
            np.testing.assert_array_equal(tile.output_scale, 0)
            assert np.all(tile.mvm(x) == 0)
    # a zero column next to non-zero ones: exact zeros with per-column scaling only
    w = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    w[:, 2] = 0
    tile = AnalogTile(w, config)
    tile.program(0)
    y = tile.mvm(x)
    assert np.all(y[:, 2] == 0) == (scaling == "column")  # tile scaling: noise stays


def test_split_matrix_with_a_zero_tile_adds_nothing_from_it():
    w = np.random.default_rng(2).standard_normal((8, 3)).astype(np.float32)
    w[4:] = 0  # the second row block of 4 x 3 tiles is all zero
    config = AnalogConfig().replace(**{"mapping.rows": 4, "periphery.out_noise": 0.5})
    matrix = TiledMatrix(w, config)
    matrix.program(5)
    x = np.random.default_rng(3).standard_normal((10, 8)).astype(np.float32)
    np.testing.assert_array_equal(matrix.all_tiles[1].mvm(x[:, 4:]), 0)


@pytest.mark.parametrize("seed", [-1, 2.5, "0", True, None])
def test_bad_seeds_are_refused_by_tiles_and_tiled_matrices(seed):
    w = np.ones((3, 2), np.float32)
    for target in (AnalogTile(w, AnalogConfig()), TiledMatrix(w, AnalogConfig())):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            target.program(seed)
        target.program(np.random.SeedSequence(1))
        with pytest.raises(ValueError, match="seed"):
            target.set_time(1.0, seed=-1 if seed is None else seed)
