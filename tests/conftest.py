"""What the test files share: one BLAS thread, and the backends to run on.

* Every test runs with BLAS pinned to one thread: the matrices are small, so one thread
  is fastest, and the timings of other jobs sharing CI's two cores do not disturb it.
* ``backend`` runs a test on NumPy and on CuPy; ``gpu_backend`` on CuPy only. The CuPy
  case carries the ``gpu`` mark (``pytest -m gpu`` selects it) and, where CuPy or a GPU is
  missing, skips with the reason that ``cupy_unavailable_reason`` gives: one way to skip.
"""

import pytest
from threadpoolctl import threadpool_limits

from tinyvae.core.backend import cupy_unavailable_reason, get_backend

CUPY = pytest.param("cupy", marks=pytest.mark.gpu)


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    with threadpool_limits(1):
        yield


def _backend(name):
    reason = cupy_unavailable_reason() if name == "cupy" else None
    if reason is not None:
        pytest.skip(f"CuPy backend unavailable: {reason}")
    return get_backend(name)


@pytest.fixture(params=["numpy", CUPY])
def backend(request):
    """A Backend (float32): NumPy, then CuPy."""
    return _backend(request.param)


@pytest.fixture(params=[CUPY])
def gpu_backend(request):
    """The CuPy Backend (float32), for tests that compare it with NumPy."""
    return _backend(request.param)
