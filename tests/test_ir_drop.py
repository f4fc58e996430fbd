"""IR drop: the exact nodal solve against hand-solved circuits, its physical properties, the
fast (decoupled) approximation against the exact solve within its measured bound, and the tile
and layer integration (zero resistance changes nothing, bit for bit)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aimcsim.devices import PCMDevice
from aimcsim.tiles import AnalogConfig, AnalogTile, IRDropConfig
from aimcsim.tiles.ir_drop import (NodalCrossbar, block_diagonal, decoupled_factors,
                                   diagonal_blocks, differential_currents,
                                   effective_conductances, exact_effective_conductances,
                                   first_order_factors, tile_ir_drop)

G_MAX = 25.0  # µS
#: Measured bound of the decoupled model (examples/ir_drop_error.py, docs/physics.md):
#: ||T_decoupled - T_exact||_F <= delta_row x delta_col x ||G||_F, with delta the largest
#: relative drop of the row ladders (1 - u) and of the column ladders (1 - k). Over 700 random
#: arrays (1 to 48 rows and columns, 0.01 to 1000 ohm) the ratio never exceeded 1.0001, and
#: approaches 1 when the drops are small; the tests allow 1.05.
DECOUPLED_BOUND = 1.05


def conductance_arrays(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Random conductances in [0, g_max] µS with about half of the devices idle (0 µS)."""
    g = G_MAX * rng.uniform(0, 1, (rows, cols))
    return g * (rng.uniform(size=(rows, cols)) < 0.5)


def one_wire_drops(g: np.ndarray, r_row: float, r_col: float) -> tuple[float, float]:
    """Largest relative drop of the row ladders alone and of the column ladders alone."""
    return (float((1 - decoupled_factors(g, r_row, 0.0)).max()),
            float((1 - decoupled_factors(g, 0.0, r_col)).max()))


# ------------------------------------------------------------------ exact solver: hand-solved
def test_one_cell_is_three_resistors_in_series():
    g_us, v = 10.0, 0.2
    for r_row, r_col in ((0.0, 0.0), (1e3, 0.0), (0.0, 2e3), (1e3, 2e3)):
        expected = v / (r_row + 1e6 / g_us + r_col) * 1e6  # µA
        current = NodalCrossbar(np.array([[g_us]]), r_row, r_col).currents(np.array([v]))
        np.testing.assert_allclose(current, [expected], rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(cols=st.integers(1, 12), r_row=st.floats(0.0, 5e4), r_col=st.floats(0.0, 5e4),
       seed=st.integers(0, 10_000))
def test_one_row_is_a_ladder(cols, r_row, r_col, seed):
    """One row: each column is its device in series with one column segment, hung from the
    row wire; solved from the open end by series/parallel reduction."""
    rng = np.random.default_rng(seed)
    g = G_MAX * rng.uniform(0.1, 1, cols) * 1e-6  # siemens
    shunt = 1.0 / (1.0 / g + r_col)               # device + column segment to ground
    load = shunt[-1]                              # conductance into node j and beyond
    loads = [load]
    for j in range(cols - 2, -1, -1):
        load = shunt[j] + 1.0 / (r_row + 1.0 / load)
        loads.append(load)
    loads = loads[::-1]
    v, voltage, currents = 0.3, 0.3, []
    for j in range(cols):  # divider from the previous node through one row segment
        voltage = voltage / (1.0 + r_row * loads[j])
        currents.append(shunt[j] * voltage * 1e6)
    got = NodalCrossbar(g[None] * 1e6, r_row, r_col).currents(np.array([v]))
    np.testing.assert_allclose(got, currents, rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 12), r_row=st.floats(0.0, 5e4), r_col=st.floats(0.0, 5e4),
       seed=st.integers(0, 10_000))
