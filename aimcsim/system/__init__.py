"""System level: a model on an analog in-memory-computing chip.

Pipeline of modules, each with one job:

* :mod:`~aimcsim.system.graph` -- layer graph of a torch model (torch.fx, hook fallback);
* :mod:`~aimcsim.system.ops` -- which modules are analog layers, op types, digital work;
* :mod:`~aimcsim.system.stages` -- element-wise ops fused into layers (pipeline stages);
* :mod:`~aimcsim.system.hardware` -- :class:`HardwareConfig` (physics.md section 8 defaults);
* :mod:`~aimcsim.system.mapping` -- layers onto tiles, utilisation, multi-chip split;
* :mod:`~aimcsim.system.memory` -- weights up from 0, activations down from the top (F3);
* :mod:`~aimcsim.system.pipeline` -- per-layer in/compute/out times and the schedule (F4);
* :mod:`~aimcsim.system.energy` -- energy per inference, TOPS/W;
* :mod:`~aimcsim.system.networks` -- the F3 and F4 example networks;
* :mod:`~aimcsim.system.report`, :mod:`~aimcsim.system.plots`, :mod:`~aimcsim.system.cli`.
"""
from aimcsim.system.energy import EnergyBreakdown, energy_per_inference, layer_energy
from aimcsim.system.graph import GraphNode, LayerGraph, extract_graph
from aimcsim.system.hardware import HardwareConfig
from aimcsim.system.mapping import ChipMapping, LayerMapping, MappingError, map_layers
from aimcsim.system.memory import (ActivationSpec, Buffer, MemoryPlan, WeightSpec, memory_specs,
                                   plan_memory)
from aimcsim.system.networks import build_system_model, f3_network, f4_network
from aimcsim.system.ops import is_matmul_layer, register_matmul_predicate
from aimcsim.system.pipeline import (PipelineReport, Schedule, StageTime, balance_replicas,
                                     pipeline_report, schedule_pipeline, stage_producers,
                                     stage_times)
from aimcsim.system.report import SystemAnalysis, SystemConfig, analyse, text_report, write_outputs
from aimcsim.system.stages import Stage, StageGraph, build_stages

__all__ = ["EnergyBreakdown", "energy_per_inference", "layer_energy", "GraphNode", "LayerGraph",
           "extract_graph", "HardwareConfig", "ChipMapping", "LayerMapping", "MappingError",
           "map_layers", "ActivationSpec", "Buffer", "MemoryPlan", "WeightSpec", "memory_specs",
           "plan_memory", "build_system_model", "f3_network", "f4_network", "is_matmul_layer",
           "register_matmul_predicate", "PipelineReport", "Schedule", "StageTime",
           "balance_replicas", "pipeline_report", "schedule_pipeline", "stage_producers",
           "stage_times", "SystemAnalysis", "SystemConfig", "analyse", "text_report",
           "write_outputs", "Stage", "StageGraph", "build_stages"]
