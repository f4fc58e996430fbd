"""Serial and parallel compilations of one kernel that do not share Numba's disk cache.

Numba's on-disk cache (``cache=True``) files a compiled function under its qualified name and
signature; the ``parallel`` flag is not part of the key. ``nb.njit(parallel=True)(f)`` and
``nb.njit()(f.py_func)`` of the same function therefore read and overwrite one cache entry, so
whichever compiled first is what both run afterwards: measured, a "parallel" ADC kernel that
took as long on 2 threads as on 1 (5.9 ms), and 2.9 ms once compiled under its own name. The
twin below is a copy of the function under another qualified name.
"""
from __future__ import annotations

import types

import numba as nb


def serial_twin(kernel, suffix: str = "_serial", **options):
    """``nb.njit(**options)`` of a copy of ``kernel`` (a dispatcher or a plain function) named
    ``<qualified name><suffix>``, so that it has its own cache entries."""
    func = getattr(kernel, "py_func", kernel)
    twin = types.FunctionType(func.__code__, func.__globals__, func.__name__ + suffix,
                              func.__defaults__, func.__closure__)
    twin.__qualname__ = func.__qualname__ + suffix
    twin.__module__ = func.__module__
    twin.__doc__ = func.__doc__
    twin.__kwdefaults__ = func.__kwdefaults__
    return nb.njit(**options)(twin)
