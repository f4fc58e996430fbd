"""A layer pipeline over time (figure F4): per-layer stage times and a batch schedule.

Timing model of one layer for one batch of ``B`` samples (seconds):

* ``in``: the bytes of its input activations over the layer's link,
  ``B x input elements x activation bytes / bus_bytes_per_s``;
* ``compute``: for an analog layer ``ceil(B x MVMs / replicas) x mvm_latency_s`` (one MVM per
  output pixel; the row and column tiles of a layer work on the same pixel in parallel and
  replicas work on different pixels), or the layer's digital work if that takes longer (it is
  pipelined with the MVMs); for a digital layer (pool, residual add, ...) its digital
  operations / ``digital_ops_per_s``. Digital work includes bias, batch-norm, activations and
  the adds of partial sums from ``row_tiles`` tiles;
* ``out``: the bytes of its outputs over the link.

Schedule: every layer has three resources (in-port, tiles or digital unit, out-port); each
handles one batch at a time, in batch order, so a layer can receive batch b+1 while computing
batch b and sending batch b-1 (``overlap="stages"``, the F4 model: "one new batch enters after
MAX(in, compute, out)"); ``overlap="none"`` makes a layer hold one batch at a time (in, compute
and out in sequence). A layer starts receiving a batch when every producer has sent it (residual
adds wait for both inputs). New batches enter every ``interval`` = the slowest stage time
(``injection="interval"``), or as soon as the first layers accept them (``"asap"``; batches
then queue before the bottleneck). Links are point to point (no contention between layers);
buffers are unbounded (the memory plan sizes them for one batch in flight).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aimcsim.system.hardware import HardwareConfig
from aimcsim.system.mapping import ChipMapping, map_layers
from aimcsim.system.stages import Stage, StageGraph
from aimcsim.validation import check_int

OVERLAP = ("stages", "none")
INJECTION = ("interval", "asap")
PHASES = ("in", "compute", "out")


@dataclass(frozen=True)
class StageTime:
    """Times of one layer for one batch, seconds.

    Attributes:
        name, kind: the layer.
        t_in, t_compute, t_out: the three stages.
        t_analog: MVM time of an analog layer (0 for digital layers).
        t_digital: digital work time.
    """

    name: str
    kind: str
    t_in: float
    t_compute: float
    t_out: float
    t_analog: float = 0.0
    t_digital: float = 0.0

    @property
    def slowest(self) -> float:
        return max(self.t_in, self.t_compute, self.t_out)

    @property
    def total(self) -> float:
        return self.t_in + self.t_compute + self.t_out

    @property
    def limiter(self) -> str:
        """Which stage is the slowest: ``in``, ``compute`` or ``out``."""
        values = (self.t_in, self.t_compute, self.t_out)
        return PHASES[values.index(max(values))]


def partial_sum_adds(stage: Stage, mapping: ChipMapping | None) -> int:
    """Digital adds per sample that merge the partial sums of a layer's row tiles."""
    if not stage.is_analog or mapping is None:
        return 0
    layer = mapping[stage.name]
    return (layer.row_tiles - 1) * layer.cols * layer.groups * stage.mvms


def stage_times(stages: StageGraph, mapping: ChipMapping, hardware: HardwareConfig | None = None,
                batch: int = 1) -> list[StageTime]:
    """Per-layer in / compute / out times for one batch of ``batch`` samples (module docstring).
    """
    hardware = hardware or mapping.hardware
    batch = check_int(batch, "batch", 1)
    per_byte = hardware.activation_bytes / hardware.bus_bytes_per_s
    times = []
    for stage in stages:
        digital = (stage.digital_ops + partial_sum_adds(stage, mapping)) * batch \
            / hardware.digital_ops_per_s
        analog = 0.0
        if stage.is_analog:
            replicas = mapping[stage.name].replicas
            analog = math.ceil(stage.mvms * batch / replicas) * hardware.mvm_latency_s
        times.append(StageTime(name=stage.name, kind=stage.kind,
                               t_in=stage.input_numel * batch * per_byte,
                               t_compute=max(analog, digital),
                               t_out=stage.output_numel * batch * per_byte,
                               t_analog=analog, t_digital=digital))
    return times


