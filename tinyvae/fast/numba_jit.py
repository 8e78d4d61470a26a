"""Numba, when it is installed and wanted: the one switch for every compiled CPU loop.

Numba is optional (``pip install "tinyvae[fast]"``). Without it, or with the environment
variable ``TINYVAE_KERNELS=numpy``, :func:`available` is False and every fast path runs its
NumPy code instead; the loops then stay plain Python and are never called. The modules that
hold loops (``adam_loop.py``, ``conv.py``) write them as plain Python functions, and
:func:`compiled` compiles one on its first use, so a program that never needs them does not
wait for Numba to load: about half a second, once per process, or a read of the disk cache
that ``cache=True`` keeps.

The loops run on one core on purpose: a second set of threads would fight OpenBLAS's
spinning workers for the cores (``benchmarks/README.md``).
"""

from __future__ import annotations

import functools
import os


@functools.cache
def numba_module():
    """The ``numba`` module, imported on first use; None where it is not installed."""
    try:
        import numba
    except ImportError:  # Numba is optional
        return None
    return numba


def available() -> bool:
    """Whether the loops are compiled and wanted: Numba imports, and the environment
    variable ``TINYVAE_KERNELS`` is not ``numpy``."""
    wanted = os.environ.get("TINYVAE_KERNELS", "").strip().lower() != "numpy"
    return wanted and numba_module() is not None


def compiled(loop):
    """``loop``, a plain Python function, compiled by Numba (kept in a disk cache); None
    where :func:`available` is False."""
    return _jit(loop) if available() else None


@functools.cache
def _jit(loop):
    # nogil: a loop lets go of Python's lock, so two threads can run loops at once
    # (tinyvae/tools/halves.py); one thread alone runs the same code at the same speed.
    return numba_module().njit(cache=True, error_model="numpy", nogil=True)(loop)
