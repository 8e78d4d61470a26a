"""The NumPy/CuPy switch: one-line errors that name the real cause when CuPy cannot run.

That NumPy and CuPy compute the same things is tested in test_gpu_paths.py."""

import types

import numpy as np
import pytest

import tinyvae
from tinyvae.core import arrays
from tinyvae.core.backend import BackendError, get_backend
from tinyvae.cupy_check import cupy_unavailable_reason


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
    monkeypatch.setattr(arrays, "cupy", None)
    monkeypatch.setattr(arrays, "CUPY_IMPORT_ERROR", ModuleNotFoundError("no cupy", name="cupy"))
    with pytest.raises(BackendError) as info:
        get_backend("cupy")
    message = str(info.value)
    assert message.startswith("CuPy is not installed") and "\n" not in message
    # quoted, so that zsh passes the brackets to pip instead of expanding them
    assert 'pip install -e ".[gpu]"' in message and 'pip install -e ".[gpu-cuda13]"' in message


def test_a_cupy_that_fails_to_import_is_not_called_missing(monkeypatch):
    broken = ImportError("libcudart.so.13: cannot open shared object file")
    monkeypatch.setattr(arrays, "cupy", None)
    monkeypatch.setattr(arrays, "CUPY_IMPORT_ERROR", broken)
    message = cupy_unavailable_reason()
    assert "installed but cannot be imported (ImportError: libcudart.so.13: cannot open" in message


def fake_module(count=1, arange=None):
    """A module-like object whose runtime reports ``count`` devices (or raises ``count``)."""

    def device_count():
        if isinstance(count, Exception):
            raise count
        return count

    runtime = types.SimpleNamespace(getDeviceCount=device_count)
    module = types.ModuleType("cupy")
    module.cuda = types.SimpleNamespace(runtime=runtime)
    module.float32 = np.float32
    module.arange = arange
    return module


@pytest.mark.parametrize(
    "count, words",
    [
        (0, "no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"),
        (
            RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient"),
            "the CUDA runtime cannot start (RuntimeError: cudaErrorInsufficientDriver: CUDA "
            "driver version is insufficient): check the NVIDIA driver",
        ),
    ],
    ids=["zero devices", "driver too old"],
)
def test_cupy_without_a_usable_gpu_says_the_real_cause(monkeypatch, count, words):
    monkeypatch.setattr(arrays, "cupy", fake_module(count))
    with pytest.raises(BackendError) as info:
        get_backend("cupy")
    assert words in str(info.value) and "--backend numpy" in str(info.value)


def test_a_gpu_without_the_cuda_libraries_is_found_before_training(monkeypatch):
    def arange(*args, **kwargs):  # what CuPy raises on the first kernel without NVRTC
        raise RuntimeError("CuPy failed to load libnvrtc.so.13: OSError: cannot open")

    monkeypatch.setattr(arrays, "cupy", fake_module(1, arange))
    with pytest.raises(BackendError) as info:
        get_backend("cupy")
    message = str(info.value)
    assert "sees a GPU but cannot compute on it (RuntimeError: CuPy failed to load libnvrtc" in message
    assert 'pip install -e ".[gpu]"' in message and "\n" not in message


@pytest.mark.parametrize("required", ["1", ""])
def test_the_gpu_tests_skip_or_with_the_switch_fail(monkeypatch, required):
    import conftest

    monkeypatch.setattr(conftest, "cupy_unavailable_reason", lambda: "no GPU here")
    monkeypatch.setenv(conftest.REQUIRE_GPU, required)
    expected = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(expected, match="no GPU here"):
        conftest._backend("cupy", monkeypatch)


def test_backend_errors_are_user_errors():
    assert issubclass(BackendError, tinyvae.UserError)
