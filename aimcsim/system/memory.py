"""Where a network lives in system memory (figure F3).

One address space of ``capacity`` bytes holds two regions:

* **weights** (every parameter of the model, in execution order: filter0, bias0, filter1,
  bias1, ...) grow upwards from address 0;
* **activations** (tensor 0 = the network input, then every tensor a layer produces) grow
  downwards from the top. A buffer lives from the step its producer runs to the last step a
  consumer runs; once dead, its space is reused by later buffers (``first_fit``: the first
  free gap from the top that is large enough; ``best_fit``: the smallest such gap;
  ``no_reuse``: never reuse, for comparison).

Step ``0`` loads the network input; stage ``i`` (execution order) runs at step ``i + 1``, when
its inputs and outputs are live together. Offsets and sizes are padded to ``alignment``
bytes. The activation *peak* is the deepest the activation region ever reaches below the top;
the plan is valid when ``weights end <= capacity - peak``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from aimcsim.system.stages import StageGraph
from aimcsim.validation import check_int

STRATEGIES = ("first_fit", "best_fit", "no_reuse")


@dataclass(frozen=True)
class WeightSpec:
    """A parameter tensor to place: ``size`` bytes."""

    name: str
    size: int
    label: str = ""


@dataclass(frozen=True)
class ActivationSpec:
    """An activation buffer of ``size`` bytes, live from ``first_step`` to ``last_step``
    (inclusive)."""

    name: str
    size: int
    first_step: int
    last_step: int
    label: str = ""


@dataclass(frozen=True)
class Buffer:
    """A placed buffer: bytes [offset, offset + size) (``padded`` bytes reserved).

    ``first_step``/``last_step`` are the lifetime of an activation; weights live for the whole
    plan (0 .. steps - 1)."""

    name: str
    label: str
    region: str
    offset: int
    size: int
    padded: int
    first_step: int
    last_step: int

    @property
    def end(self) -> int:
        return self.offset + self.padded


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


@dataclass(frozen=True)
class MemoryPlan:
    """Byte offsets of every weight and activation buffer.

    Attributes:
        buffers: weights (execution order), then activations (birth order).
        weights_end: first address above the weights region (aligned), bytes.
        activation_peak: the activation region's largest extent below the top, bytes.
        capacity: top of the address space, bytes.
        steps: number of steps (network input + one per stage).
        strategy: allocation strategy.
        alignment: bytes.
    """

    buffers: tuple[Buffer, ...]
    weights_end: int
    activation_peak: int
    capacity: int
    steps: int
    strategy: str
    alignment: int

    @property
    def weights(self) -> list[Buffer]:
        return [b for b in self.buffers if b.region == "weights"]

    @property
    def activations(self) -> list[Buffer]:
        return [b for b in self.buffers if b.region == "activations"]

    @property
    def peak_bytes(self) -> int:
        """Weights + activation peak: the memory the plan needs, bytes."""
        return self.weights_end + self.activation_peak

    @property
    def no_reuse_bytes(self) -> int:
        """Activation bytes without any reuse (every buffer kept), for comparison."""
        return sum(b.padded for b in self.activations)

    @property
    def max_live_bytes(self) -> int:
        """Largest sum of simultaneously live activation buffers (lower bound of the peak)."""
        return max((sum(b.padded for b in self.live(s)) for s in range(self.steps)), default=0)

    def live(self, step: int) -> list[Buffer]:
        """Activation buffers live at ``step``."""
        return [b for b in self.activations if b.first_step <= step <= b.last_step]

    def validate(self) -> None:
        """Raise ValueError if two live buffers overlap or the regions collide."""
        weights = sorted(self.weights, key=lambda b: b.offset)
        for a, b in zip(weights, weights[1:]):
            if a.end > b.offset:
                raise ValueError(f"weights {a.name} and {b.name} overlap")
        if weights and weights[-1].end > self.weights_end:
            raise ValueError("weights exceed weights_end")
        floor = self.capacity - self.activation_peak
        if floor < self.weights_end:
            raise ValueError(f"activation region (down to {floor}) collides with the weights "
                             f"(up to {self.weights_end})")
        acts = self.activations
        for i, a in enumerate(acts):
            if a.offset < floor or a.end > self.capacity:
                raise ValueError(f"{a.name} lies outside the activation region")
            for b in acts[i + 1:]:
                alive = a.first_step <= b.last_step and b.first_step <= a.last_step
                if alive and a.offset < b.end and b.offset < a.end:
                    raise ValueError(f"live buffers {a.name} and {b.name} overlap")

    def rows(self) -> list[dict]:
        """One table row per buffer."""
        return [{"region": b.region, "label": b.label, "name": b.name, "offset": b.offset,
                 "size": b.size, "padded": b.padded, "first_step": b.first_step,
                 "last_step": b.last_step} for b in self.buffers]

    def summary(self) -> dict:
        return {"strategy": self.strategy, "alignment": self.alignment,
                "weights_bytes": self.weights_end, "activation_peak_bytes": self.activation_peak,
                "activation_no_reuse_bytes": self.no_reuse_bytes,
                "max_live_bytes": self.max_live_bytes, "peak_bytes": self.peak_bytes,
                "capacity": self.capacity, "buffers": len(self.buffers), "steps": self.steps}


def _place(live: list[tuple[int, int]], size: int, strategy: str) -> int:
    """Depth below the top for a buffer of ``size`` bytes among live (depth, size) spans."""
    if strategy == "no_reuse":
        raise AssertionError("no_reuse does not search gaps")
    spans = sorted(live)
    gaps, cursor = [], 0
    for depth, span in spans:
        if depth - cursor >= size:
            gaps.append((depth - cursor, cursor))
        cursor = max(cursor, depth + span)
    if strategy == "first_fit":
        return gaps[0][1] if gaps else cursor
    fitting = [g for g in gaps if g[0] >= size]
    return min(fitting)[1] if fitting else cursor


def plan_memory(weights: Sequence[WeightSpec], activations: Sequence[ActivationSpec], *,
                strategy: str = "first_fit", alignment: int = 64,
                capacity: int | None = None) -> MemoryPlan:
    """Place weights upwards from 0 and activations downwards from the top.

    Args:
        weights: parameter tensors in the order to place them.
        activations: activation buffers with lifetimes (steps, inclusive).
        strategy: ``first_fit``, ``best_fit`` or ``no_reuse``.
        alignment: every offset and padded size is a multiple of this many bytes (>= 1).
        capacity: top address in bytes (a multiple of ``alignment``); default: exactly what
            the plan needs (weights + activation peak).
    Raises:
        ValueError: bad arguments, or the plan does not fit ``capacity``.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    alignment = check_int(alignment, "alignment", 1)
    for spec in list(weights) + list(activations):
        check_int(spec.size, f"size of {spec.name!r}", 0)
    for spec in activations:
        if spec.last_step < spec.first_step:
            raise ValueError(f"{spec.name!r}: last_step {spec.last_step} < first_step "
                             f"{spec.first_step}")
    names = [s.name for s in list(weights) + list(activations)]
    if len(set(names)) != len(names):
        raise ValueError("buffer names must be unique")

    # activations: depth below the top, in birth order; a buffer is freed after its last step
    order = sorted(range(len(activations)),
                   key=lambda i: (activations[i].first_step, i))
    depths: dict[int, int] = {}
    live: list[tuple[int, int, int]] = []  # (depth, padded, index)
    peak = running = 0
    for i in order:
        spec = activations[i]
        padded = _align(spec.size, alignment)
        live = [entry for entry in live if activations[entry[2]].last_step >= spec.first_step]
        if strategy == "no_reuse":
            depth, running = running, running + padded
        else:
            depth = _place([(d, p) for d, p, _ in live], padded, strategy)
        depths[i] = depth
        live.append((depth, padded, i))
        peak = max(peak, depth + padded)

    weight_buffers, offset = [], 0
    steps = max((a.last_step for a in activations), default=0) + 1
    for spec in weights:
        padded = _align(spec.size, alignment)
        weight_buffers.append(Buffer(spec.name, spec.label or spec.name, "weights", offset,
                                     spec.size, padded, 0, steps - 1))
        offset += padded
    weights_end = offset
    if capacity is None:
        capacity = weights_end + peak
    elif isinstance(capacity, bool) or not isinstance(capacity, int) or capacity % alignment:
        raise ValueError(f"capacity must be an integer multiple of alignment={alignment}, "
                         f"got {capacity!r}")
    elif weights_end + peak > capacity:
        raise ValueError(f"memory plan needs {weights_end + peak} bytes ({weights_end} of "
                         f"weights + {peak} activation peak) but capacity={capacity}")
    act_buffers = []
    for i in order:
        spec = activations[i]
        padded = _align(spec.size, alignment)
        act_buffers.append(Buffer(spec.name, spec.label or spec.name, "activations",
                                  capacity - depths[i] - padded, spec.size, padded,
                                  spec.first_step, spec.last_step))
    return MemoryPlan(buffers=tuple(weight_buffers + act_buffers), weights_end=weights_end,
                      activation_peak=peak, capacity=capacity, steps=steps, strategy=strategy,
                      alignment=alignment)


