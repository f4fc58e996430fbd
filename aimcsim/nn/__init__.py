"""Analog torch layers on crossbar tiles, model conversion and the model-level time API."""
from aimcsim.nn.attention import AnalogMultiheadAttention
from aimcsim.nn.batchnorm import adapt_batchnorm
from aimcsim.nn.conversion import DEFAULT_MAPPING, convert_to_analog
from aimcsim.nn.guards import WeightsChangedError
from aimcsim.nn.layers import (ANALOG_LAYERS, AnalogConv1d, AnalogConv2d, AnalogLinear,
                               HardwareAwareConfig)
from aimcsim.nn.model_api import (analog_layers, calibrate_input_ranges, digital, program,
                                  reset_saturation, saturation, set_backend, set_time, summary)
from aimcsim.nn.recurrent import AnalogGRU, AnalogLSTM, AnalogRNN

__all__ = ["DEFAULT_MAPPING", "convert_to_analog", "ANALOG_LAYERS", "AnalogConv1d",
           "AnalogConv2d", "AnalogGRU", "AnalogLinear", "AnalogLSTM", "AnalogMultiheadAttention",
           "AnalogRNN", "HardwareAwareConfig", "WeightsChangedError", "adapt_batchnorm",
           "analog_layers", "calibrate_input_ranges", "digital", "program", "reset_saturation",
           "saturation", "set_backend", "set_time", "summary"]
