"""Analog torch layers on crossbar tiles, model conversion and the model-level time API."""
from aimcsim.nn.conversion import DEFAULT_MAPPING, convert_to_analog
from aimcsim.nn.guards import WeightsChangedError
from aimcsim.nn.layers import (ANALOG_LAYERS, AnalogConv1d, AnalogConv2d, AnalogLinear,
                               HardwareAwareConfig)
from aimcsim.nn.model_api import (analog_layers, digital, program, reset_saturation,
                                  saturation, set_time, summary)

__all__ = ["DEFAULT_MAPPING", "convert_to_analog", "ANALOG_LAYERS", "AnalogConv1d",
           "AnalogConv2d", "AnalogLinear", "HardwareAwareConfig", "analog_layers", "digital",
           "program", "reset_saturation", "saturation", "set_time", "summary",
           "WeightsChangedError"]
