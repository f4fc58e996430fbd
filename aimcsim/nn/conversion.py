"""``convert_to_analog``: swap every Linear / Conv1d / Conv2d, multi-head attention and
LSTM / GRU / RNN of a torch model for its analog counterpart through a mapping table, leaving
everything else (bias, batch-norm, pooling, activations, softmax, gates) digital."""
from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping

from torch import nn

from aimcsim.nn.attention import AnalogMultiheadAttention, disable_fused_transformer_paths
from aimcsim.nn.composite import name_sublayers
from aimcsim.nn.coverage import matrix_weights
from aimcsim.nn.layers import (ANALOG_LAYERS, AnalogConv1d, AnalogConv2d, AnalogLinear,
                               HardwareAwareConfig)
from aimcsim.nn.recurrent import AnalogGRU, AnalogLSTM, AnalogRNN
from aimcsim.tiles.config import AnalogConfig

#: digital module type -> analog class (extend it to support more layer types).
DEFAULT_MAPPING: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: AnalogLinear,
    nn.Conv1d: AnalogConv1d,
    nn.Conv2d: AnalogConv2d,
    nn.MultiheadAttention: AnalogMultiheadAttention,
    nn.LSTM: AnalogLSTM,
    nn.GRU: AnalogGRU,
    nn.RNN: AnalogRNN,
}
#: digital modules that use their children's weights directly (``nn.MultiheadAttention`` reads
#: ``out_proj.weight`` without calling ``out_proj``): when left digital, their children are too.
_OPAQUE = (nn.MultiheadAttention,)


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name.startswith(prefix + ".") for prefix in prefixes)


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
    Conv1d, Conv2d, MultiheadAttention, LSTM, GRU and RNN layers run on analog tiles.

    Args:
        model: any torch module (not only ``nn.Sequential``).
        config: the analog configuration of every layer (default ``AnalogConfig()``: PCM,
            7-bit DAC, 9-bit ADC, output noise 0.06, 512 x 512 tiles, GDC).
        overrides: per-layer configs, keyed by module name (``"fc"``, ``"stages.0"`` covers
            everything below) or by module type; the first matching key wins.
        exclude: module names or types to leave digital, with everything below them.
        inplace: convert ``model`` itself instead of a deep copy.
        hwa: hardware-aware training settings of the analog layers.
        mapping: digital type -> analog class table (default :data:`DEFAULT_MAPPING`).
    Returns:
        The converted model. Layers that hold matrix weights but are neither converted nor
        excluded (e.g. Conv3d, transposed convs, Embedding, custom ``nn.Parameter`` matrices)
        stay digital and are listed in one ``UserWarning``. Attention and recurrent layers
        convert as a whole (one config for all their sub-layers; an override keyed by the
        module's name applies). Converted ``nn.TransformerEncoder`` stacks never take torch's
        fused fast path, which would bypass the tiles.
        A module used at several places of the model becomes one analog layer used at all of
        them.
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
    handled: list[str] = []  # converted, excluded or opaque sub-trees
    converted: dict[int, nn.Module] = {}  # id(digital module) -> its analog layer
    owners = _parameter_owners(target)
    root_cls = _analog_class(target, mapping)
    whole = root_cls is not None or isinstance(target, _OPAQUE)  # root converts as a whole
    modules = [] if whole else list(target.named_modules(remove_duplicate=False))
    for name, module in modules:
        if not name or isinstance(module, ANALOG_LAYERS) or _under(name, handled):
            continue
        if id(module) in converted:  # the same module used twice: one analog layer, reused
            _set_submodule(target, name, converted[id(module)])
            handled.append(name)
            continue
        if any(_matches(name, module, key) for key in exclude):
            handled.append(name)
            continue
        analog_cls = _analog_class(module, mapping)
        if analog_cls is None:
            if matrix_weights(module) or isinstance(module, _OPAQUE):
                skipped.append(f"{name} ({type(module).__name__})")
            if isinstance(module, _OPAQUE):
                handled.append(name)
            continue
        _refuse_tied_parameters(name, module, owners)
        layer_config = next((cfg for key, cfg in overrides.items()
                             if _matches(name, module, key)), config)
        try:
            analog = analog_cls.from_digital(module, copy.deepcopy(layer_config), hwa)
        except ValueError as err:
            raise ValueError(f"cannot convert layer {name!r}: {err}") from None
        analog.layer_name = name
        name_sublayers(analog, name)
        analog.train(module.training)
        converted[id(module)] = analog
        _set_submodule(target, name, analog)
        handled.append(name)
    root_excluded = any(_matches("", target, key) for key in exclude)
    if root_cls is not None and not root_excluded:
        analog = root_cls.from_digital(target, copy.deepcopy(config), hwa)
        analog.layer_name = "<root>"
        name_sublayers(analog, "")
        target = analog
    elif not root_excluded and not isinstance(target, ANALOG_LAYERS) and (
            matrix_weights(target) or isinstance(target, _OPAQUE)):
        skipped.append(f"<root> ({type(target).__name__})")
    disable_fused_transformer_paths(target)
    if skipped:
        warnings.warn("layers with weights left digital (no analog counterpart; pass them in "
                      "exclude= to silence this): " + ", ".join(skipped), UserWarning,
                      stacklevel=2)
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
