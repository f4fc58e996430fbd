"""One switch for the CPU threads of a process: torch's intra-op pool and Numba's kernels."""
from __future__ import annotations


def set_compute_threads(threads: int) -> None:
    """Run torch and the Numba kernels on ``threads`` threads each (0: leave both as they are).

    Both pools must agree: a job told to use one thread whose Numba kernels still start one
    worker per core oversubscribes the machine when several such jobs share it (measured on
    2 cores with three single-thread training lanes: 3.6 s per f1net step instead of about
    1 s). Numba cannot use more threads than it started with (``NUMBA_NUM_THREADS``), so its
    count is capped there.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be an integer >= 0, got {threads!r}")
    if threads == 0:
        return
    import numba
    import torch
    # Numba first: with its OpenMP threading layer, setting its count (which may start its
    # pool) resets the calling thread's OpenMP thread count, and torch's intra-op pool is that
    # same OpenMP (measured: torch.get_num_threads() back at 2 after numba.set_num_threads(1)).
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(threads)
