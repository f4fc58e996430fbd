"""Model zoo: one ResNet family (CIFAR-sized) and the named networks built from it."""
from aimcsim.models.resnet import (PadShortcut, ResidualBlock, ResNet, ResNetSpec, StageSpec,
                                   count_analog_weights, count_parameters)
from aimcsim.models.zoo import MODEL_NAMES, SPECS, build_model

__all__ = ["PadShortcut", "ResidualBlock", "ResNet", "ResNetSpec", "StageSpec",
           "count_analog_weights", "count_parameters", "MODEL_NAMES", "SPECS", "build_model"]
