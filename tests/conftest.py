"""What the test files share: one BLAS thread, and the backends to run on.

* Every test runs with BLAS pinned to one thread: the matrices are small, so one thread
  is fastest, and the timings of other jobs sharing CI's two cores do not disturb it.
* ``backend`` runs a test on NumPy, on CuPy and on the stand-in for CuPy; ``gpu_backend``
  on CuPy and the stand-in only.
* The CuPy case carries the ``gpu`` mark (``pytest -m gpu`` selects it) and, where CuPy or
  a GPU is missing, skips with the reason that ``cupy_unavailable_reason`` gives: one way to
  skip. With ``TINYVAE_REQUIRE_GPU=1`` (as ``benchmarks/gpu_check.py`` runs them) it fails
  instead, so a GPU machine whose CuPy cannot run is never mistaken for a pass.
* The stand-in case (mark ``stand_in``) runs the same CuPy code paths on every commit, on
  ``tests/fake_cupy.py``: NumPy behind CuPy's API, refusing implicit copies to the host and
  counting every read-back. It complements the GPU run and never replaces it.
"""

import os

import fake_cupy
import pytest
from threadpoolctl import threadpool_limits

from tinyvae.core.backend import cupy_unavailable_reason, get_backend

REQUIRE_GPU = "TINYVAE_REQUIRE_GPU"
CUPY = pytest.param("cupy", marks=pytest.mark.gpu)
STAND_IN = pytest.param("stand-in", marks=pytest.mark.stand_in)


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    with threadpool_limits(1):
        yield


def _backend(name, monkeypatch):
    if name == "stand-in":
        fake_cupy.use(monkeypatch)  # tinyvae's CuPy is the stand-in for this test
        return get_backend("cupy")
    reason = cupy_unavailable_reason() if name == "cupy" else None
    if reason is not None:
        if os.environ.get(REQUIRE_GPU) == "1":
            pytest.fail(f"{REQUIRE_GPU}=1 but the CuPy backend cannot run: {reason}")
        pytest.skip(f"CuPy backend unavailable: {reason}")
    return get_backend(name)


@pytest.fixture(params=["numpy", CUPY, STAND_IN])
def backend(request, monkeypatch):
    """A Backend (float32): NumPy, then CuPy, then the stand-in for CuPy."""
    return _backend(request.param, monkeypatch)


@pytest.fixture(params=[CUPY, STAND_IN])
def gpu_backend(request, monkeypatch):
    """The CuPy Backend (float32), on a GPU or on the stand-in, for tests that compare it
    with NumPy."""
    return _backend(request.param, monkeypatch)
