"""One array backend for NumPy (CPU) and CuPy (GPU).

Everything else in tinyvae receives a :class:`Backend` and writes ``xp.exp``,
``xp.zeros`` ... where ``xp`` is either ``numpy`` or ``cupy``. Because CuPy copies
NumPy's API, the layer and model code never asks which device it runs on.

    >>> be = get_backend("numpy")
    >>> x = be.asarray([[0.0, 1.0]])         # host data -> device array
    >>> be.to_host(be.xp.exp(x))             # device array -> NumPy array
    array([[1.       , 2.7182817]], dtype=float32)

Data crosses between host and device only where it enters (``asarray``) or
leaves (``to_host``); never inside a training step. Why CuPy cannot run on a machine, when it
cannot, is ``tinyvae/cupy_check.py``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyvae.core.arrays import array_module, cupy  # noqa: F401  (array_module: offered here too)
from tinyvae.cupy_check import cupy_unavailable_reason
from tinyvae.errors import BackendError

BACKENDS = ("numpy", "cupy")
DTYPES = ("float32", "float64")

@dataclass(frozen=True)
class Backend:
    """An array module plus the few helpers that differ between NumPy and CuPy.

    Attributes
    ----------
    name : "numpy" or "cupy"
    xp : the array module itself (``numpy`` or ``cupy``)
    dtype : default floating dtype for new arrays (float32 to train, float64 to check)
    """

    name: str
    xp: Any
    dtype: Any

    def rng(self, seed: int | None):
        """A seeded random generator that makes arrays on this backend's device."""
        return self.xp.random.default_rng(seed)

    def asarray(self, array, dtype=None):
        """Host (or device) data -> an array of this backend, in ``dtype`` (default: ours)."""
        return self.xp.asarray(array, dtype=self.dtype if dtype is None else dtype)

    def to_host(self, array) -> np.ndarray:
        """Any array of this backend -> a NumPy array in host memory."""
        if self.name == "cupy":
            return cupy.asnumpy(array)
        return np.asarray(array)

    def owns(self, array) -> bool:
        """True when ``array`` lives on this backend (a NumPy array is not a CuPy one)."""
        if self.name == "cupy":
            return isinstance(array, cupy.ndarray)
        return isinstance(array, np.ndarray)

    def synchronize(self) -> None:
        """Wait for queued GPU work to finish (for honest timings); a no-op on NumPy."""
        if self.name == "cupy":
            cupy.cuda.get_current_stream().synchronize()


def get_backend(name: str = "numpy", dtype: str = "float32") -> Backend:
    """Return the :class:`Backend` called ``name`` ("numpy" or "cupy"); given a Backend of
    that dtype, return it as it is.

    Raises :class:`BackendError` with a one-line message when the name is unknown,
    CuPy is not installed, or no CUDA device is visible.
    """
    if isinstance(name, Backend):  # one already built: use it as it is when the dtype agrees
        if str(name.dtype) == str(dtype):
            return name
        name = name.name
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if str(dtype) not in DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if name == "numpy":
        return Backend("numpy", np, np.dtype(dtype))
    reason = cupy_unavailable_reason()
    if reason is not None:
        raise BackendError(reason)
    return Backend("cupy", cupy, np.dtype(dtype))

