"""Reusable per-thread buffers for the short-lived arrays of a tile pass.

The quantised input of a pass (and its square, for per-MVM read noise) lives only until the
GEMM has read it, yet a fresh array of that size is fresh memory: the kernel maps it and
zero-fills every 4 KiB page on first touch. For ResNet-32 at batch 128 those page faults took
about 40 ms of a 500 ms forward on one core. Each named slot keeps one buffer per thread,
grown to the largest array asked for, until the thread ends.
"""
from __future__ import annotations

import threading

import numpy as np

_LOCAL = threading.local()


def scratch_buffer(slot: str, shape: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous float32 array of ``shape`` in this thread's buffer ``slot`` (contents
    undefined). It is valid until the next call for the same slot on the same thread: callers
    must not keep it, nor anything that views it, beyond their pass."""
    size = 1
    for side in shape:
        size *= int(side)
    buffers = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = _LOCAL.buffers = {}
    buffer = buffers.get(slot)
    if buffer is None or buffer.size < size:
        buffer = buffers[slot] = np.empty(max(size, 1), np.float32)
    return buffer[:size].reshape(shape)


def dac_buffer(shape: tuple[int, ...]) -> np.ndarray:
    """The buffer of a pass's DAC output (:func:`scratch_buffer` slot ``"dac"``)."""
    return scratch_buffer("dac", shape)


def squared(values: np.ndarray) -> np.ndarray:
    """``values ** 2`` (float32) in the per-thread slot ``"square"``: the input of the
    variance GEMM of per-MVM read noise, read once and dropped."""
    return np.square(values, out=scratch_buffer("square", values.shape))
