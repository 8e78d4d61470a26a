"""The stand-in for CuPy is as strict as it says: each refusal and each count, shown once;
and, where the real CuPy can be imported, its signatures are CuPy's."""

import inspect
import re

import fake_cupy as cp
import numpy as np
import pytest


def test_no_implicit_conversion_to_the_host():
    a = cp.arange(4, dtype=cp.float32)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError):  # a NumPy ufunc given a device array
        np.exp(a)
    with pytest.raises(TypeError, match="numpy.concatenate was given a device array"):
        np.concatenate([a, a])


def test_no_mixing_with_numpy_arrays():
    a, host = cp.ones(3, dtype=cp.float32), np.ones(3, dtype=np.float32)
    for mix in (lambda: a + host, lambda: host + a, lambda: cp.multiply(a, host),
                lambda: a @ host, lambda: cp.where(a > 0, host, a)):  # fmt: skip
        with pytest.raises(TypeError, match="Unsupported type"):
            mix()
    with pytest.raises(TypeError, match="host array"):
        a[...] = host
    with pytest.raises(TypeError, match="host"):
        a[np.array([0, 1])]
    assert float((a + np.float32(2)).sum()) == 9.0  # NumPy scalars are fine, as in CuPy


def test_every_read_back_is_counted_and_can_be_forbidden():
    a = cp.arange(3, dtype=cp.float64)
    cp.reset_counts()
    float(a[0]), int(a[1]), bool(a[2]), a.get(), a.item() if a.size == 1 else a.tolist()
    cp.asnumpy(a), f"{a[0]:.1f}", cp.cuda.get_current_stream().synchronize()
    assert cp.counts["read_back"] == 7 and cp.counts["sync"] == 1
    assert cp.reads[0].startswith("float() at test_fake_cupy.py:")
    with cp.forbid_read_back():
        b = a * 2 + 1  # queued work is fine
        with pytest.raises(cp.ReadBackForbidden, match="float"):
            float(b[0])
    assert float(b[0]) == 1.0  # allowed again outside


def test_like_cupy_indices_wrap_and_reductions_stay_arrays():
    a = cp.zeros((2, 3), dtype=cp.float32)
    a[cp.arange(2), cp.asarray([1, 4])] = 1  # column 4 of 3 wraps around to 1
    assert a.get().tolist() == [[0, 1, 0], [0, 1, 0]]
    assert isinstance(a.sum(), cp.ndarray) and a.sum().shape == ()
    assert isinstance(a[0, 1], cp.ndarray)
    with pytest.raises(TypeError):
        range(cp.asarray(3))  # no __index__: CuPy refuses the implicit read too


def test_matmul_of_mixed_dtypes_is_refused():
    a, b = cp.ones((2, 2), dtype=cp.float32), cp.ones((2, 2), dtype=cp.float64)
    with pytest.raises(TypeError, match="mixed dtypes"):
        a @ b
    with pytest.raises(TypeError, match="mixed dtypes"):
        cp.matmul(a, a, out=cp.empty((2, 2), dtype=cp.float64))


def test_the_elementwise_kernel_checks_types_and_runs_the_c_statements():
    kernel = cp.ElementwiseKernel("T x, T a", "T y", "y = a * (x * x) + y;", "axpy")
    x, y = cp.asarray([1.0, 2.0], dtype=cp.float32), cp.ones(2, dtype=cp.float32)
    kernel(x, 3.0, y)
    assert y.get().tolist() == [4.0, 13.0] and y.dtype == np.float32
    with pytest.raises(TypeError, match="Type is mismatched"):
        kernel(x, 3.0, cp.ones(2, dtype=cp.float64))


# --- against the real CuPy, where it can be imported (the GPU machine) -----------------------

FUNCTIONS = ["asarray", "array", "empty", "zeros", "ones", "full", "empty_like", "zeros_like",
             "ones_like", "arange", "concatenate", "stack", "tile", "repeat", "where", "argsort",
             "clip", "take_along_axis", "asnumpy"]  # fmt: skip
METHODS = ["get", "item", "tolist", "set", "reshape", "astype", "squeeze", "transpose", "copy",
           "ravel", "fill", "view", "argsort", "take", "repeat", "clip", "sum", "mean", "var",
           "max", "min", "all", "any", "argmax"]  # fmt: skip
GENERATOR = ["standard_normal", "random", "integers"]


def parameter_names(function) -> list:
    """Parameter names (``*args``, ``**kwargs`` marked), from inspect or, for compiled
    functions, from the signature Cython writes on the docstring's first line."""
    try:
        parameters = inspect.signature(function).parameters.values()
        names = [("*" if p.kind == p.VAR_POSITIONAL else "**" if p.kind == p.VAR_KEYWORD else "")
                 + p.name for p in parameters]  # fmt: skip
    except (TypeError, ValueError):
        first = (function.__doc__ or "").strip().splitlines()[0]
        inside = re.search(r"\((.*)\)", first).group(1)
        names = [re.split(r"[=\s:]", part.strip().split()[-1] if "=" not in part
                          else part.split("=")[0].strip().split()[-1])[0]
                 for part in inside.split(",") if part.strip()]  # fmt: skip
    return [n for n in names if n not in ("self", "/", "*")]


@pytest.mark.gpu
def test_the_stand_in_takes_the_real_cupy_s_parameters():
    """Checked when this was written against CuPy 14.2's sources and compiled signatures;
    this keeps it true for the CuPy that is installed (the GPU machine's)."""
    cupy = pytest.importorskip("cupy")
    if getattr(cupy, "STAND_IN", False):
        pytest.skip("cupy is the stand-in here: nothing real to compare with")
    pairs = [(name, getattr(cp, name), getattr(cupy, name)) for name in FUNCTIONS]
    pairs += [(f"ndarray.{n}", getattr(cp.ndarray, n), getattr(cupy.ndarray, n)) for n in METHODS]
    real_generator = type(cupy.random.default_rng(0))
    pairs += [(f"Generator.{n}", getattr(cp.Generator, n), getattr(real_generator, n))
              for n in GENERATOR]  # fmt: skip
    differ = [f"{name}: stand-in {parameter_names(f)}, CuPy {parameter_names(r)}"
              for name, f, r in pairs if parameter_names(f) != parameter_names(r)]  # fmt: skip
    assert not differ, "\n".join(differ)
