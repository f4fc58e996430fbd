"""Net pair drift (``MappingConfig.pair_drift = "net"``, aihwkit 1.1.0's PCM model): exact
limits against the independent pairs, the drift and Q_s of the re-split device per pair, and the
weight bias over 65,536 pairs against its prediction from the device statistics
(physics.md section 1)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.special import ndtr
from torch import nn

import aimcsim
from aimcsim.devices import GaussianDevice, PCMDevice, WanRRAMDevice, make_device
from aimcsim.nn import HardwareAwareConfig
from aimcsim.nn.backends.torch_devices import torch_sampler
from aimcsim.nn.backends.torch_tile_read import read_tile
from aimcsim.tiles import AnalogConfig, AnalogTile, MappingConfig

from device_stats import phi

YEAR = 365 * 24 * 3600.0
DAY = 86400.0


def config(pair_drift: str, device=None, **changes) -> AnalogConfig:
    """No drift compensation (read weights only), the given device (PCM, idle devices
    programmed by default)."""
    device = device if device is not None else PCMDevice(noise_idle_devices=True)
    return AnalogConfig(device=device).replace(**{
        "mapping.pair_drift": pair_drift, "drift_compensation.enabled": False, **changes})


def read(pair_drift: str, w: np.ndarray, t: float, seed: int = 0, device=None,
         **changes) -> tuple[np.ndarray, AnalogTile]:
    tile = AnalogTile(w, config(pair_drift, device, **changes))
    tile.program(seed)
    tile.set_time(t, seed=seed)
    return tile.read_weights()[0], tile


def random_weights(rows: int, cols: int, seed: int) -> np.ndarray:
    """Magnitudes uniform in [0, 1] (small ones flip their net sign now and then), some 0."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, (rows, cols)).astype(np.float32)
    w[rng.random((rows, cols)) < 0.05] = 0.0
    return w


# ---------------------------------------------------------------------- configuration
def test_pair_drift_is_validated_and_round_trips_through_json():
    assert MappingConfig().pair_drift == "independent"
    for bad in ("aihwkit", None, 1):
        with pytest.raises(ValueError, match="pair_drift"):
            MappingConfig(pair_drift=bad)
    net = config("net", make_device("hermes"))
    again = AnalogConfig.from_dict(json.loads(json.dumps(net.to_dict())))
    assert again.mapping.pair_drift == "net" and again.to_dict() == net.to_dict()
    # stored before the field existed: the default
    old = AnalogConfig().to_dict()
    del old["mapping"]["pair_drift"]
    assert AnalogConfig.from_dict(old).mapping.pair_drift == "independent"


@pytest.mark.parametrize("device", [WanRRAMDevice(), GaussianDevice(nu=0.05),
                                    AnalogConfig.ideal().device])
def test_net_pair_drift_needs_a_pcm_like_device(device):
    with pytest.raises(ValueError, match="pair_drift='net' needs a PCM-like device"):
        AnalogConfig(device=device, mapping=MappingConfig(pair_drift="net"))
    with pytest.raises(ValueError, match="PCM-like"):
        AnalogConfig(device=device).replace(**{"mapping.pair_drift": "net"})


def test_torch_tile_sampling_refuses_net_pair_drift_and_the_numpy_tiles_model_it():
    net = config("net")
    with pytest.raises(ValueError, match="pair_drift='net' is not modelled by the torch"):
        read_tile(torch.ones(1, 4, 3), net, torch_sampler(net.device), 3600.0)
    hwa = HardwareAwareConfig(noise_model="device", clip_sigma=None, t_min=DAY, t_max=DAY)
    base = nn.Sequential(nn.Linear(6, 4))
    layer = aimcsim.convert_to_analog(base, net, hwa=hwa)[0].train()
    x = torch.randn(2, 6)
    assert torch.isfinite(layer(x)).all()  # auto backend on the CPU: numpy tiles
    # the numpy tiles of the training forward honour pair_drift="net" (periphery off: the
    # converters would round the small difference away)
    bare = HardwareAwareConfig(noise_model="device", clip_sigma=None, t_min=DAY, t_max=DAY,
                               periphery=False)
    outputs = []
    for mode in ("net", "net", "independent"):
        model = aimcsim.convert_to_analog(base, config(mode), hwa=bare)[0].train()
        torch.manual_seed(1)
        outputs.append(model(x).detach())
    assert torch.equal(outputs[0], outputs[1])  # seeded: a difference below is the pairing's
    assert not torch.equal(outputs[0], outputs[2])
    aimcsim.set_backend(layer, "torch")
    with pytest.raises(ValueError, match="pair_drift"):
        layer(x)


