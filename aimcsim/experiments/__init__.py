"""Experiments: the drift study (figure F1, :mod:`aimcsim.experiments.drift`), its plots
(:mod:`aimcsim.experiments.plots`), its points on Dask distributed
(:mod:`aimcsim.experiments.distributed`), the network comparison (figure F2,
:mod:`aimcsim.experiments.compare`) and the accuracy probe of the diagnostic examples
(:mod:`aimcsim.experiments.probe`). Submodules are imported on use, so the command line
starts fast."""
