"""A strict stand-in for CuPy, backed by NumPy, so that tinyvae's CuPy code runs on every commit.

It is not a GPU and proves nothing about one: it complements ``pytest -m gpu`` and
``benchmarks/gpu_check.py`` on a real device, and never replaces them (cuBLAS, NVRTC, the
fused Adam kernel's rounding, speed and real synchronisation are only seen there). What it
does prove, on any CPU:

* every CuPy path of tinyvae runs, through the CuPy API only, with CuPy's signatures: each
  function and method below takes the parameters CuPy 14.2 takes (read from its source and
  from the signatures compiled into the ``cupy-cuda13x`` 14.2.0 wheel), and nothing else;
* nothing crosses to the host implicitly. As in CuPy, ``numpy.asarray(a)`` raises
  ``TypeError``, and so does mixing a device array with a NumPy array in one operation;
* every read back to the host is counted: ``float(a)``, ``int(a)``, ``bool(a)``, ``a.get()``,
  ``a.item()``, ``a.tolist()``, ``repr``/``str``/``format``, ``cupy.asnumpy(a)``; and so is every
  wait for the device (``stream.synchronize()``). Inside ``forbid_read_back()`` each raises.

Where CuPy would still run, on a slow path or with a hidden copy, the stand-in refuses, on
purpose: a NumPy function or ufunc given a device array (CuPy hands it to itself), a NumPy
array or list as an index or an assigned value (CuPy copies it to the device on each call),
and ``matmul`` of mixed dtypes (off CuPy's cuBLAS fast path, ``_try_fastcall_matmul``).

Like CuPy and unlike NumPy: reductions and scalar indexing return 0-d arrays, integer-array
indices wrap around instead of raising (so an out-of-range label silently becomes another
class), and the random streams differ from NumPy's for the same seed (Philox here, XORWOW
in CuPy, PCG64 in NumPy). ``install(folder)`` writes a ``cupy.py`` that makes this module
``cupy`` for a subprocess (``PYTHONPATH=folder``).
"""

from __future__ import annotations

import collections
import contextlib
import re
import sys
import traceback
import types
from pathlib import Path

import numpy as np

__version__ = f"stand-in (NumPy {np.__version__})"
STAND_IN = True  # how tests and tools tell this module from the real CuPy

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
            "construct a NumPy array explicitly.")  # CuPy's own message  # fmt: skip
counts = collections.Counter()  # "read_back", "sync", "upload": events since reset_counts()
reads: list = []  # where each read-back happened, "what at file:line" (the last 100)
_forbidden = []  # non-empty inside forbid_read_back()


class ReadBackForbidden(AssertionError):
    """A read back to the host (or a wait for the device) inside ``forbid_read_back()``."""


def reset_counts():
    counts.clear()
    reads.clear()


@contextlib.contextmanager
def forbid_read_back():
    """Inside this block every read-back or wait raises ReadBackForbidden: on a GPU each
    would make the host wait for the device."""
    _forbidden.append(True)
    try:
        yield
    finally:
        _forbidden.pop()


def _caller() -> str:
    """file:line of who asked for the read-back: the first frame outside this module and
    tinyvae's backend.py (whose to_host and synchronize only pass the request on)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename)
        if path.name != "fake_cupy.py" and path.parts[-3:] != ("tinyvae", "core", "backend.py"):
            return f"{Path(frame.filename).name}:{frame.lineno}"
    return "?"


def _read_back(what: str, kind="read_back"):
    where = f"{what} at {_caller()}"
    if _forbidden:
        raise ReadBackForbidden(f"{where}: the host waits for the device here")
    counts[kind] += 1
    reads.append(where)
    del reads[:-100]


# --- the array ----------------------------------------------------------------------------


def _wrap(value) -> ndarray:
    array = ndarray.__new__(ndarray)
    array._a = np.asarray(value)  # NumPy scalars become 0-d arrays, as CuPy returns them
    return array


def _operand(x, where="an operand"):
    """The NumPy value behind an argument: device arrays and Python or NumPy scalars only."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray):
        raise TypeError(f"Unsupported type {type(x)} as {where}: a NumPy array mixed with a "
                        "device array (convert it with cupy.asarray first)")  # fmt: skip
    if isinstance(x, (bool, int, float, complex, np.generic)):
        return x
    raise TypeError(f"Unsupported type {type(x)} as {where}")


