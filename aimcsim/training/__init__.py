"""Training: FP32 and hardware-aware training loops with checkpoints and resume."""
from aimcsim.training.trainer import TrainConfig, evaluate, train_classifier

__all__ = ["TrainConfig", "evaluate", "train_classifier"]
