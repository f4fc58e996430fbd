"""The whole system analysis of one model: graph -> stages -> mapping -> memory plan ->
pipeline -> energy, as tables, JSON/CSV files and pictures."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from aimcsim.system.energy import (EnergyBreakdown, energy_per_inference, energy_rows)
from aimcsim.system.graph import LayerGraph, extract_graph
from aimcsim.system.hardware import HardwareConfig
from aimcsim.system.mapping import ChipMapping, map_layers
from aimcsim.system.memory import MemoryPlan, memory_specs, plan_memory
from aimcsim.system.pipeline import (PipelineReport, Schedule, StageTime, balance_replicas,
                                     pipeline_report, pipeline_rows, schedule_pipeline,
                                     stage_producers, stage_times)
from aimcsim.system.stages import StageGraph, build_stages, stage_rows
from aimcsim.validation import check_int

#: published figures of the Le Gallo et al. 2023 chip (64 cores of 256x256, 8-bit in/out)
CHIP_REFERENCE = {"source": "Le Gallo et al., Nat. Electron. 6:680 (2023)",
                  "peak_tops_one_phase": 63.1, "tops_per_w_one_phase": 9.76,
                  "peak_tops_four_phase": 16.1, "tops_per_w_four_phase": 2.48}


@dataclass
class SystemConfig:
    """How to analyse a model on a chip.

    Attributes:
        batch: samples per batch flowing through the pipeline.
        batches: batches to schedule (>= 2 to see the steady state).
        chips: chips available (None: as many as needed).
        balance: replicate bottleneck layers onto spare tiles.
        overlap, injection: pipeline options (:mod:`aimcsim.system.pipeline`).
        memory_strategy: ``first_fit``, ``best_fit`` or ``no_reuse``.
        alignment: buffer alignment, bytes.
        weight_bytes: bytes per analog weight in system memory.
        param_bytes: bytes per bias / batch-norm parameter.
        input_shape: per-sample input shape.
        graph_method: ``auto``, ``fx`` or ``hooks``.
    """

    batch: int = 1
    batches: int = 8
    chips: int | None = 1
    balance: bool = False
    overlap: str = "stages"
    injection: str = "interval"
    memory_strategy: str = "first_fit"
    alignment: int = 64
    weight_bytes: int = 1
    param_bytes: int = 4
    input_shape: tuple[int, ...] = (3, 32, 32)
    graph_method: str = "auto"

    def __post_init__(self) -> None:
        for name in ("batch", "batches", "alignment", "weight_bytes", "param_bytes"):
            setattr(self, name, check_int(getattr(self, name), name, 1))
        self.input_shape = tuple(int(d) for d in self.input_shape)


@dataclass
class SystemAnalysis:
    """Everything the system model computed for one model."""

    name: str
    hardware: HardwareConfig
    config: SystemConfig
    graph: LayerGraph
    stages: StageGraph
    mapping: ChipMapping
    memory: MemoryPlan
    times: list[StageTime]
    schedule: Schedule
    pipeline: PipelineReport
    energy: EnergyBreakdown
    layer_energy: dict[str, EnergyBreakdown] = field(default_factory=dict)

    def summary(self) -> dict:
        """Headline numbers (SI units: seconds, joules, bytes, watts)."""
        rate = self.pipeline.samples_per_s
        ops = self.energy.ops
        return {
            "model": self.name, "graph_method": self.graph.method,
            "layers": len(self.stages), "analog_layers": len(self.stages.analog()),
            "macs_per_sample": ops // 2,
            "tiles_used": self.mapping.tiles_used, "tiles_available":
                self.mapping.tiles_available, "chips_used": self.mapping.chips_used,
            "cell_utilisation": self.mapping.utilisation,
            "replicas": {k: v for k, v in self.mapping.replicas.items() if v > 1},
            "memory": self.memory.summary(),
            "pipeline": self.pipeline.summary(),
            "energy_per_sample": self.energy.to_dict(),
            "energy_shares": self.energy.shares(),
            "effective_tops": ops * rate / 1e12 if math.isfinite(rate) else math.inf,
            "power_w": self.energy.total_j * rate if math.isfinite(rate) else math.inf,
            "tops_per_w": self.energy.tops_per_w,
            "chip_model": {"mvm_latency_s": self.hardware.mvm_latency_s,
                           "peak_tops": self.hardware.peak_tops * self.mapping.chips_used,
                           "core_tops_per_w": self.hardware.core_tops_per_w},
            "chip_reference": CHIP_REFERENCE,
            "hardware": self.hardware.to_dict(), "config": asdict(self.config),
        }


def analyse(model: nn.Module, hardware: HardwareConfig | None = None,
            config: SystemConfig | None = None, name: str = "model") -> SystemAnalysis:
    """Run the whole system model on ``model`` (digital or converted to analog)."""
    hardware = hardware or HardwareConfig()
    config = config or SystemConfig()
    graph = extract_graph(model, input_shape=config.input_shape, method=config.graph_method)
    stages = build_stages(graph)
    if config.balance:
        mapping = balance_replicas(stages, hardware, batch=config.batch, chips=config.chips)
    else:
        mapping = map_layers(stages, hardware, chips=config.chips)
    weights, activations = memory_specs(stages, batch=config.batch,
                                        activation_bytes=hardware.activation_bytes,
                                        weight_bytes=config.weight_bytes,
                                        param_bytes=config.param_bytes)
    memory = plan_memory(weights, activations, strategy=config.memory_strategy,
                         alignment=config.alignment)
    times = stage_times(stages, mapping, hardware, config.batch)
    schedule = schedule_pipeline(times, stage_producers(stages), config.batches,
                                 overlap=config.overlap, injection=config.injection)
    report = pipeline_report(schedule, config.batch)
    energy, per_layer = energy_per_inference(stages, mapping, hardware)
    return SystemAnalysis(name=name, hardware=hardware, config=config, graph=graph,
                          stages=stages, mapping=mapping, memory=memory, times=times,
                          schedule=schedule, pipeline=report, energy=energy,
                          layer_energy=per_layer)


# ---------------------------------------------------------------------- tables
def _cell(value) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e4 or abs(value) < 1e-2:
            return f"{value:.3g}"
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain-text table of ``rows`` (dicts), columns aligned."""
    if not rows:
        return "(empty)"
    columns = columns or list(rows[0])
    cells = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.rjust(w) if v[:1].isdigit() or v[:1] == "-" else v.ljust(w)
                      for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def _si(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return f"inf {unit}"
    for factor, prefix in ((1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1, ""),
                           (1e3, "k"), (1e6, "M")):
        if abs(value) < factor * 1000:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def text_report(analysis: SystemAnalysis, max_rows: int = 60) -> str:
    """Mapping, memory plan summary, pipeline and energy tables as text."""
    a = analysis
    s = a.summary()
    hw = a.hardware
    parts = [f"== {a.name}: {s['layers']} layers ({s['analog_layers']} analog), "
             f"{s['macs_per_sample']:,} MACs per sample, graph by {a.graph.method}",
             f"chip: {hw.tiles_per_chip} tiles of {hw.tile_rows}x{hw.tile_cols}, "
             f"{hw.input_mode} {hw.input_bits}-bit inputs, MVM {_si(hw.mvm_latency_s, 's')}, "
             f"peak {hw.peak_tops:.1f} TOPS, core {hw.core_tops_per_w:.2f} TOPS/W"]

    def clip(rows):
        return rows if len(rows) <= max_rows else rows[:max_rows]

    parts += ["", f"-- mapping: {a.mapping.tiles_used} of {a.mapping.tiles_available} tiles "
              f"on {a.mapping.chips_used} chip(s), cell utilisation "
              f"{100 * a.mapping.utilisation:.1f}%", format_table(clip(a.mapping.rows()))]
    m = a.memory
    parts += ["", f"-- memory plan ({m.strategy}, {m.alignment}-byte alignment, batch "
              f"{a.config.batch}): weights {m.weights_end:,} B from 0 up; activations peak "
              f"{m.activation_peak:,} B from the top down (max live {m.max_live_bytes:,} B, "
              f"no reuse {m.no_reuse_bytes:,} B); total {m.peak_bytes:,} B, "
              f"{len(m.weights)} weight and {len(m.activations)} activation buffers"]
    p = a.pipeline
    parts += ["", f"-- pipeline (batch {p.batch}, overlap {a.config.overlap}): interval "
              f"{_si(p.interval_s, 's')}, latency {_si(p.latency_s, 's')}, throughput "
              f"{p.samples_per_s:,.0f} samples/s, bottleneck {p.bottleneck} "
              f"({p.bottleneck_stage})",
              format_table(clip(pipeline_rows(a.times, p)))]
    e = a.energy
    shares = e.shares()
    parts += ["", f"-- energy per sample: {_si(e.total_j, 'J')} (" + ", ".join(
        f"{k} {100 * v:.1f}%" for k, v in shares.items()) + ")",
        f"   {e.ops:,} ops: {e.tops_per_w:.2f} TOPS/W overall, {e.core_tops_per_w:.2f} "
        f"TOPS/W array+ADC+DAC; {s['effective_tops']:.3f} TOPS effective at "
        f"{_si(s['power_w'], 'W')}",
        f"   reference chip (Le Gallo 2023): {CHIP_REFERENCE['peak_tops_one_phase']} TOPS "
        f"peak, {CHIP_REFERENCE['tops_per_w_one_phase']} TOPS/W (8-bit, one-phase read)"]
    return "\n".join(parts)


# ---------------------------------------------------------------------- files
def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def write_outputs(analysis: SystemAnalysis, out_dir: str | Path, *, plots: bool = True,
                  step_s: float | None = None) -> list[Path]:
    """Write summary.json, report.txt, stages/mapping/memory/pipeline/energy CSVs and (with
    ``plots``) memory.png and pipeline.png into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    a = analysis
    written = [
        _write_csv(out / "stages.csv", stage_rows(a.stages)),
        _write_csv(out / "mapping.csv", a.mapping.rows()),
        _write_csv(out / "memory.csv", a.memory.rows()),
        _write_csv(out / "pipeline.csv", pipeline_rows(a.times, a.pipeline)),
        _write_csv(out / "energy.csv", energy_rows(a.layer_energy)),
    ]
    path = out / "summary.json"
    path.write_text(json.dumps(a.summary(), indent=2, default=str) + "\n")
    written.append(path)
    path = out / "report.txt"
    path.write_text(text_report(a, max_rows=10 ** 6) + "\n")
    written.append(path)
    if plots:
        from aimcsim.system.plots import plot_memory_plan, plot_pipeline
        few = len(a.stages) <= 8
        labels = ["input"] + [f"{s.name} ({s.kind})" if few else f"{s.index} {s.kind}"
                              for s in a.stages]
        written.append(plot_memory_plan(
            a.memory, out / "memory.png", step_labels=labels,
            title=f"{a.name}: memory plan, batch {a.config.batch}"))
        balance = ", replicated bottlenecks" if a.config.balance else ""
        written.append(plot_pipeline(
            a.schedule, out / "pipeline.png", step_s=step_s,
            title=f"{a.name}: {a.mapping.tiles_used} tiles{balance}, batch {a.config.batch}, "
                  f"bottleneck {a.pipeline.bottleneck}"))
    return written
