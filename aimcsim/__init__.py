"""aimcsim: analog in-memory computing (PCM crossbar) simulator for PyTorch models.

Layers: ``aimcsim.devices`` (device physics, numpy only) -> ``aimcsim.tiles`` (crossbars and
their periphery, the tiling rule, numpy + Numba kernels) -> ``aimcsim.nn`` (torch layers,
conversion; ``aimcsim.nn.backends``: the Numba and torch backends) -> ``aimcsim.training`` /
``aimcsim.experiments`` / ``aimcsim.system``. docs/architecture.md has the map.

The torch-facing names below are imported lazily, so ``import aimcsim.devices`` does not import
torch.
"""
__version__ = "0.1.0"

_LAZY = {
    "convert_to_analog": "aimcsim.nn", "program": "aimcsim.nn", "set_time": "aimcsim.nn",
    "set_backend": "aimcsim.nn",
    "summary": "aimcsim.nn", "saturation": "aimcsim.nn", "digital": "aimcsim.nn",
    "analog_layers": "aimcsim.nn", "calibrate_input_ranges": "aimcsim.nn",
    "adapt_batchnorm": "aimcsim.nn", "HardwareAwareConfig": "aimcsim.nn",
    "AnalogLinear": "aimcsim.nn", "AnalogConv1d": "aimcsim.nn", "AnalogConv2d": "aimcsim.nn",
    "AnalogMultiheadAttention": "aimcsim.nn", "AnalogLSTM": "aimcsim.nn",
    "AnalogGRU": "aimcsim.nn", "AnalogRNN": "aimcsim.nn",
    "AnalogConfig": "aimcsim.tiles", "PeripheryConfig": "aimcsim.tiles",
    "MappingConfig": "aimcsim.tiles", "DriftCompensationConfig": "aimcsim.tiles",
    "IRDropConfig": "aimcsim.tiles",
    "AnalogTile": "aimcsim.tiles", "TiledMatrix": "aimcsim.tiles",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aimcsim' has no attribute {name!r}")