def test_one_column_is_norton_sources_on_a_ladder(rows, r_row, r_col, seed):
    """One column: row i is a source V_i behind its row segment and device (a Norton source
    s_i V_i with conductance s_i) feeding node i of the column wire; the column's nodal
    equations are a small dense system."""
    rng = np.random.default_rng(seed)
    g = G_MAX * rng.uniform(0.1, 1, rows) * 1e-6
    v = rng.uniform(-0.2, 0.2, rows)
    s = 1.0 / (r_row + 1.0 / g)
    if r_col == 0:
        expected = s * v
    else:
        a = np.diag(s)
        for i in range(rows - 1):  # column segments between nodes i and i + 1
            a[[i, i + 1], [i, i + 1]] += 1 / r_col
            a[i, i + 1] -= 1 / r_col
            a[i + 1, i] -= 1 / r_col
        a[-1, -1] += 1 / r_col  # last segment to the sense amplifier
        w = np.linalg.solve(a, s * v)
        expected = s * (v - w)
    got = NodalCrossbar(g[:, None] * 1e6, r_row, r_col).currents(v)
    np.testing.assert_allclose(got, [expected.sum() * 1e6], rtol=1e-9, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(rows=st.integers(1, 10), cols=st.integers(1, 10), seed=st.integers(0, 10_000))
def test_zero_resistance_is_the_ideal_product(rows, cols, seed):
    rng = np.random.default_rng(seed)
    g = conductance_arrays(rng, rows, cols)
    v = rng.uniform(-0.2, 0.2, (3, rows))
    np.testing.assert_allclose(NodalCrossbar(g, 0.0, 0.0).currents(v), v @ g, rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_array_equal(effective_conductances(g, 0.0, 0.0, "exact"), g)


def test_tiny_resistance_approaches_the_ideal_product():
    rng = np.random.default_rng(0)
    g = conductance_arrays(rng, 16, 16)
    v = rng.uniform(-0.2, 0.2, (4, 16))
    ideal = v @ g
    for r in (1e-3, 1e-5):  # drop of order r G N^2 = r x 25e-6 x 256 / 2
        err = np.abs(NodalCrossbar(g, r, r).currents(v) - ideal).max() / np.abs(ideal).max()
        assert err < 1e-2 * r
        assert err > 1e-4 * r  # there is a drop, of the expected order


def test_output_current_is_the_sense_segment_current():
    """KCL: the current into the sense amplifier (last column node over one segment) equals
    the sum of the device currents of the column."""
    rng = np.random.default_rng(1)
    g = conductance_arrays(rng, 9, 7)
    crossbar = NodalCrossbar(g, 3e3, 2e3)
    v = rng.uniform(-0.2, 0.2, (5, 9))
    u, w = crossbar.node_voltages(v)
    np.testing.assert_allclose(w[:, -1, :] / 2e3 * 1e6, crossbar.currents(v), rtol=1e-9)
    assert (np.abs(u) <= 0.2 + 1e-12).all()  # no node beyond the drive


# ------------------------------------------------------------------ exact solver: properties
@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 10), cols=st.integers(1, 10), r=st.floats(1.0, 1e4),
       seed=st.integers(0, 10_000))
def test_currents_are_linear_in_the_voltages(rows, cols, r, seed):
    rng = np.random.default_rng(seed)
    g = conductance_arrays(rng, rows, cols)
    crossbar = NodalCrossbar(g, r, 2 * r)
    v1, v2 = rng.uniform(-0.2, 0.2, (2, 3, rows))
    np.testing.assert_allclose(crossbar.currents(v1 + 2.5 * v2),
                               crossbar.currents(v1) + 2.5 * crossbar.currents(v2),
                               rtol=1e-9, atol=1e-12)
    t = exact_effective_conductances(g, r, 2 * r)
    np.testing.assert_allclose(v1 @ t, crossbar.currents(v1), rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 10), cols=st.integers(1, 10), r=st.floats(1.0, 1e4),
       seed=st.integers(0, 10_000))
