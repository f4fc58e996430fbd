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


def scratch_buffer(slot: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """A C-contiguous array of ``shape`` and ``dtype`` (default float32) in this thread's
    buffer ``slot`` (contents undefined). It is valid until the next call for the same slot on
    the same thread: callers must not keep it, nor anything that views it, beyond their
    pass."""
    dtype = np.dtype(dtype)
    size = 1
    for side in shape:
        size *= int(side)
    buffers = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = _LOCAL.buffers = {}
    buffer = buffers.get(slot)
    if buffer is None or buffer.nbytes < size * dtype.itemsize:
        buffer = buffers[slot] = np.empty(max(size * dtype.itemsize, 1), np.uint8)
    return buffer[:size * dtype.itemsize].view(dtype).reshape(shape)


def dac_buffer(shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """The buffer of a pass's DAC output (:func:`scratch_buffer` slot ``"dac"``): float32,
    or uint16 for bfloat16 bits."""
    return scratch_buffer("dac", shape, dtype)


def squared(values: np.ndarray) -> np.ndarray:
    """``values ** 2`` (float32) in the per-thread slot ``"square"``: the input of the
    variance GEMM of per-MVM read noise, read once and dropped."""
    return np.square(values, out=scratch_buffer("square", values.shape))