# ---------------------------------------------------------------------- exact limits
@pytest.mark.parametrize("scaling", ["tile", "column"])
@pytest.mark.parametrize("idle", [False, True])
@pytest.mark.parametrize("sampling", ["per_read", "per_mvm"])
def test_without_programming_noise_net_equals_independent(scaling, idle, sampling):
    """No programming noise: W_prog is the target pair, r = 1, the re-split pair is the
    programmed one with the same exponents, Q_s and read-noise draws: bit for bit."""
    w = random_weights(40, 24, 1)
    device = PCMDevice(prog_noise_scale=0.0, noise_idle_devices=idle)
    for t in (0.0, 1.0, 3600.0, YEAR):
        changes = {"mapping.weight_scaling": scaling, "read_noise_sampling": sampling}
        ours, ind_tile = read("independent", w, t, 3, device, **changes)
        net, net_tile = read("net", w, t, 3, device, **changes)
        np.testing.assert_array_equal(net_tile._resplit_scale, 1.0)
        np.testing.assert_array_equal(net, ours)
        if sampling == "per_mvm":
            np.testing.assert_array_equal(net_tile.read_variance, ind_tile.read_variance)


@pytest.mark.parametrize("scaling", ["tile", "column"])
def test_without_drift_and_read_noise_net_reads_the_programmed_net_weight(scaling):
    """Programming noise only: both modes read W_prog = G+_prog - G-_prog at every time (the
    re-split scale r cancels)."""
    w = random_weights(64, 32, 2)
    device = PCMDevice(drift_scale=0.0, read_noise_scale=0.0, noise_idle_devices=True)
    for t in (0.0, DAY, YEAR):
        ours, _ = read("independent", w, t, 5, device, **{"mapping.weight_scaling": scaling})
        net, tile = read("net", w, t, 5, device, **{"mapping.weight_scaling": scaling})
        assert not np.allclose(tile._resplit_scale, 1.0)
        np.testing.assert_allclose(net, ours, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["pcm", "hermes"])
@pytest.mark.parametrize("scaling", ["tile", "column"])
def test_with_drift_only_each_pair_follows_the_exponent_of_the_device_it_sits_on(name,
                                                                                 scaling):
    """Read noise off: w(t) = W_prog ((t + t0) / t0)^(-nu_s) w_max / g_max per pair, nu_s the
    exponent drawn at programming for the G+ device if W_prog > 0, else for the G- device
    (the idle device, when the net sign flipped). W_prog and the exponents come from the same
    programming in independent mode."""
    device = make_device(name, noise_idle_devices=True, read_noise_scale=0.0)
    w = random_weights(96, 48, 7)
    changes = {"mapping.weight_scaling": scaling}
    _, ind_tile = read("independent", w, 0.0, 11, device, **changes)
    state = ind_tile._state
    w_prog = state.g_prog[0, 0] - state.g_prog[1, 0]
    nu = np.where(w_prog > 0, state.nu[0, 0], state.nu[1, 0])
    flipped = (w_prog * w < 0).sum()
    assert flipped > 20  # the idle device's exponent is exercised
    w_max = ind_tile._w_max[0]
    for t in (1.0, 3600.0, DAY, YEAR):
        net, _ = read("net", w, t, 11, device, **changes)
        expected = w_prog * ((t + device.t0) / device.t0) ** (-nu.astype(np.float64)) \
            * w_max / device.g_max
        np.testing.assert_allclose(net, expected, rtol=2e-5, atol=1e-7)
        independent, _ = read("independent", w, t, 11, device, **changes)
        if t >= DAY:  # the idle device's error no longer fades faster than its partner
            assert not np.allclose(net, independent, rtol=1e-3, atol=1e-4)