def test_wire_resistance_lowers_power_and_equal_drive_currents(rows, cols, r, seed):
    """Rayleigh monotonicity: more resistance lowers the power the drivers deliver,
    sum_i V_i I_i = V^T Y V, for any inputs, and with every row at the same voltage it lowers
    the total output current (= P / V) below the ideal one. (Single columns need not fall:
    less current in one column's neighbours leaves more voltage on the shared rows.) Every
    node voltage lies between the lowest and highest drive, ground included."""
    rng = np.random.default_rng(seed)
    g = conductance_arrays(rng, rows, cols)
    v = rng.uniform(-0.2, 0.2, (3, rows))
    equal = np.full((1, rows), 0.2)

    def power_and_total(r_row, r_col):
        crossbar = NodalCrossbar(g, r_row, r_col)
        u, w = crossbar.node_voltages(v)
        assert (u <= np.maximum(v.max(1), 0)[:, None, None] + 1e-12).all()
        assert (w >= np.minimum(v.min(1), 0)[:, None, None] - 1e-12).all()
        source = (v - u[:, :, 0]) / r_row * 1e6  # µA from each driver
        return (v * source).sum(1), crossbar.currents(equal).sum()

    p_low, total_low = power_and_total(r, r)
    tol = 1e-9 * (np.abs(p_low).max() + total_low) + 1e-9  # solver rounding, µW and µA
    assert (p_low <= (v * v) @ g.sum(1) + tol).all() and total_low <= 0.2 * g.sum() + tol
    for higher in (power_and_total(3 * r, r), power_and_total(r, 3 * r)):
        assert (higher[0] <= p_low + tol).all() and higher[1] <= total_low + tol


def test_bad_input_raises():
    with pytest.raises(ValueError, match="conductances"):
        NodalCrossbar(-np.ones((2, 2)), 1.0, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        NodalCrossbar(np.full((2, 2), np.nan), 1.0, 1.0)
    with pytest.raises(ValueError, match="r_row_ohm"):
        NodalCrossbar(np.ones((2, 2)), -1.0, 1.0)
    with pytest.raises(ValueError, match="r_col_ohm"):
        decoupled_factors(np.ones((2, 2)), 1.0, float("inf"))
    with pytest.raises(ValueError, match="voltages"):
        NodalCrossbar(np.ones((2, 2)), 1.0, 1.0).currents(np.ones((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        NodalCrossbar(np.ones((2, 2)), 1.0, 1.0).currents(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="method"):
        effective_conductances(np.ones((2, 2)), 1.0, 1.0, "guess")
    with pytest.raises(ValueError, match="2, groups"):
        tile_ir_drop(np.ones((3, 2, 2)), 1.0, 1.0)


# ------------------------------------------------------------------ the fast approximation
@settings(max_examples=30, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), r=st.floats(0.01, 3e4),
       row_only=st.booleans(), seed=st.integers(0, 10_000))
def test_decoupled_is_exact_with_one_kind_of_wire_ideal(rows, cols, r, row_only, seed):
    rng = np.random.default_rng(seed)
    g = conductance_arrays(rng, rows, cols)
    r_row, r_col = (r, 0.0) if row_only else (0.0, r)
    np.testing.assert_allclose(g * decoupled_factors(g, r_row, r_col),
                               exact_effective_conductances(g, r_row, r_col),
                               rtol=1e-9, atol=1e-12 * G_MAX)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 16), cols=st.integers(1, 16), log_r_row=st.floats(-2, 3),
       log_r_col=st.floats(-2, 3), seed=st.integers(0, 10_000))
def test_decoupled_is_within_its_bound_of_the_exact_solve(rows, cols, log_r_row, log_r_col,
                                                          seed):
    """Random signed weights on a differential pair, random inputs: the approximation's
    output error against the exact nodal solve is within the measured bound, applied to each
    array of the pair."""
    rng = np.random.default_rng(seed)
    r_row, r_col = 10.0 ** log_r_row, 10.0 ** log_r_col
    w = rng.standard_normal((rows, cols))
    w /= np.abs(w).max()
    pair = [G_MAX * np.maximum(w, 0), G_MAX * np.maximum(-w, 0)]
    v = 0.2 * rng.uniform(-1, 1, (8, rows))
    exact = differential_currents(*pair, v, r_row, r_col)
    approx = v @ (effective_conductances(pair[0], r_row, r_col)
                  - effective_conductances(pair[1], r_row, r_col))
    bound = sum(np.prod(one_wire_drops(g, r_row, r_col)) * np.linalg.norm(g) for g in pair)
    assert np.linalg.norm(approx - exact) <= (DECOUPLED_BOUND * bound + 1e-12 * G_MAX) \
        * np.linalg.norm(v)
    for g in pair:  # the matrix form of the bound
        error = np.linalg.norm(g * decoupled_factors(g, r_row, r_col)
                               - exact_effective_conductances(g, r_row, r_col))
        assert error <= DECOUPLED_BOUND * np.prod(one_wire_drops(g, r_row, r_col)) \
            * np.linalg.norm(g) + 1e-12 * G_MAX


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 30), cols=st.integers(1, 30), log_r=st.floats(-2, 4),
       seed=st.integers(0, 10_000))