def _out(out):
    if out is None:
        return None
    if not isinstance(out, ndarray):
        raise TypeError(f"out must be a cupy.ndarray, got {type(out)}")
    return out._a


class ndarray:
    """A device array: a NumPy array that refuses to be treated as one."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # NumPy ufuncs and operators hand over to our reflected methods
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = np.empty(shape, dtype, order=order)

    # Never silently a NumPy array
    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was given a device array: take the function "
                        "from the backend's array module (xp), not from numpy")  # fmt: skip

    # Shape and type: metadata, no read-back
    shape = property(lambda self: self._a.shape)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    dtype = property(lambda self: self._a.dtype)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    T = property(lambda self: _wrap(self._a.T))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (_wrap(row) for row in self._a)

    # Read-backs: each one counted
    def get(self, stream=None, order="C", out=None, blocking=True):
        _read_back("get()")
        return np.array(self._a, order=order)

    def item(self):
        _read_back("item()")
        return self._a.item()

    def tolist(self):
        _read_back("tolist()")
        return self._a.tolist()

    def __float__(self):
        _read_back("float()")
        return float(self._a)

    def __int__(self):
        _read_back("int()")
        return int(self._a)

    def __complex__(self):
        _read_back("complex()")
        return complex(self._a)

    def __bool__(self):
        _read_back("bool()")
        return bool(self._a)

    def __repr__(self):
        _read_back("repr()")
        return repr(self._a).replace("array(", "stand-in array(", 1)

    def __str__(self):
        _read_back("str()")
        return str(self._a)

    def __format__(self, spec):
        _read_back("format()")
        return format(self._a.item() if self.ndim == 0 else self._a, spec)

    def set(self, arr, stream=None):  # host -> device
        if not isinstance(arr, np.ndarray) or arr.shape != self.shape:
            raise ValueError("set() needs a numpy.ndarray of the same shape")
        counts["upload"] += 1
        self._a[...] = arr

    # Indexing
    def _key(self, key):
        """The NumPy key: device index arrays unwrapped, integer ones wrapped around as CuPy
        does; NumPy arrays and lists refused (CuPy copies them to the device each time)."""
        key = key if isinstance(key, tuple) else (key,)
        used = sum(0 if k is None or k is Ellipsis else k.ndim if _is_mask(k) else 1 for k in key)
        out, axis = [], 0
        for k in key:
            if k is Ellipsis:
                axis += self.ndim - used
            elif isinstance(k, ndarray):
                if k.dtype.kind == "b":
                    axis += k.ndim
                    k = k._a
                elif k.dtype.kind in "iu":
                    k = k._a % self.shape[axis]  # CuPy wraps out-of-range indices around
                    axis += 1
                else:
                    raise IndexError("arrays used as indices must be of integer or boolean type")
            elif isinstance(k, (np.ndarray, list)):
                raise TypeError("a host (NumPy or list) index for a device array: make it a "
                                "device array first (CuPy would copy it on every call)")  # fmt: skip
            elif k is not None:
                if not isinstance(k, (int, np.integer, slice)):
                    raise IndexError(f"only integers, slices, None, ... and device arrays are "
                                     f"valid indices, got {type(k)}")  # fmt: skip
                axis += 1
            out.append(k)
        return tuple(out)

    def __getitem__(self, slices):
        return _wrap(self._a[self._key(slices)])

    def __setitem__(self, slices, value):
        if isinstance(value, (np.ndarray, list)):
            raise TypeError("assigning a host array into a device array: convert it with "
                            "cupy.asarray first (an explicit copy)")  # fmt: skip
        self._a[self._key(slices)] = _operand(value, "the assigned value")

    # Methods, with CuPy's parameters
    def reshape(self, *shape, order="C", copy=None):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return _wrap(self._a.reshape(shape, order=order))

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return _wrap(self._a.astype(dtype, order=order, casting=casting or "unsafe", copy=copy))

    def squeeze(self, axis=None):
        return _wrap(self._a.squeeze(axis))

    def transpose(self, *axes):
        return _wrap(self._a.transpose(*axes))

    def copy(self, order="C"):
        return _wrap(self._a.copy(order=order))

    def ravel(self, order="C"):
        return _wrap(self._a.ravel(order))

    def fill(self, value):
        self._a.fill(_operand(value, "the fill value"))

    def view(self, dtype=None, array_class=None):
        return _wrap(self._a.view() if dtype is None else self._a.view(dtype))

    def argsort(self, axis=-1, kind=None):
        return _wrap(np.argsort(self._a, axis=axis, kind="stable"))

    def take(self, indices, axis=None, out=None):
        return _wrap(np.take(self._a, _operand(indices), axis=axis, out=_out(out), mode="wrap"))

    def repeat(self, repeats, axis=None):
        return _wrap(self._a.repeat(repeats, axis))

    def clip(self, min=None, max=None, out=None):
        return clip(self, min, max, out)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return _wrap(self._a.sum(axis=axis, dtype=dtype, out=_out(out), keepdims=keepdims))

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return _wrap(self._a.mean(axis=axis, dtype=dtype, out=_out(out), keepdims=keepdims))

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _wrap(self._a.var(axis=axis, dtype=dtype, out=_out(out), ddof=ddof,
                                 keepdims=keepdims))  # fmt: skip

    def max(self, axis=None, out=None, keepdims=False):
        return _wrap(self._a.max(axis=axis, out=_out(out), keepdims=keepdims))

    def min(self, axis=None, out=None, keepdims=False):
        return _wrap(self._a.min(axis=axis, out=_out(out), keepdims=keepdims))

    def all(self, axis=None, out=None, keepdims=False):
        return _wrap(self._a.all(axis=axis, out=_out(out), keepdims=keepdims))

    def any(self, axis=None, out=None, keepdims=False):
        return _wrap(self._a.any(axis=axis, out=_out(out), keepdims=keepdims))

    def argmax(self, axis=None, out=None, dtype=None, keepdims=False):
        return _wrap(self._a.argmax(axis=axis, out=_out(out), keepdims=keepdims))


def _is_mask(k):
    return isinstance(k, ndarray) and k.dtype.kind == "b"


# --- ufuncs: elementwise functions and the operators --------------------------------------


class ufunc:
    """An elementwise function with CuPy's call: ``f(*args, out=None, dtype=None,
    casting='same_kind')``; arguments are device arrays or scalars, never NumPy arrays."""

    def __init__(self, name, numpy_ufunc):
        self.__name__, self._f, self.nin = name, numpy_ufunc, numpy_ufunc.nin

    def __call__(self, *args, out=None, dtype=None, casting="same_kind"):
        if len(args) != self.nin:
            raise TypeError(f"{self.__name__} takes {self.nin} arguments, got {len(args)}")
        values = [_operand(a, f"an argument of cupy.{self.__name__}") for a in args]
        kwargs = {"casting": casting} | ({} if dtype is None else {"dtype": dtype})
        result = self._f(*values, out=_out(out), **kwargs)
        return out if out is not None else _wrap(result)

    def __repr__(self):
        return f"<stand-in ufunc '{self.__name__}'>"


UFUNCS = ("add subtract multiply divide true_divide floor_divide power negative absolute "
          "exp log log1p expm1 tanh sqrt square cos sin floor ceil maximum minimum isfinite "
          "isnan less less_equal greater greater_equal equal not_equal invert logical_not "
          "logical_and logical_or bitwise_and bitwise_or bitwise_xor sign").split()  # fmt: skip
for _name in UFUNCS:
    globals()[_name] = ufunc(_name, getattr(np, _name))
abs = absolute  # noqa: F821  (CuPy's alias)


def _operator(name, reflected=False, inplace=False):
    f = globals()[name]
    if inplace:
        def method(self, other):
            f(self, other, out=self)
            return self
    elif reflected:
        def method(self, other):
            return f(other, self)
    else:
        def method(self, other):
            return f(self, other)
    return method


for _op, _name in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"),
                   ("truediv", "true_divide"), ("floordiv", "floor_divide"), ("pow", "power"),
                   ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor")]:  # fmt: skip
    setattr(ndarray, f"__{_op}__", _operator(_name))
    setattr(ndarray, f"__r{_op}__", _operator(_name, reflected=True))
    setattr(ndarray, f"__i{_op}__", _operator(_name, inplace=True))
for _op, _name in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"),
                   ("ge", "greater_equal"), ("eq", "equal"), ("ne", "not_equal")]:  # fmt: skip
    setattr(ndarray, f"__{_op}__", _operator(_name))
ndarray.__neg__ = lambda self: negative(self)  # noqa: F821
ndarray.__pos__ = lambda self: self.copy()
ndarray.__abs__ = lambda self: absolute(self)  # noqa: F821
ndarray.__invert__ = lambda self: invert(self)  # noqa: F821


def matmul(a, b, out=None):
    """``a @ b`` (CuPy: ``matmul(x1, x2, /, out=None, **kwargs)``). Mixed dtypes, or an ``out``
    of another dtype, are refused: CuPy would leave its cuBLAS fast path for them."""
    x, y, o = _operand(a, "a matmul operand"), _operand(b, "a matmul operand"), _out(out)
    if not (isinstance(a, ndarray) and isinstance(b, ndarray)):
        raise TypeError("matmul takes two device arrays (a scalar is not allowed)")
    dtypes = {x.dtype, y.dtype} | ({o.dtype} if o is not None else set())
    if len(dtypes) > 1:
        names = ", ".join(sorted(str(d) for d in dtypes))
        raise TypeError(f"matmul of mixed dtypes ({names}): CuPy would leave cuBLAS's fast "
                        "path; the stand-in refuses (make every operand the same dtype)")  # fmt: skip
    result = np.matmul(x, y, out=o)
    return out if out is not None else _wrap(result)


ndarray.__matmul__ = lambda self, other: matmul(self, other)
ndarray.__rmatmul__ = lambda self, other: matmul(other, self)


def _no_inplace_matmul(self, other):
    raise TypeError("In-place matrix multiplication is not (yet) supported")


ndarray.__imatmul__ = _no_inplace_matmul


# --- creating arrays, and moving them -----------------------------------------------------


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    """Host data (or a device array) -> a device array. A copy from the host is an upload."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    counts["upload"] += 1
    return _wrap(np.array(a, dtype=dtype, order=order or "K"))


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    if isinstance(obj, ndarray):
        return _wrap(np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    counts["upload"] += 1
    return _wrap(np.array(obj, dtype=dtype, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if isinstance(a, ndarray):
        return a.get(order=order)
    return np.asarray(a, order=order)


def empty(shape, dtype=float, order="C"):
    return _wrap(np.empty(shape, dtype, order))


def zeros(shape, dtype=float, order="C"):
    return _wrap(np.zeros(shape, dtype, order))


def eye(N, M=None, k=0, dtype=float, order="C"):
    return _wrap(np.eye(N, M, k, dtype, order))


def ones(shape, dtype=float, order="C"):
    return _wrap(np.ones(shape, dtype, order))


def full(shape, fill_value, dtype=None, order="C"):
    return _wrap(np.full(shape, _operand(fill_value, "fill_value"), dtype, order))


def _like(prototype):
    if not isinstance(prototype, ndarray):
        raise TypeError(f"expected a cupy.ndarray, got {type(prototype)}")
    return prototype._a


def empty_like(prototype, dtype=None, order="K", subok=None, shape=None):
    return _wrap(np.empty_like(_like(prototype), dtype, order, shape=shape))


def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    return _wrap(np.zeros_like(_like(a), dtype, order, shape=shape))


def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    return _wrap(np.ones_like(_like(a), dtype, order, shape=shape))


def arange(start, stop=None, step=1, dtype=None):
    for value in (start, stop, step):
        if isinstance(value, (ndarray, np.ndarray)):
            raise TypeError("arange takes numbers, not arrays")
    return _wrap(np.arange(start, stop, step, dtype=dtype) if stop is not None
                 else np.arange(start, dtype=dtype))  # fmt: skip


def _arrays(tup, what):
    return [_operand(a, f"an array to {what}") if isinstance(a, ndarray) else _not_device(a, what)
            for a in tup]  # fmt: skip


def _not_device(a, what):
    raise TypeError(f"Unsupported type {type(a)}: only device arrays can be {what}d")


def concatenate(tup, axis=0, out=None, *, dtype=None, casting="same_kind"):
    return _wrap(np.concatenate(_arrays(tup, "concatenate"), axis, _out(out), dtype=dtype,
                                casting=casting))  # fmt: skip


def stack(tup, axis=0, out=None, *, dtype=None, casting="same_kind"):
    return _wrap(np.stack(_arrays(tup, "stack"), axis, _out(out), dtype=dtype, casting=casting))


def tile(A, reps):
    return _wrap(np.tile(_like(A), reps))


def repeat(a, repeats, axis=None):
    return _wrap(np.repeat(_like(a), repeats, axis))


def where(condition, x=None, y=None):
    if x is None or y is None:
        raise NotImplementedError("the stand-in implements where(condition, x, y) only")
    return _wrap(np.where(_like(condition), _operand(x, "x of where"), _operand(y, "y of where")))


def argsort(a, axis=-1, kind=None):
    _like(a)
    return a.argsort(axis, kind)


def clip(a, a_min, a_max, out=None):
    low, high = _operand(a_min, "a_min"), _operand(a_max, "a_max")
    result = np.clip(_like(a), low, high, out=_out(out))
    return out if out is not None else _wrap(result)


def take_along_axis(a, indices, axis):
    return _wrap(np.take_along_axis(_like(a), _like(indices) % a.shape[axis], axis))


finfo, iinfo, dtype, result_type = np.finfo, np.iinfo, np.dtype, np.result_type
bool_, float16, float32, float64 = np.bool_, np.float16, np.float32, np.float64
int8, int16, int32, int64 = np.int8, np.int16, np.int32, np.int64
uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
pi, e, inf, nan, newaxis = np.pi, np.e, np.inf, np.nan, None


# --- random numbers ------------------------------------------------------------------------


class Generator:
    """``cupy.random.Generator``'s methods that tinyvae calls, with CuPy's parameters."""

    def __init__(self, seed=None):
        self._rng = np.random.Generator(np.random.Philox(seed))  # not NumPy's stream

    @staticmethod
    def _float(dtype):
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        return np.dtype(dtype)

    def _fill(self, values, out):
        if out is None:
            return _wrap(values)
        out[...] = _wrap(values)
        return out

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        size = out.shape if out is not None else size
        return self._fill(self._rng.standard_normal(size, dtype=self._float(dtype)), out)

    def random(self, size=None, dtype=np.float64, out=None):
        size = out.shape if out is not None else size
        return self._fill(self._rng.random(size, dtype=self._float(dtype)), out)

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return _wrap(self._rng.integers(low, high, size, dtype=dtype, endpoint=endpoint))


random = types.SimpleNamespace(default_rng=lambda seed=None: Generator(seed), Generator=Generator)


# --- the device: one, always there; waiting for it is counted -----------------------------


class CUDARuntimeError(RuntimeError):
    pass


class Stream:
    def synchronize(self):
        _read_back("stream.synchronize()", kind="sync")


_STREAM = Stream()
cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, CUDARuntimeError=CUDARuntimeError),
    get_current_stream=lambda: _STREAM,
    Stream=Stream,
)


class _MemoryPool:
    def free_all_blocks(self):
        pass

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


# --- ElementwiseKernel: its C statements, run one by one on NumPy arrays -----------------

C_FUNCTIONS = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "tanh": np.tanh, "abs": np.abs,
               "fabs": np.abs, "max": np.maximum, "min": np.minimum}  # fmt: skip