def test_read_noise_of_a_re_split_device_uses_q_s_of_its_re_split_conductance():
    """Per-MVM variance of W_n: sum over the pair of (G'(t) Q_s(G') a(t))^2 / (r g_max)^2, with
    G' = r max(+-W_prog, 0), Q_s(x) = min(0.0088 / max(x^0.65, 1e-3), 0.2), x = G' / g_max
    and a(t) = sqrt(ln((t + t0 + t_read) / (2 t_read))) (the published PCM constants)."""
    device = PCMDevice(noise_idle_devices=True)
    w = random_weights(80, 40, 4)
    _, ind_tile = read("independent", w, 0.0, 2, device)
    state = ind_tile._state
    w_prog = (state.g_prog[0, 0] - state.g_prog[1, 0]).astype(np.float64)
    r = 25.0 / np.abs(w_prog).max()
    t = DAY
    _, tile = read("net", w, t, 2, device, read_noise_sampling="per_mvm")
    np.testing.assert_allclose(tile._resplit_scale, r, rtol=1e-6)
    a = math.sqrt(math.log((t + 20.0 + 250e-9) / (2 * 250e-9)))
    variance = np.zeros_like(w_prog)
    for sign, nu in ((1, state.nu[0, 0]), (-1, state.nu[1, 0])):
        g = r * np.maximum(sign * w_prog, 0)
        q = np.minimum(0.0088 / np.maximum((g / 25.0) ** 0.65, 1e-3), 0.2)
        variance += (g * ((t + 20.0) / 20.0) ** (-nu.astype(np.float64)) * q * a) ** 2
    np.testing.assert_allclose(tile.read_variance[0], variance / (r * 25.0) ** 2, rtol=2e-4,
                               atol=1e-12)


# ---------------------------------------------------------------------- statistics
def _folded_exp_mean(mu: float, s: float, L: float) -> float:
    """E[exp(-L |X|)] for X ~ N(mu, s^2): E[d] of a drift exponent nu = |X|, L = ln((t+t0)/t0)."""
    return (math.exp(-L * mu + 0.5 * (L * s) ** 2) * ndtr(mu / s - L * s)
            + math.exp(L * mu + 0.5 * (L * s) ** 2) * ndtr(-mu / s - L * s))


def _nu_params(x: float) -> tuple[float, float]:
    """nu_mean, nu_std of the published PCM fit at normalised target x (0: both clip high)."""
    ln = math.log(x) if x > 0 else -math.inf
    return (min(max(-0.0155 * ln + 0.0244, 0.049), 0.1),
            min(max(-0.0125 * ln - 0.0059, 0.008), 0.045))


def mean_idle_read(t: float) -> float:
    """E[max(0, I d_i (1 + s_i(I) xi))] / E[d_i] in µS: the mean read of an idle device per unit
    drift, I = max(0, 0.26348 µS xi') its programmed conductance (the programming noise at
    0 µS), s_i(I) = Q_s(I / g_max) a(t) its relative read noise; E[max(0, 1 + s xi)] =
    Phi(1/s) + s phi(1/s) (the clamp at 0 µS)."""
    g_max, sigma0 = 25.0, 0.26348
    a = math.sqrt(math.log((t + 20.0 + 250e-9) / (2 * 250e-9)))

    def integrand(g: float) -> float:
        s = min(0.0088 / max((g / g_max) ** 0.65, 1e-3), 0.2) * a
        return g * (ndtr(1 / s) + s * phi(1 / s)) * phi(g / sigma0) / sigma0

    return integrate.quad(integrand, 0, 12 * sigma0, limit=200)[0]