def test_decoupled_factors_are_attenuations_that_fall_with_resistance(rows, cols, log_r,
                                                                      seed):
    g = conductance_arrays(np.random.default_rng(seed), rows, cols)
    r = 10.0 ** log_r
    f = decoupled_factors(g, r, r)
    assert ((f > 0) & (f <= 1)).all()
    assert (decoupled_factors(g, 2 * r, r) <= f).all()
    assert (decoupled_factors(g, r, 2 * r) <= f).all()
    np.testing.assert_array_equal(decoupled_factors(g, 0.0, 0.0), np.ones_like(g))


def test_first_order_is_the_linearisation_of_the_decoupled_model():
    """1 - f is linear in r to first order; the first-order factors are its slope, so their
    difference to the decoupled factors falls as r^2 (a quarter per halving)."""
    g = conductance_arrays(np.random.default_rng(3), 20, 14)
    gaps = [np.abs(first_order_factors(g, r, 2 * r) - decoupled_factors(g, r, 2 * r)).max()
            for r in (0.02, 0.01)]
    assert gaps[0] > 0
    np.testing.assert_allclose(gaps[1] / gaps[0], 0.25, rtol=0.02)
    uniform = np.full((64, 64), G_MAX)  # r G N^2 ~ 10: first order goes negative, decoupled not
    assert first_order_factors(uniform, 100.0, 100.0).min() < 0
    assert decoupled_factors(uniform, 100.0, 100.0).min() > 0


def test_block_layout_round_trips():
    blocks = np.random.default_rng(0).uniform(size=(2, 3, 4, 5))
    full = block_diagonal(blocks)
    assert full.shape == (2, 12, 15)
    assert full[:, :4, 5:].sum() == 0
    np.testing.assert_array_equal(diagonal_blocks(full, 3), blocks)


