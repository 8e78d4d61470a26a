"""The NumPy/CuPy switch: clear one-line errors, and the same results on both (with a GPU)."""

import types

import numpy as np
import pytest

import tinyvae
from tinyvae.core import backend
from tinyvae.core.backend import BackendError, cupy_unavailable_reason, get_backend

NO_GPU = cupy_unavailable_reason()


def test_numpy_backend_round_trip():
    be = get_backend("numpy")
    x = be.asarray([[0.0, 1.0]])
    assert x.dtype == np.float32 and be.owns(x)
    np.testing.assert_array_equal(be.to_host(x), [[0.0, 1.0]])
    assert be.rng(3).standard_normal() == get_backend("numpy").rng(3).standard_normal()


def test_unknown_backend_lists_the_choices():
    with pytest.raises(BackendError, match="unknown backend 'torch': choose one of numpy, cupy"):
        get_backend("torch")
    with pytest.raises(BackendError, match="unknown dtype"):
        get_backend("numpy", "float16")


def test_missing_cupy_says_which_extra_to_install(monkeypatch):
    monkeypatch.setattr(backend, "cupy", None)
    with pytest.raises(BackendError) as info:
        get_backend("cupy")
    message = str(info.value)
    assert "\n" not in message and "pip install -e .[gpu]" in message and "gpu-cuda13" in message


@pytest.mark.parametrize("failure", ["zero devices", "no driver"])
def test_cupy_without_a_visible_gpu_says_so(monkeypatch, failure):
    def count():
        if failure == "no driver":
            raise RuntimeError("cudaErrorNoDevice")
        return 0

    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=count))
    )
    monkeypatch.setattr(backend, "cupy", fake)
    with pytest.raises(BackendError, match="no CUDA device is visible"):
        get_backend("cupy")


def test_backend_errors_are_user_errors():
    assert issubclass(BackendError, tinyvae.UserError)


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-10), ("float32", 1e-4)])
def test_numpy_and_cupy_give_the_same_loss_and_gradients(gpu_backend, dtype, rtol):
    kwargs = dict(hidden=(32, 16), latent_dim=4, dtype=dtype, seed=7)
    cpu, gpu = tinyvae.VAE(20, **kwargs), tinyvae.VAE(20, backend="cupy", **kwargs)
    rng = np.random.default_rng(0)
    x, eps = rng.random((16, 20)).astype(dtype), rng.standard_normal((16, 4)).astype(dtype)
    for objective, samples in (("elbo", 1), ("iwae", 3)):
        e = np.repeat(eps[None], samples, 0)
        loss_c, parts_c, _ = cpu.loss_and_grads(x, eps=e, samples=samples, objective=objective)
        loss_g, parts_g, _ = gpu.loss_and_grads(
            gpu.backend.asarray(x), eps=e, samples=samples, objective=objective
        )
        np.testing.assert_allclose(float(loss_g), float(loss_c), rtol=rtol)
        np.testing.assert_allclose(
            gpu.backend.to_host(gpu.flat.grad), cpu.flat.grad, rtol=rtol, atol=rtol * 1e-2
        )
    for opt_c, opt_g in ((tinyvae.Adam(cpu.flat), tinyvae.Adam(gpu.flat)),):
        opt_c.step()
        opt_g.step()
    np.testing.assert_allclose(
        gpu.backend.to_host(gpu.flat.data), cpu.flat.data, rtol=rtol, atol=rtol * 1e-2
    )
