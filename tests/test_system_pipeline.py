"""Layer pipeline (F4): the timing model, throughput = 1 / slowest stage, and (hypothesis)
no dependency or resource constraint is ever violated."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimcsim.models import build_model
from aimcsim.system import (HardwareConfig, StageTime, balance_replicas, build_stages,
                            extract_graph, f4_network, map_layers, pipeline_report,
                            schedule_pipeline, stage_producers, stage_times)

EPS = 1e-9


@pytest.fixture(scope="module")
def f4():
    return build_stages(extract_graph(f4_network()))


def test_stage_time_model(f4):
    hw = HardwareConfig()
    mapping = map_layers(f4, hw)
    times = {t.name: t for t in stage_times(f4, mapping, hw, batch=2)}
    conv0 = times["conv0.0"]  # 3 -> 16 channels on 32 x 32 pixels
    assert conv0.t_analog == pytest.approx(2 * 1024 * hw.mvm_latency_s)
    assert conv0.t_compute == conv0.t_analog
    assert conv0.t_in == pytest.approx(2 * 3 * 1024 / hw.bus_bytes_per_s)
    assert conv0.t_out == pytest.approx(2 * 16 * 1024 / hw.bus_bytes_per_s)
    pool = times["pool2"]  # digital: one op per input element
    assert pool.t_analog == 0
    assert pool.t_compute == pytest.approx(2 * 32 * 1024 / hw.digital_ops_per_s)
    conv14 = times["conv14.0"]  # 128 x 9 = 1152 rows: 5 row tiles, partial sums added
    ops = (128 * 16 * 3 + 4 * 128 * 16) * 2  # bn (2) + relu (1) per output, 4 psum adds
    assert conv14.t_digital == pytest.approx(ops / hw.digital_ops_per_s)
    replicated = map_layers(f4, hw, replicas={"conv0.0": 3})
    t = stage_times(f4, replicated, hw, batch=2)[0]
    assert t.t_analog == pytest.approx(math.ceil(2048 / 3) * hw.mvm_latency_s)
    with pytest.raises(ValueError, match="batch"):
        stage_times(f4, mapping, hw, batch=0)


def test_f4_throughput_is_one_over_the_slowest_stage(f4):
    hw = HardwareConfig()
    times = stage_times(f4, map_layers(f4, hw), hw)
    slowest = max(max(t.t_in, t.t_compute, t.t_out) for t in times)
    schedule = schedule_pipeline(times, stage_producers(f4), 12)
    report = pipeline_report(schedule)
    assert report.interval_s == pytest.approx(slowest)
    assert schedule.measured_interval == pytest.approx(slowest)
    assert report.samples_per_s == pytest.approx(1 / slowest)
    assert report.bottleneck == "conv0.0" and report.bottleneck_stage == "compute"
    assert report.utilisation["conv0.0"] == pytest.approx(1.0)
    # latency: the chain of all layers for batch 0 (residual adds wait for both inputs)
    assert report.latency_s == pytest.approx(schedule.out_end[-1, 0])
    asap = schedule_pipeline(times, stage_producers(f4), 12, injection="asap")
    assert asap.measured_interval == pytest.approx(slowest)


def test_balancing_uses_spare_tiles_and_shortens_the_interval(f4):
    hw = HardwareConfig()
    plain = map_layers(f4, hw)
    balanced = balance_replicas(f4, hw)
    assert plain.tiles_used == 50 and balanced.tiles_used <= 64
    assert balanced.replicas["conv0.0"] > 1
    before = pipeline_report(schedule_pipeline(stage_times(f4, plain, hw), stage_producers(f4)))
    after = pipeline_report(schedule_pipeline(stage_times(f4, balanced, hw),
                                              stage_producers(f4)))
    assert after.interval_s < before.interval_s / 3
    resnet = build_stages(extract_graph(build_model("resnet32")))
    # 11 tied bottleneck layers at 32 x 32 need 11 spare tiles; ResNet-32 leaves 4
    assert balance_replicas(resnet, hw).tiles_used == 60


def check_schedule(schedule, times, producers):
    """Independent check: durations, dependencies, resources, injection."""
    n, b = len(times), schedule.batches
    for layer, t in enumerate(times):
        for k in range(b):
            assert schedule.in_end[layer, k] == pytest.approx(schedule.in_start[layer, k]
                                                              + t.t_in)
            assert schedule.compute_end[layer, k] == pytest.approx(
                schedule.compute_start[layer, k] + t.t_compute)
            assert schedule.out_end[layer, k] == pytest.approx(schedule.out_start[layer, k]
                                                               + t.t_out)
            assert schedule.compute_start[layer, k] >= schedule.in_end[layer, k] - EPS
            assert schedule.out_start[layer, k] >= schedule.compute_end[layer, k] - EPS
            for p in producers[layer]:  # data dependency: every input has been sent
                assert schedule.in_start[layer, k] >= schedule.out_end[p, k] - EPS
            if k:  # resources: one batch at a time, in order
                if schedule.overlap == "stages":
                    for start, end in ((schedule.in_start, schedule.in_end),
                                       (schedule.compute_start, schedule.compute_end),
                                       (schedule.out_start, schedule.out_end)):
                        assert start[layer, k] >= end[layer, k - 1] - EPS
                else:
                    assert schedule.in_start[layer, k] >= schedule.out_end[layer, k - 1] - EPS
            if schedule.injection == "interval" and not producers[layer]:
                assert schedule.in_start[layer, k] >= k * schedule.interval - EPS
    assert np.all(schedule.latencies >= -EPS) and n == len(schedule.times)


@st.composite
def layer_dags(draw, chain=False):
    n = draw(st.integers(1, 9))
    producers, times = [], []
    for i in range(n):
        if chain:
            preds = (i - 1,) if i else ()
        else:
            preds = tuple(sorted(draw(st.sets(st.integers(0, i - 1), max_size=2)))) if i else ()
        producers.append(preds)
        values = [draw(st.floats(0, 10, allow_nan=False)) for _ in range(3)]
        times.append(StageTime(f"l{i}", "conv", *values))
    return times, producers


@settings(max_examples=80, deadline=None)
@given(dag=layer_dags(), batches=st.integers(1, 6), overlap=st.sampled_from(["stages", "none"]),
       injection=st.sampled_from(["interval", "asap"]))
def test_random_schedules_respect_every_constraint(dag, batches, overlap, injection):
    times, producers = dag
    schedule = schedule_pipeline(times, producers, batches, overlap=overlap,
                                 injection=injection)
    check_schedule(schedule, times, producers)
    slowest = max((t.slowest if overlap == "stages" else t.total) for t in times)
    assert schedule.interval == pytest.approx(slowest)
    exits = schedule.exit
    # never slower than the slowest stage allows
    assert np.all(np.diff(exits) <= slowest + 1e-7)
    if injection == "interval" and batches > 1:
        # steady state from the first batch: exactly one batch per slowest-stage time
        assert np.allclose(np.diff(exits), slowest, rtol=1e-9, atol=1e-9)
        assert pipeline_report(schedule).batches_per_s == pytest.approx(
            1 / slowest if slowest > 0 else math.inf)


@settings(max_examples=40, deadline=None)
@given(dag=layer_dags(chain=True), overlap=st.sampled_from(["stages", "none"]))
def test_free_running_chain_settles_to_the_slowest_stage(dag, overlap):
    times, producers = dag
    schedule = schedule_pipeline(times, producers, 6, overlap=overlap, injection="asap")
    check_schedule(schedule, times, producers)
    slowest = max((t.slowest if overlap == "stages" else t.total) for t in times)
    assert schedule.measured_interval == pytest.approx(slowest, abs=1e-9)


def test_bad_schedule_arguments():
    t = [StageTime("a", "conv", 1, 1, 1), StageTime("b", "res", 1, 1, 1)]
    with pytest.raises(ValueError, match="topological"):
        schedule_pipeline(t, [(), (1,)])
    with pytest.raises(ValueError, match="producers"):
        schedule_pipeline(t, [()])
    with pytest.raises(ValueError, match="batches"):
        schedule_pipeline(t, [(), (0,)], 0)
    with pytest.raises(ValueError, match="overlap"):
        schedule_pipeline(t, [(), (0,)], overlap="all")
    with pytest.raises(ValueError, match="injection"):
        schedule_pipeline(t, [(), (0,)], injection="burst")
    with pytest.raises(ValueError, match=">= 0"):
        schedule_pipeline([StageTime("a", "conv", -1, 0, 0)], [()])
