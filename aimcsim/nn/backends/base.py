"""What a backend is: the strategy that runs a layer's DAC, GEMM, periphery and ADC.

A backend turns a layer input into the summed outputs of its tiles (before the digital bias),
from the weights the :class:`~aimcsim.nn.analog_mvm.AnalogMVM` hands it. Backends hold no
state of their own; :func:`aimcsim.nn.backends.select_backend` picks one per forward pass.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from aimcsim.nn.analog_mvm import AnalogMVM


class Backend(ABC):
    """A way to compute a programmed layer's analog matrix product."""

    #: the name :func:`aimcsim.nn.backends.select_backend` and ``set_backend`` use
    name: str = ""

    @abstractmethod
    def infer(self, mvm: "AnalogMVM", x: torch.Tensor) -> torch.Tensor:
        """The summed tile outputs (weight x input units, without bias, in the 2-D form of
        the layer's geometry) of the programmed tiles of ``mvm`` for the input ``x``."""

    def checks_output(self, mvm: "AnalogMVM") -> bool:
        """True when :meth:`infer` itself raises
        :class:`~aimcsim.tiles.engine.NonFiniteOutput` for any output value that is not
        finite, so the layer need not read the output again to check it."""
        return False