def predicted_bias_difference(levels: tuple[float, ...], t: float) -> float:
    """E[sign(w) (w_net - w_independent)] / w_max for weights of magnitudes ``levels`` x w_max
    (equally many), idle devices programmed, read noise on, no sign flips.

    Per pair with active device A, idle device I (µS), drift factors d_a, d_i and relative read
    noises s_a, s_i, s' (the idle device clamped at 0 µS only in independent mode):
        independent: A d_a (1 + s_a xi_a) - max(0, I d_i (1 + s_i xi_i))
        net:         (A - I) d_a (1 + s' xi_a)
    so E[net - independent] = -E[I] E[d_a] + E[d_i] mean_idle_read(t), E[I] = 0.26348 µS /
    sqrt(2 pi), and E[d] = E[exp(-L |X|)], X ~ N(nu_mean, nu_std^2) of the device's target."""
    L = math.log1p(t / 20.0)
    d_active = np.mean([_folded_exp_mean(*_nu_params(x), L) for x in levels])
    d_idle = _folded_exp_mean(*_nu_params(0.0), L)
    mean_idle = 0.26348 / math.sqrt(2 * math.pi)
    return (-mean_idle * d_active + d_idle * mean_idle_read(t)) / 25.0


@pytest.mark.parametrize("t", [0.0, DAY])
def test_weight_bias_over_65536_pairs_matches_its_prediction(t):
    """Paired programmings (same seeds, so the same programming, exponents and read-noise
    draws). At t = 0 both modes carry the idle device's offset, -E[I] / g_max = -0.4% of w_max
    (checked for independent mode), and differ only by the clamp at 0 µS of the idle device's
    read noise in independent mode (about +1e-4 of w_max). At one day the idle device's error
    has faded with its own exponent (0.1 on average) in independent mode but with its
    partner's (about 0.05) in net mode, so net weights are smaller (about -6e-4 of w_max).
    Each within 3 standard errors of its prediction; at one day the difference is negative by
    more than 10 SE."""
    rng = np.random.default_rng(0)
    levels = (0.2, 1.0)
    magnitude = np.repeat(levels, 256 * 256 // 2).reshape(256, 256)
    w = (magnitude * rng.choice([-1.0, 1.0], magnitude.shape)).astype(np.float32)
    sign = np.sign(w)
    ours, _ = read("independent", w, t, 8)
    net, _ = read("net", w, t, 8)
    if t == 0:  # programming and read noise of the active devices average out
        bias = sign * (ours - w)
        assert abs(bias.mean() + mean_idle_read(0.0) / 25.0) <= 3 * bias.std() / 256
    diff = sign * (net - ours)
    se = diff.std() / math.sqrt(diff.size)
    expected = predicted_bias_difference(levels, t)
    assert abs(diff.mean() - expected) <= 3 * se, (diff.mean(), expected, se)
    if t == DAY:
        assert expected < 0 and diff.mean() < -10 * se


def test_a_net_mode_network_saves_and_loads_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    net = AnalogConfig(device=PCMDevice(noise_idle_devices=True)).replace(**{
        "mapping.pair_drift": "net", "mapping.rows": 64, "read_noise_sampling": "per_mvm",
        "drift_compensation.calibration": "one_hot"})
    analog = aimcsim.convert_to_analog(model, net).eval()
    aimcsim.program(analog, 3)
    aimcsim.set_time(analog, 3600.0)
    torch.save(analog.state_dict(), tmp_path / "net.pt")
    fresh = aimcsim.convert_to_analog(model, net).eval()
    fresh.load_state_dict(torch.load(tmp_path / "net.pt", weights_only=True))
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), analog(x), rtol=0, atol=0)
        for m in (analog, fresh):
            aimcsim.set_time(m, DAY)
        torch.testing.assert_close(fresh(x), analog(x), rtol=0, atol=0)
    independent = aimcsim.convert_to_analog(model, net.replace(
        **{"mapping.pair_drift": "independent"})).eval()
    with pytest.raises(ValueError, match="pair_drift"):
        independent.load_state_dict(torch.load(tmp_path / "net.pt", weights_only=True))
