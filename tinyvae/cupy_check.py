"""Whether the CuPy backend can run on this machine, and if not, why, in one line.

``core/backend.py`` asks :func:`cupy_unavailable_reason` before it hands out a CuPy backend,
and raises its answer as a ``BackendError``; the tests ask it to skip a GPU case with the
reason. Each failure names its cause and what to install or check: CuPy missing, CuPy
present but broken, a CUDA runtime that cannot start, no visible device, or a device on
which the CUDA libraries that CuPy compiles and multiplies with (NVRTC, cuBLAS) are missing.
"""

from __future__ import annotations

from tinyvae.core import arrays

#: what to install, quoted so that every shell (zsh too) passes the brackets to pip
INSTALL_GPU = '`pip install -e ".[gpu]"` (CUDA 12) or `pip install -e ".[gpu-cuda13]"` (CUDA 13)'


def cupy_unavailable_reason() -> str | None:
    """Return why the CuPy backend cannot run here, or ``None`` when it can.

    Three steps, each with its own cause: CuPy imports; the CUDA runtime starts and sees a
    device; and a matrix product and a compiled kernel run on it (the first needs cuBLAS,
    the second NVRTC, which a machine with only the driver lacks)."""
    cupy, error = arrays.cupy, arrays.CUPY_IMPORT_ERROR  # read now: tests stand in for them
    if cupy is None:
        if isinstance(error, ModuleNotFoundError) and error.name == "cupy":
            return f"CuPy is not installed: install it with {INSTALL_GPU}, or use --backend numpy"
        return (
            f"CuPy is installed but cannot be imported ({_cause(error)}): reinstall it "
            f"with {INSTALL_GPU}, or use --backend numpy"
        )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, a driver too old for this CuPy's CUDA ...
        return (
            f"CuPy is installed but the CUDA runtime cannot start ({_cause(error)}): "
            f"check the NVIDIA driver (nvidia-smi); a driver older than CuPy's CUDA needs "
            f"the other CuPy, {INSTALL_GPU}; or use --backend numpy"
        )
    if count == 0:
        return (
            "CuPy is installed but no CUDA device is visible (check nvidia-smi and "
            "CUDA_VISIBLE_DEVICES): use --backend numpy"
        )
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
        reason = (
            f"CuPy sees a GPU but cannot compute on it ({_cause(error)}): the CUDA "
            f"libraries (NVRTC, cuBLAS) are probably missing; {INSTALL_GPU} installs "
            "them with CuPy, or use --backend numpy"
        )
    _PROBED[id(module)] = (module, reason)
    return reason


def _cause(error) -> str:
    """``TypeName: first line of the message``, short enough for a one-line error."""
    text = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