STATEMENT = re.compile(r"^\s*(\w+)\s*([-+*/]?=)\s*(.+?)\s*$", re.DOTALL)


class ElementwiseKernel:
    """``cupy.ElementwiseKernel(in_params, out_params, operation, name='kernel', ...)``.

    The parameters are checked as CuPy checks them (every array of a type placeholder
    like ``T`` has the same dtype; scalars are cast to it); the operation, C statements
    ``x = ...;`` or ``x -= ...;`` over the parameters, is run one statement at a time on
    whole NumPy arrays in that dtype, each operation rounded in the order the C code sets
    (as a GPU compiles it with ``--fmad=false``: no fused multiply-adds)."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, **kwargs):  # fmt: skip
        unknown = set(kwargs) - {"options", "loop_prep", "after_loop"}
        if unknown:
            raise TypeError(f"ElementwiseKernel got unexpected arguments {sorted(unknown)}")
        self.options = tuple(kwargs.get("options", ()))
        self.inputs, self.outputs = _params(in_params), _params(out_params)
        self.name, self.statements = name, []
        for line in operation.split(";"):
            if line.strip():
                match = STATEMENT.match(line)
                if not match or match.group(1) not in {n for _, n in self.outputs}:
                    raise ValueError(f"{name}: the stand-in runs 'output op= expression;' "
                                     f"statements only, got {line.strip()!r}")  # fmt: skip
                self.statements.append(match.groups())

    def __call__(self, *args, size=None, block_size=None):
        params = self.inputs + self.outputs
        if len(args) not in (len(self.inputs), len(params)):
            raise TypeError(f"Wrong number of arguments for {self.name!r}")
        if len(args) == len(self.inputs):
            raise NotImplementedError("the stand-in needs the output arrays passed in")
        types_ = {}
        for (kind, pname), arg in zip(params, args):
            if isinstance(arg, ndarray):
                if types_.setdefault(kind, arg.dtype) != arg.dtype:
                    raise TypeError(f"Type is mismatched. {pname} {kind} {arg.dtype} "
                                    f"{types_[kind]}")  # fmt: skip
            elif not isinstance(arg, (int, float, np.generic)):
                raise TypeError(f"Unsupported type {type(arg)} for {pname}")
        names = {}
        for (kind, pname), arg in zip(params, args):
            names[pname] = arg._a if isinstance(arg, ndarray) else types_[kind].type(arg)
        for target, op, expression in self.statements:
            value = eval(_python(expression), {"__builtins__": {}}, {**C_FUNCTIONS, **names})
            array_ = names[target]
            if op == "=":
                array_[...] = value
            else:
                {"-=": np.subtract, "+=": np.add, "*=": np.multiply, "/=": np.divide}[op](
                    array_, value, out=array_)
        return tuple(args[len(self.inputs):]) if len(self.outputs) > 1 else args[-1]


def _params(text):
    pairs = [p.split() for p in text.split(",") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"cannot read the parameters {text!r}")
    return [(kind, name) for kind, name in pairs]


def _python(expression):
    """The C expressions the stand-in accepts are Python too, but for float literals."""
    return re.sub(r"(\d+\.\d*)f\b", r"\1", expression)


# --- making this module "cupy" for a subprocess --------------------------------------------


def install(folder) -> Path:
    """Write ``folder/cupy.py``, which makes this module ``cupy`` for any process that has
    ``folder`` first on its PYTHONPATH; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    (folder / "cupy.py").write_text(
        '"""The NumPy-backed stand-in for CuPy (tests/fake_cupy.py): not a GPU."""\n'
        "import sys\n"
        f"sys.path.insert(0, {str(here)!r})\n"
        "import fake_cupy\n"
        "sys.path.remove(" f"{str(here)!r})\n"
        'sys.modules["cupy"] = fake_cupy\n'
    )
    return folder


def use(monkeypatch):
    """Make this module tinyvae's CuPy for one test (``monkeypatch`` restores the real one)."""
    from tinyvae.core import arrays, backend

    for module in (arrays, backend):  # each holds the name ``cupy`` it imported
        monkeypatch.setattr(module, "cupy", sys.modules[__name__])
    reset_counts()