def memory_specs(stages: StageGraph, *, batch: int = 1, activation_bytes: int = 1,
                 weight_bytes: int = 1, param_bytes: int = 4
                 ) -> tuple[list[WeightSpec], list[ActivationSpec]]:
    """Weight and activation buffers of a model's stages.

    Args:
        stages: the model's stages.
        batch: samples per batch (activations scale with it, weights do not).
        activation_bytes: bytes per activation value (8-bit chip: 1).
        weight_bytes: bytes per weight of an analog matrix ("filter").
        param_bytes: bytes per other parameter (biases, batch-norm scale and shift).
    Returns:
        (weights in execution order, activations with lifetimes in steps).
    """
    for name, value in (("batch", batch), ("activation_bytes", activation_bytes),
                        ("weight_bytes", weight_bytes), ("param_bytes", param_bytes)):
        check_int(value, name, 1)
    weights: list[WeightSpec] = []
    analog_index = 0
    for stage in stages:
        for name, shape, is_matrix in stage.params:
            numel = math.prod(shape)
            if stage.is_analog and is_matrix:
                label = f"filter{analog_index}"
            elif stage.is_analog and name == f"{stage.name}.bias":
                label = f"bias{analog_index}"
            else:
                label = name
            weights.append(WeightSpec(name, numel * (weight_bytes if is_matrix else param_bytes),
                                      label))
        if stage.is_analog:
            analog_index += 1

    step_of = {s.name: s.index + 1 for s in stages}
    last_step = len(stages)
    births: list[tuple[int, str, int]] = [(0, t.name, t.numel) for t in stages.inputs]
    for stage in stages:
        births += [(step_of[stage.name], t.name, t.numel) for t in stage.outputs]
    readers: dict[str, int] = {}
    for stage in stages:
        for t in stage.inputs:
            readers[t.name] = max(readers.get(t.name, 0), step_of[stage.name])
    outputs = {t.name for t in stages.outputs}
    activations = []
    for j, (first, name, numel) in enumerate(sorted(births, key=lambda b: b[0])):
        last = last_step if name in outputs else max(first, readers.get(name, first))
        activations.append(ActivationSpec(name, numel * batch * activation_bytes, first, last,
                                          f"tensor{j}"))
    return weights, activations
