"""Experiments: the drift study (figure F1, :mod:`aimcsim.experiments.drift`), its plots
(:mod:`aimcsim.experiments.plots`) and the network comparison (figure F2,
:mod:`aimcsim.experiments.compare`). Submodules are imported on use, so the command line
starts fast."""