@dataclass(frozen=True)
class Schedule:
    """Start and end times (seconds) of every stage of every layer for every batch.

    Arrays have shape (layers, batches). ``interval`` is the slowest per-batch occupancy of
    any resource: the steady-state time between batches.
    """

    times: tuple[StageTime, ...]
    producers: tuple[tuple[int, ...], ...]
    batches: int
    overlap: str
    injection: str
    interval: float
    in_start: np.ndarray
    in_end: np.ndarray
    compute_start: np.ndarray
    compute_end: np.ndarray
    out_start: np.ndarray
    out_end: np.ndarray

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.times]

    @property
    def entry(self) -> np.ndarray:
        """Time each batch enters the network (first in-stage start), seconds."""
        return self.in_start.min(axis=0)

    @property
    def exit(self) -> np.ndarray:
        """Time each batch leaves the network (last out-stage end), seconds."""
        return self.out_end.max(axis=0)

    @property
    def latencies(self) -> np.ndarray:
        """Per batch: exit - entry, seconds."""
        return self.exit - self.entry

    @property
    def makespan(self) -> float:
        return float(self.out_end.max()) if self.out_end.size else 0.0

    @property
    def measured_interval(self) -> float:
        """Time between the last two batches leaving the network, seconds."""
        return float(self.exit[-1] - self.exit[-2]) if self.batches > 1 else self.interval

    def busy(self, layer: int, t0: float, t1: float) -> float:
        """Seconds in [t0, t1) during which ``layer`` works on some stage of some batch
        (overlapping stages of different batches counted once)."""
        spans = []
        for start, end in ((self.in_start, self.in_end), (self.compute_start, self.compute_end),
                           (self.out_start, self.out_end)):
            for b in range(self.batches):
                lo, hi = max(start[layer, b], t0), min(end[layer, b], t1)
                if hi > lo:
                    spans.append((lo, hi))
        spans.sort()
        total, cursor = 0.0, t0
        for lo, hi in spans:
            lo = max(lo, cursor)
            if hi > lo:
                total += hi - lo
                cursor = hi
        return total

    def batch_at(self, layer: int, t0: float, t1: float) -> int | None:
        """The batch ``layer`` spends most of [t0, t1) on (None when idle)."""
        best, best_time = None, 0.0
        for b in range(self.batches):
            lo = max(self.in_start[layer, b], t0)
            hi = min(self.out_end[layer, b], t1)
            if hi - lo > best_time:
                best, best_time = b, hi - lo
        return best


def pipeline_interval(times: Sequence[StageTime], overlap: str = "stages") -> float:
    """Steady-state time between batches: the slowest stage (``stages``) or the slowest
    whole layer (``none``), seconds."""
    if overlap not in OVERLAP:
        raise ValueError(f"overlap must be one of {OVERLAP}, got {overlap!r}")
    if not times:
        return 0.0
    return max(t.slowest if overlap == "stages" else t.total for t in times)


def schedule_pipeline(times: Sequence[StageTime], producers: Sequence[Sequence[int]],
                      batches: int = 8, *, overlap: str = "stages",
                      injection: str = "interval") -> Schedule:
    """As-soon-as-possible schedule of ``batches`` batches through a DAG of layers.

    Args:
        times: per-layer stage times, in a topological order.
        producers: for each layer, the indices of the layers it reads (all smaller than its
            own index); layers without producers read the network input.
        batches: number of batches (>= 1).
        overlap: ``stages`` or ``none`` (module docstring).
        injection: ``interval`` (batch b enters at b x interval) or ``asap``.
    """
    if overlap not in OVERLAP:
        raise ValueError(f"overlap must be one of {OVERLAP}, got {overlap!r}")
    if injection not in INJECTION:
        raise ValueError(f"injection must be one of {INJECTION}, got {injection!r}")
    batches = check_int(batches, "batches", 1)
    if len(producers) != len(times):
        raise ValueError(f"producers has {len(producers)} entries for {len(times)} layers")
    for i, preds in enumerate(producers):
        if any(not 0 <= p < i for p in preds):
            raise ValueError(f"producers[{i}]={list(preds)}: layers must be in topological "
                             f"order (producer indices in 0..{i - 1})")
    for t in times:
        if min(t.t_in, t.t_compute, t.t_out) < 0:
            raise ValueError(f"stage times of {t.name!r} must be >= 0")
    n = len(times)
    interval = pipeline_interval(times, overlap)
    arrays = {k: np.zeros((n, batches)) for k in ("is", "ie", "cs", "ce", "os", "oe")}
    a_is, a_ie, a_cs, a_ce, a_os, a_oe = (arrays[k] for k in ("is", "ie", "cs", "ce", "os", "oe"))
    for b in range(batches):
        entry = b * interval if injection == "interval" else 0.0
        for layer, t in enumerate(times):
            ready = max((a_oe[p, b] for p in producers[layer]), default=entry)
            if b > 0:
                free_in = a_ie[layer, b - 1] if overlap == "stages" else a_oe[layer, b - 1]
                ready = max(ready, free_in)
            a_is[layer, b] = ready
            a_ie[layer, b] = ready + t.t_in
            start = a_ie[layer, b]
            if b > 0 and overlap == "stages":
                start = max(start, a_ce[layer, b - 1])
            a_cs[layer, b] = start
            a_ce[layer, b] = start + t.t_compute
            start = a_ce[layer, b]
            if b > 0 and overlap == "stages":
                start = max(start, a_oe[layer, b - 1])
            a_os[layer, b] = start
            a_oe[layer, b] = start + t.t_out
    return Schedule(times=tuple(times), producers=tuple(tuple(p) for p in producers),
                    batches=batches, overlap=overlap, injection=injection, interval=interval,
                    in_start=a_is, in_end=a_ie, compute_start=a_cs, compute_end=a_ce,
                    out_start=a_os, out_end=a_oe)


