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
* What several test files build: ``nudged_vae`` (the small float64 model of the gradient
  checks), ``small_config`` and ``training_parts`` (a short run on the bundled digits), and
  the ``digits`` fixture.
* ``slow`` marks what takes more than a few seconds: ``pytest -m "not slow"`` is the quick loop.
"""

import os

import fake_cupy
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import tinyvae
from tinyvae.core.backend import get_backend
from tinyvae.core.gradcheck import check_gradient, directional_check
from tinyvae.cupy_check import cupy_unavailable_reason
from tinyvae.tools.config import TrainConfig, check
from tinyvae.tools.data import Batches, load
from tinyvae.tools.training import make_model, make_optimizer

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


@pytest.fixture(scope="session")
def digits():
    """The bundled 8x8 digits (a Dataset), loaded once."""
    return load("digits")


def assert_refused_in_one_line(done, words=()) -> None:
    """A finished command (``subprocess.run`` result) that refused its input as promised:
    status 2, no traceback, one line on stderr, ``error: ...``, holding each of ``words``."""
    err = done.stderr
    assert done.returncode == 2, (done.returncode, err[-2000:])
    assert "Traceback" not in err + done.stdout
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in words:
        assert fragment in err, (fragment, err)


def worst_gradient_error(model, **kwargs):
    """Largest relative error over all parameters: per element and along a random direction."""
    loss = lambda: model.loss_and_grads(**kwargs)[0]
    _, _, grads = model.loss_and_grads(**kwargs)
    grads = {k: g.copy() for k, g in grads.items()}
    errors = {}
    for name, p in model.parameters().items():
        errors[name] = max(
            check_gradient(loss, p, grads[name]), directional_check(loss, p, grads[name])
        )
    return max(errors.values()), errors


def nudged_vae(input_dim, seed=0, **kwargs):
    """A float64 VAE whose biases are nudged off zero, so that no ReLU input sits exactly on
    its kink (where a finite difference sees half the slope): what the gradient checks use."""
    model = tinyvae.VAE(input_dim, **{"dtype": "float64", "seed": seed, **kwargs})
    rng = np.random.default_rng(seed + 100)
    for name, p in model.parameters().items():
        if name.endswith(".b"):
            p[...] = 0.1 * rng.standard_normal(p.shape)
    return model


def small_config(**changes):
    """A checked TrainConfig for a short run on the digits: one hidden layer of 32, L = 4."""
    base = dict(dataset="digits", hidden=(32,), latent_dim=4, batch_size=100, no_progress=True)
    return check(TrainConfig(**(base | changes)))


def training_parts(config, ds, backend=None):
    """What a run builds from its config: (model, optimizer, batches)."""
    model = make_model(config, ds.train_x.shape[1], ds.num_classes, backend)
    batches = Batches(ds.train_x, ds.train_y, model.backend, config.batch_size, config.seed)
    return model, make_optimizer(model, config), batches
