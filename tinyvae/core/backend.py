"""One array backend for NumPy (CPU) and CuPy (GPU).

Everything else in tinyvae receives a :class:`Backend` and writes ``xp.exp``,
``xp.zeros`` ... where ``xp`` is either ``numpy`` or ``cupy``. Because CuPy copies
NumPy's API, the layer and model code never asks which device it runs on.

    >>> be = get_backend("numpy")
    >>> x = be.asarray([[0.0, 1.0]])         # host data -> device array
    >>> be.to_host(be.xp.exp(x))             # device array -> NumPy array
    array([[1.       , 2.7182817]], dtype=float32)

Data crosses between host and device only where it enters (``asarray``) or
leaves (``to_host``); never inside a training step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyvae.core.arrays import CUPY_IMPORT_ERROR, array_module, cupy  # noqa: F401
from tinyvae.errors import BackendError

BACKENDS = ("numpy", "cupy")
DTYPES = ("float32", "float64")

#: what to install, quoted so that every shell (zsh too) passes the brackets to pip
INSTALL_GPU = '`pip install -e ".[gpu]"` (CUDA 12) or `pip install -e ".[gpu-cuda13]"` (CUDA 13)'


def cupy_unavailable_reason() -> str | None:
    """Return why the CuPy backend cannot run here, or ``None`` when it can.

    Three steps, each with its own cause: CuPy imports; the CUDA runtime starts and sees a
    device; and a matrix product and a compiled kernel run on it (the first needs cuBLAS,
    the second NVRTC, which a machine with only the driver lacks)."""
    if cupy is None:
        error = CUPY_IMPORT_ERROR
        if isinstance(error, ModuleNotFoundError) and error.name == "cupy":
            return f"CuPy is not installed: install it with {INSTALL_GPU}, or use --backend numpy"
        return (f"CuPy is installed but cannot be imported ({_cause(error)}): reinstall it "
                f"with {INSTALL_GPU}, or use --backend numpy")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, a driver too old for this CuPy's CUDA ...
        return (f"CuPy is installed but the CUDA runtime cannot start ({_cause(error)}): "
                f"check the NVIDIA driver (nvidia-smi); a driver older than CuPy's CUDA needs "
                f"the other CuPy, {INSTALL_GPU}; or use --backend numpy")
    if count == 0:
        return ("CuPy is installed but no CUDA device is visible (check nvidia-smi and "
                "CUDA_VISIBLE_DEVICES): use --backend numpy")
    return _first_kernels_fail(cupy)


_PROBED: dict = {}  # id(module) -> (module, reason): each CuPy is tried once per process


def _first_kernels_fail(module) -> str | None:
    """Run a matrix product and an elementwise kernel once per process; None when both work."""
    if id(module) in _PROBED:
        return _PROBED[id(module)][1]
    reason = None
    try:
        x = module.arange(4, dtype=module.float32).reshape(2, 2)
        float((x @ x).sum() + module.exp(x).sum())  # one read-back: the work is done
    except Exception as error:  # e.g. NVRTC or cuBLAS missing: CuPy finds them only when used
        reason = (f"CuPy sees a GPU but cannot compute on it ({_cause(error)}): the CUDA "
                  f"libraries (NVRTC, cuBLAS) are probably missing; {INSTALL_GPU} installs "
                  "them with CuPy, or use --backend numpy")
    _PROBED[id(module)] = (module, reason)
    return reason


def _cause(error) -> str:
    """``TypeName: first line of the message``, short enough for a one-line error."""
    text = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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

