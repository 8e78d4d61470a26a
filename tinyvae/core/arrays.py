"""Which library an array belongs to: ``array_module(x)`` is ``numpy`` or ``cupy``.

This is Chainer's idiom: a function asks its arrays for their module (``xp``) instead of
asking which device it runs on. It lives apart from ``backend.py`` and imports nothing
from tinyvae, so that the layers, which need only this, stay low in the import levels that
``tests/test_layering.py`` counts; ``backend.py`` offers it too.
"""

from __future__ import annotations

import numpy as np

try:  # CuPy is optional: the one guarded import (backend.py says why it cannot be used)
    import cupy  # type: ignore[import-not-found]

    CUPY_IMPORT_ERROR: Exception | None = None
except Exception as error:  # ImportError, or a broken CUDA installation
    cupy = None
    CUPY_IMPORT_ERROR = error


def array_module(array):
    """``numpy`` or ``cupy``, whichever ``array`` belongs to (Chainer's idiom)."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy
    return np
