"""Experiments: the drift study (figure F1) and the network comparison (figure F2)."""
from aimcsim.experiments.drift import (F1_TIMES, F2_TIMES, TIME_PRESETS, DriftStudyConfig,
                                       run_drift_study, summarise)
from aimcsim.experiments.plots import plot_accuracy_over_time

__all__ = ["F1_TIMES", "F2_TIMES", "TIME_PRESETS", "DriftStudyConfig", "run_drift_study",
           "summarise", "plot_accuracy_over_time"]
