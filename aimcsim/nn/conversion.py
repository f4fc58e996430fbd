"""``convert_to_analog``: swap every Linear / Conv1d / Conv2d of a torch model for its analog
counterpart through a mapping table, leaving everything else (bias, batch-norm, pooling,
activations) digital."""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping

from torch import nn

from aimcsim.nn.layers import (ANALOG_LAYERS, AnalogConv1d, AnalogConv2d, AnalogLinear,
                               HardwareAwareConfig)
from aimcsim.tiles.config import AnalogConfig

#: digital module type -> analog class (extend it to support more layer types).
DEFAULT_MAPPING: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: AnalogLinear,
    nn.Conv1d: AnalogConv1d,
    nn.Conv2d: AnalogConv2d,
}
#: module types that hold matmul weights but have no analog counterpart (warned about).
_UNSUPPORTED = (nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                nn.Bilinear, nn.RNNBase, nn.MultiheadAttention, nn.Embedding)


def _matches(name: str, module: nn.Module, key) -> bool:
    if isinstance(key, str):
        return name == key or name.startswith(key + ".")
    return isinstance(key, type) and isinstance(module, key)


def _analog_class(module: nn.Module, mapping: Mapping) -> type | None:
    if type(module) in mapping:
        return mapping[type(module)]
    for digital, analog in mapping.items():
        if isinstance(module, digital) and not isinstance(module, ANALOG_LAYERS):
            return analog
    return None


def convert_to_analog(model: nn.Module, config: AnalogConfig | None = None, *,
                      overrides: Mapping[str | type, AnalogConfig] | None = None,
                      exclude: Iterable[str | type] = (), inplace: bool = False,
                      hwa: HardwareAwareConfig | None = None,
                      mapping: Mapping[type, type] | None = None) -> nn.Module:
    """Return a copy of ``model`` (or ``model`` itself with ``inplace=True``) whose Linear,
    Conv1d and Conv2d layers run on analog tiles.

    Args:
        model: any torch module (not only ``nn.Sequential``).
        config: the analog configuration of every layer (default ``AnalogConfig()``: PCM,
            7-bit DAC, 9-bit ADC, output noise 0.06, 512 x 512 tiles, GDC).
        overrides: per-layer configs, keyed by module name (``"fc"``, ``"stages.0"`` covers
            everything below) or by module type; the first matching key wins.
        exclude: module names or types to leave digital.
        inplace: convert ``model`` itself instead of a deep copy.
        hwa: hardware-aware training settings of the analog layers.
        mapping: digital type -> analog class table (default :data:`DEFAULT_MAPPING`).
    Returns:
        The converted model. Layers that hold weights but cannot be converted (e.g. Conv3d,
        transposed convs, RNNs) stay digital and are listed in a ``UserWarning``. A module
        used at several places of the model becomes one analog layer used at all of them.
    Raises:
        ValueError: a layer to convert shares a Parameter with another module (weight tying,
            e.g. a head tied to an embedding); the message names both.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if config is not None and not isinstance(config, AnalogConfig):
        raise ValueError(f"config must be an AnalogConfig, got {type(config).__name__}")
    mapping = dict(DEFAULT_MAPPING if mapping is None else mapping)
    overrides = dict(overrides or {})
    for key, value in overrides.items():
        if not isinstance(value, AnalogConfig):
            raise ValueError(f"overrides[{key!r}] must be an AnalogConfig, got "
                             f"{type(value).__name__}")
    exclude = list(exclude)
    target = model if inplace else copy.deepcopy(model)
    skipped: list[str] = []
    converted: dict[int, nn.Module] = {}  # id(digital module) -> its analog layer
    owners = _parameter_owners(target)
    for name, module in list(target.named_modules(remove_duplicate=False)):
        if not name or isinstance(module, ANALOG_LAYERS):
            continue
        if id(module) in converted:  # the same module used twice: one analog layer, reused
            _set_submodule(target, name, converted[id(module)])
            continue
        if any(_matches(name, module, key) for key in exclude):
            continue
        analog_cls = _analog_class(module, mapping)
        if analog_cls is None:
            if isinstance(module, _UNSUPPORTED) and name not in skipped:
                skipped.append(f"{name} ({type(module).__name__})")
            continue
        _refuse_tied_parameters(name, module, owners)
        layer_config = next((cfg for key, cfg in overrides.items()
                             if _matches(name, module, key)), config)
        try:
            analog = analog_cls.from_digital(module, copy.deepcopy(layer_config), hwa)
        except ValueError as err:
            raise ValueError(f"cannot convert layer {name!r}: {err}") from None
        analog.layer_name = name
        analog.train(module.training)
        converted[id(module)] = analog
        _set_submodule(target, name, analog)
    if isinstance(target, tuple(mapping)) and not isinstance(target, ANALOG_LAYERS):
        analog = _analog_class(target, mapping).from_digital(target, copy.deepcopy(config), hwa)
        analog.layer_name = "<root>"
        target = analog
    if skipped:
        warnings.warn("layers left digital (no analog counterpart): " + ", ".join(skipped),
                      UserWarning, stacklevel=2)
    return target


def _parameter_owners(root: nn.Module) -> dict[int, list[tuple[str, nn.Module]]]:
    """id(parameter) -> every (qualified parameter name, distinct module) holding it."""
    owners: dict[int, list[tuple[str, nn.Module]]] = {}
    for name, module in root.named_modules(remove_duplicate=False):
        for pname, param in module.named_parameters(recurse=False):
            holders = owners.setdefault(id(param), [])
            if all(m is not module for _, m in holders):
                holders.append((f"{name}.{pname}" if name else pname, module))
    return owners


def _refuse_tied_parameters(name: str, module: nn.Module,
                            owners: dict[int, list[tuple[str, nn.Module]]]) -> None:
    """A layer to convert must not share a Parameter with another module (weight tying, e.g.
    ``head.weight = embedding.weight``): the analog layer would get its own copy and silently
    untie them. The same module object used twice is fine (converted once, reused)."""
    for pname, param in module.named_parameters(recurse=False):
        others = [qual for qual, m in owners.get(id(param), []) if m is not module]
        if others:
            raise ValueError(
                f"cannot convert layer {name!r}: its {pname} is tied to {', '.join(others)} "
                f"(one shared Parameter); an analog copy would silently untie them. Untie "
                f"them first (e.g. {name}.{pname} = nn.Parameter({others[0]}.detach().clone()))"
                f" or leave {name!r} digital with exclude=[{name!r}]")


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)
