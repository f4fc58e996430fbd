"""Model zoo: one ResNet family and a small vision transformer (CIFAR-sized), and the named
networks built from them."""
from aimcsim.models.resnet import (PadShortcut, ResidualBlock, ResNet, ResNetSpec, StageSpec,
                                   count_analog_weights, count_parameters)
from aimcsim.models.vit import VisionTransformer, ViTSpec
from aimcsim.models.zoo import MODEL_NAMES, SPECS, TRAIT_SPECS, VIT_SPECS, build_model

__all__ = ["PadShortcut", "ResidualBlock", "ResNet", "ResNetSpec", "StageSpec",
           "count_analog_weights", "count_parameters", "MODEL_NAMES", "SPECS", "TRAIT_SPECS",
           "VIT_SPECS",
           "VisionTransformer", "ViTSpec", "build_model"]