def stage_producers(stages: StageGraph) -> list[tuple[int, ...]]:
    """Producer indices of every stage (the DAG :func:`schedule_pipeline` needs)."""
    index = {s.name: s.index for s in stages}
    return [tuple(index[p] for p in s.producers) for s in stages]


@dataclass(frozen=True)
class PipelineReport:
    """Latency, throughput, utilisation and bottleneck of a scheduled pipeline.

    Attributes:
        batch: samples per batch.
        latency_s: first batch, entry to exit, seconds.
        interval_s: steady-state time between batches, seconds.
        batches_per_s, samples_per_s: steady-state throughput (1 / interval).
        bottleneck: name of the layer with the slowest stage, and that stage.
        utilisation: per layer, fraction of the interval its tiles or digital unit compute.
    """

    batch: int
    latency_s: float
    interval_s: float
    batches_per_s: float
    samples_per_s: float
    bottleneck: str
    bottleneck_stage: str
    utilisation: dict[str, float]

    def summary(self) -> dict:
        return {"batch": self.batch, "latency_s": self.latency_s, "interval_s": self.interval_s,
                "batches_per_s": self.batches_per_s, "samples_per_s": self.samples_per_s,
                "bottleneck": self.bottleneck, "bottleneck_stage": self.bottleneck_stage,
                "mean_utilisation": (sum(self.utilisation.values()) / len(self.utilisation)
                                     if self.utilisation else 0.0)}


def pipeline_report(schedule: Schedule, batch: int = 1) -> PipelineReport:
    """Summarise a schedule (throughput from the steady-state interval)."""
    interval = schedule.interval
    if schedule.overlap == "stages":
        slowest = max(schedule.times, key=lambda t: t.slowest)
        stage = slowest.limiter
    else:
        slowest = max(schedule.times, key=lambda t: t.total)
        stage = "layer"
    rate = 1.0 / interval if interval > 0 else math.inf
    return PipelineReport(
        batch=batch, latency_s=float(schedule.latencies[0]), interval_s=interval,
        batches_per_s=rate, samples_per_s=rate * batch, bottleneck=slowest.name,
        bottleneck_stage=stage,
        utilisation={t.name: (t.t_compute / interval if interval > 0 else 0.0)
                     for t in schedule.times})


def pipeline_rows(times: Sequence[StageTime], report: PipelineReport) -> list[dict]:
    """One table row per layer (times in microseconds)."""
    return [{"layer": i, "name": t.name, "kind": t.kind, "in_us": t.t_in * 1e6,
             "compute_us": t.t_compute * 1e6, "out_us": t.t_out * 1e6,
             "utilisation": report.utilisation[t.name],
             "bottleneck": "*" if t.name == report.bottleneck else ""}
            for i, t in enumerate(times)]


def balance_replicas(stages: StageGraph, hardware: HardwareConfig | None = None, *,
                     batch: int = 1, chips: int | None = 1,
                     replicas: Mapping[str, int] | None = None) -> ChipMapping:
    """Copy the weights of the bottleneck analog layers onto spare tiles while it shortens
    the pipeline interval and the tiles last.

    Every round finds the layers whose slowest stage equals the interval; if all of them are
    limited by their MVMs and the chip(s) have tiles for one more copy of each, each gets one
    more replica. Stops when a bottleneck is digital or on the bus, or tiles run out.
    """
    hardware = hardware or HardwareConfig()
    counts = dict(replicas or {})
    mapping = map_layers(stages, hardware, chips=chips, replicas=counts)
    while True:
        times = stage_times(stages, mapping, hardware, batch)
        interval = pipeline_interval(times)
        if interval <= 0:
            return mapping
        slow = [t for t in times if t.slowest >= interval * (1 - 1e-12)]
        if any(t.limiter != "compute" or t.t_analog < t.t_digital for t in slow):
            return mapping
        cost = sum(mapping[t.name].tiles_per_replica for t in slow)
        if cost > mapping.spare_tiles:
            return mapping
        for t in slow:
            counts[t.name] = mapping[t.name].replicas + 1
        mapping = map_layers(stages, hardware, chips=mapping.chips, replicas=counts)