# ------------------------------------------------------------------ config, tile and layers
def test_ir_drop_config_validates_and_round_trips():
    config = AnalogConfig().replace(**{"ir_drop.r_row_ohm": 1.5, "ir_drop.method": "exact"})
    back = AnalogConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert back.ir_drop == config.ir_drop and back.ir_drop.enabled
    assert not AnalogConfig().ir_drop.enabled
    old = {k: v for k, v in AnalogConfig().to_dict().items() if k != "ir_drop"}
    assert AnalogConfig.from_dict(old).ir_drop == IRDropConfig()  # configs saved before
    for bad in ({"r_row_ohm": -1.0}, {"r_col_ohm": float("nan")}, {"read_voltage_v": 0.0},
                {"method": "fast"}, {"r_col_ohm": "1"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            IRDropConfig(**bad)
    with pytest.raises(ValueError, match="ir_drop"):
        AnalogConfig(ir_drop={"r_row_ohm": 1.0})


@pytest.mark.parametrize("sampling", ["per_read", "per_mvm"])
def test_zero_resistance_reads_exactly_as_before(sampling):
    """Off (the default) and zero resistance with any other setting: W_n is (G+ - G-) / g_max
    of the device read, bit for bit, and no conductances are kept."""
    w = np.random.default_rng(0).standard_normal((40, 24)).astype(np.float32)
    for ir_drop in (IRDropConfig(), IRDropConfig(read_voltage_v=0.7, method="exact")):
        config = AnalogConfig(read_noise_sampling=sampling, ir_drop=ir_drop)
        tile = AnalogTile(w, config)
        tile.program(7)
        tile.set_time(3600.0, seed=11)
        device = config.device
        rng = np.random.default_rng(np.random.SeedSequence(11))
        g = (device.read(tile._state, 3600.0, rng) if sampling == "per_read"
             else device.drifted(tile._state, 3600.0))
        np.testing.assert_array_equal(tile.normalized_weights,
                                      ((g[0] - g[1]) / np.float32(device.g_max)
                                       ).astype(np.float32))
        assert tile.read_conductances is None


@pytest.mark.parametrize("method,rtol", [("decoupled", None), ("exact", 2e-5)])
def test_ideal_tile_with_ir_drop_matches_the_nodal_solve(method, rtol):
    """Ideal devices and converters: the tile's output is the exact circuit's I+ - I-, in
    weight units (/ g_max V_read x w_max); decoupled within its bound, exact to float32."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((48, 20)).astype(np.float32)
    ir_drop = IRDropConfig(r_row_ohm=20.0, r_col_ohm=30.0, method=method)
    tile = AnalogTile(w, AnalogConfig.ideal().replace(ir_drop=ir_drop))
    tile.program(0)
    x = rng.uniform(-1, 1, (6, 48)).astype(np.float32)
    g = tile.read_conductances.astype(np.float64)[:, 0]
    v = x.astype(np.float64) * ir_drop.read_voltage_v
    exact = differential_currents(g[0], g[1], v, 20.0, 30.0) \
        / (G_MAX * ir_drop.read_voltage_v) * np.abs(w).max()
    y = tile.mvm(x)
    ideal = x @ w
    assert np.linalg.norm(ideal - exact) > 0.02 * np.linalg.norm(exact)  # a visible drop
    if rtol is not None:
        np.testing.assert_allclose(y, exact, rtol=rtol, atol=rtol * np.abs(exact).max())
    else:
        bound = sum(np.prod(one_wire_drops(a, 20.0, 30.0)) * np.linalg.norm(a) for a in g)
        scale = np.abs(w).max() / G_MAX
        assert np.linalg.norm(y - exact) <= DECOUPLED_BOUND * bound * scale \
            * np.linalg.norm(x) + 1e-5 * np.linalg.norm(exact)


def test_grouped_tile_is_its_block_diagonal_array():
    """A grouped tile's blocks sit on the diagonal of one array: the exact solve of that
    array (zeros off the blocks) gives the tile's grouped outputs."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 6, 4)).astype(np.float32)
    ir_drop = IRDropConfig(r_row_ohm=200.0, r_col_ohm=300.0, method="exact")
    tile = AnalogTile(w, AnalogConfig.ideal().replace(ir_drop=ir_drop))
    tile.program(0)
    x = rng.uniform(-1, 1, (5, 18)).astype(np.float32)
    full = block_diagonal(tile.read_conductances.astype(np.float64))
    v = x.astype(np.float64) * 0.2
    exact = differential_currents(full[0], full[1], v, 200.0, 300.0) / (G_MAX * 0.2) \
        * np.abs(w).max()
    y = tile.mvm(x)
    # the grouped GEMM drops the exact T's small sneak terms off the diagonal blocks
    np.testing.assert_allclose(y, exact, rtol=1e-3, atol=1e-3 * np.abs(exact).max())
    assert np.abs(y - x @ block_diagonal(w)).max() > 1e-2 * np.abs(exact).max()


def test_per_mvm_read_noise_is_attenuated_with_the_signal():
    w = np.random.default_rng(3).standard_normal((64, 16)).astype(np.float32)
    variances = []
    for r in (0.0, 50.0):
        config = AnalogConfig(read_noise_sampling="per_mvm").replace(
            **{"ir_drop.r_col_ohm": r})
        tile = AnalogTile(w, config)
        tile.program(0)
        variances.append(tile.read_variance)
    assert (variances[1] <= variances[0]).all()
    assert variances[1].sum() < 0.99 * variances[0].sum()


def test_analog_layers_run_ir_drop_on_every_path(tmp_path):
    """A conv layer's native path and its unfolded per-patch path see the same IR-dropped
    weights; with ideal periphery its output is the exact per-patch circuit of each patch;
    the programmed state (with the read conductances) round-trips through a state_dict."""
    import aimcsim

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1, bias=False).eval()
    ir_drop = IRDropConfig(r_row_ohm=100.0, r_col_ohm=100.0, method="exact")
    config = AnalogConfig.ideal().replace(ir_drop=ir_drop)
    analog = aimcsim.convert_to_analog(conv, config).eval()
    aimcsim.program(analog, seed=0)
    x = torch.rand(2, 2, 5, 5)
    with torch.no_grad():
        native = analog(x)
    (tile,) = analog.tiles
    g = tile.read_conductances.astype(np.float64)[:, 0]
    patches = F.unfold(x, 3, padding=1).transpose(1, 2).reshape(-1, 18).double().numpy()
    exact = differential_currents(g[0], g[1], 0.2 * patches, 100.0, 100.0) / (G_MAX * 0.2) \
        * np.abs(conv.weight.detach().numpy()).max()
    exact = exact.reshape(2, 25, 3).transpose(0, 2, 1).reshape(2, 3, 5, 5)
    np.testing.assert_allclose(native.numpy(), exact, rtol=1e-4, atol=1e-4 * np.abs(exact).max())
    assert np.abs(native.numpy() - conv(x).detach().numpy()).max() > 1e-3
    unfolded = aimcsim.convert_to_analog(conv, config.replace(
        **{"periphery.input_scaling": "per_patch_exact"})).eval()
    aimcsim.program(unfolded, seed=0)
    with torch.no_grad():
        np.testing.assert_allclose(unfolded(x).numpy(), native.numpy(), rtol=1e-5, atol=1e-6)
    path = tmp_path / "ir.pt"
    torch.save(analog.state_dict(), path)
    fresh = aimcsim.convert_to_analog(conv, config).eval()
    fresh.load_state_dict(torch.load(path, weights_only=True))
    np.testing.assert_array_equal(fresh.tiles[0].read_conductances, tile.read_conductances)
    with torch.no_grad():
        np.testing.assert_array_equal(fresh(x).numpy(), native.numpy())


def test_pcm_tile_with_ir_drop_keeps_its_read_conductances():
    config = AnalogConfig(device=PCMDevice()).replace(**{"ir_drop.r_col_ohm": 1.0})
    tile = AnalogTile(np.random.default_rng(4).standard_normal((32, 8)), config)
    tile.program(0)
    tile.set_time(86400.0)
    g = tile.read_conductances
    assert g.shape == (2, 1, 32, 8) and g.dtype == np.float32 and (g >= 0).all()
    effective, _ = tile_ir_drop(g, 0.0, 1.0)
    np.testing.assert_array_equal(tile.normalized_weights,
                                  ((effective[0] - effective[1]) / np.float32(G_MAX)
                                   ).astype(np.float32))
