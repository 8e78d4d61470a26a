r"""Compiled CPU loops, for the places where NumPy's one-operation-at-a-time costs most:
Adam's update, the convolution's im2col and col2im, and the ReLU's passes and one
transposing copy (at the end of this file).

NumPy runs every operation as its own loop over the array. Adam's update
(``kernels.adam_numpy``) is a dozen such loops over all 650,000 parameters of the default
model, every step, which load and store 28 numbers per parameter and cost about a third of
a training epoch on the CPU. The loop below does the same update element by element: it
loads 4 numbers (theta, g, m, v), keeps the rest in registers, and stores 3. Numba
compiles it to machine code. It is the formula of the CuPy kernel in ``kernels.py``.

They run on one core on purpose. Between two matrix products OpenBLAS keeps its worker
threads spinning for a while, so a second set of threads started here would fight them
for the cores; measured on 2 cores, that made the whole epoch more than twice as slow
(``benchmarks/README.md``).

Numba is optional (``pip install "tinyvae[fast]"``). ``kernels.adam_update``,
``conv.im2col``/``conv.col2im``, ``layers.ReLU`` and ``conv.same_layout`` use this module
when Numba can be imported, and their NumPy code otherwise, or when the environment
variable ``TINYVAE_KERNELS=numpy`` is set; ``tests/test_perf_paths.py`` checks that both
give the same bits. Without Numba this module
still imports, its loops stay plain Python, and :func:`available` says not to use them.

The first call in a process compiles each loop, or reads it back from the disk cache that
``cache=True`` keeps: about half a second, once.
"""

from __future__ import annotations

import os

import numpy as np

try:
    import numba
except ImportError:  # Numba is optional
    numba = None


def available() -> bool:
    """Whether the loops below are compiled and wanted: Numba imports, and the environment
    variable ``TINYVAE_KERNELS`` is not ``numpy``."""
    return numba is not None and os.environ.get("TINYVAE_KERNELS", "").strip().lower() != "numpy"


def compiled(loop):
    """The loop compiled by Numba (kept in a disk cache), or as it is without Numba."""
    return numba.njit(cache=True, error_model="numpy")(loop) if numba is not None else loop


@compiled
def adam_update(g, b1, one_minus_b1, b2, one_minus_b2, alpha, eps_hat, flush, tiny, theta, m, v):
    r"""One Adam step on flat arrays, in place: theta, m, v and g are all (P,), one dtype.

    The scalars come in the arrays' dtype, so that a float32 run stays in float32, with the
    bias corrections already folded into ``alpha`` and ``eps_hat`` (see ``optim.Adam``):

    .. math:: m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
              v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
              \theta \leftarrow \theta - \alpha\, m / (\sqrt v + \hat\epsilon)

    With ``flush`` true, moments smaller in size than ``tiny`` (the smallest normal float)
    are first set to 0, as ``kernels.flush_subnormals`` does on the NumPy path, so that they
    never linger as the subnormal numbers that x86 CPUs compute slowly. Each line rounds as
    the NumPy update does (the brackets set the order), so both paths give the same bits.

    Nothing here checks the arguments: ``kernels.adam_update`` passes arrays of one size and dtype
    and scalars of that dtype (a Python float would turn the loop into float64).
    """
    zero = tiny - tiny  # 0 in the scalars' dtype: a bare 0 would make the loop float64
    for i in range(theta.size):
        mi, vi, gi = m[i], v[i], g[i]
        if flush and abs(mi) < tiny:
            mi = zero
        if flush and vi < tiny:  # v is never negative
            vi = zero
        mi = b1 * mi + one_minus_b1 * gi
        vi = b2 * vi + one_minus_b2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        theta[i] -= alpha * (mi / (np.sqrt(vi) + eps_hat))


# --- the convolution's copies (``conv.py``) ------------------------------------------------
# NumPy's im2col and col2im are loops of k*k strided copies, each one pass over memory;
# col2im also fills a padded buffer with zeros first, and each of its k*k passes reads and
# writes a quarter of it again. The loops below visit each entry once. They are the loops of
# ``conv.im2col`` and ``conv.col2im`` written out per element, with the same result to the
# bit: im2col only copies, and col2im adds each pixel's entries in the same (u, v) order,
# starting from 0, as NumPy's passes do.


@compiled
def im2col(X, k, s, p, cols):
    """X (C, H, W, B), one block in memory (the layers' images, batch innermost) -> cols
    (k, k, C, Ho, Wo, B), written: cols[u, v, c, i, j, b] = X[c, s i + u - p, s j + v - p, b],
    or 0 on the padding. Each innermost loop copies B numbers that lie side by side."""
    C, H, W, B = X.shape
    Ho, Wo = cols.shape[3], cols.shape[4]
    for u in range(k):
        for v in range(k):
            for c in range(C):
                for i in range(Ho):
                    y = s * i + u - p
                    for j in range(Wo):
                        x = s * j + v - p
                        if 0 <= y < H and 0 <= x < W:
                            for b in range(B):
                                cols[u, v, c, i, j, b] = X[c, y, x, b]
                        else:
                            for b in range(B):
                                cols[u, v, c, i, j, b] = 0


@compiled
def col2im(cols, k, s, p, out):
    """cols (k, k, C, Ho, Wo, B) -> out (C, H, W, B), written: each pixel gets the sum of the
    entries that im2col copied from it, (u, v) in increasing order, from 0."""
    C, H, W, B = out.shape
    Ho, Wo = cols.shape[3], cols.shape[4]
    for c in range(C):
        for y in range(H):
            for x in range(W):
                for b in range(B):
                    out[c, y, x, b] = 0
                for u in range(k):  # the window rows u that read row y: y + p = s i + u
                    i = (y + p - u) // s
                    if s * i != y + p - u or i < 0 or i >= Ho:
                        continue
                    for v in range(k):
                        j = (x + p - v) // s
                        if s * j != x + p - v or j < 0 or j >= Wo:
                            continue
                        for b in range(B):
                            out[c, y, x, b] += cols[u, v, c, i, j, b]


# --- the ReLU's passes (``layers.ReLU``) and one transposing copy (``conv.same_layout``) ---
# NumPy's ReLU backward, ``dy * (y > 0)``, is two passes and a temporary array of booleans
# that the product converts to floats; its ``maximum(x, 0)`` is one pass, but a slow one.
# The loops below are one pass each, with NumPy's bits: NaN stays NaN, max(-0, 0) is +0, and
# a gradient is multiplied by 1 (which leaves it as it is) or by 0 (which gives +-0, or NaN
# for an infinite one). They run on the arrays' memory as flat vectors (:func:`flat_views`).


def flat_views(*arrays):
    """The arrays' memory as 1-D views that list the elements in one order, when the loops
    are available and every array is a NumPy array of the same shape, dtype and strides,
    one block in memory (in any axis order); else None."""
    first = arrays[0]
    alike = all(isinstance(a, np.ndarray) and (a.shape, a.dtype, a.strides) ==
                (first.shape, first.dtype, first.strides) for a in arrays)  # fmt: skip
    if not (available() and alike):
        return None
    by_stride = sorted(range(first.ndim), key=lambda axis: -first.strides[axis])
    blocks = [a.transpose(by_stride) for a in arrays]  # the axes in memory order
    return [b.reshape(-1) for b in blocks] if blocks[0].flags.c_contiguous else None


def relu_forward(x, y) -> bool:
    """y = max(x, 0) (``y`` may be ``x``) by the compiled loop; False, and nothing done,
    when it cannot run (see :func:`flat_views`)."""
    views = flat_views(x, y)
    if views is not None:
        _relu_forward(views[0], x.dtype.type(0), views[1])
    return views is not None


def relu_backward(dy, y, dx) -> bool:
    """dx = dy * (y > 0) (``dx`` may be ``dy``) by the compiled loop; False, and nothing
    done, when it cannot run (see :func:`flat_views`)."""
    views = flat_views(dy, y, dx)
    if views is not None:
        _relu_backward(views[0], views[1], dy.dtype.type(0), views[2])
    return views is not None


@compiled
def _relu_forward(x, zero, y):
    for i in range(x.size):
        xi = x[i]
        y[i] = xi if xi > 0 or xi != xi else zero  # xi != xi: NaN


@compiled
def _relu_backward(dy, y, zero, dx):
    for i in range(dy.size):
        dx[i] = dy[i] if y[i] > 0 else dy[i] * zero


def copy_batch_first(src, out) -> bool:
    """out (B, n), one (B, n) block, = src (B, ...) reshaped, when src is one block with the
    batch innermost, (..., B) in memory, as the conv layers keep their images: a transpose
    of an (n, B) matrix, by the compiled loop. False, and nothing done, when it cannot run."""
    if not (available() and isinstance(src, np.ndarray) and isinstance(out, np.ndarray)
            and src.ndim > 1 and src.size > 0):  # fmt: skip
        return False
    memory = src.transpose(*range(1, src.ndim), 0)  # (..., B): src's memory order
    if not (memory.flags.c_contiguous and out.flags.c_contiguous and out.ndim == 2
            and out.shape == (len(src), src.size // len(src))
            and out.dtype == src.dtype):  # fmt: skip
        return False
    _transpose(memory.reshape(-1, len(src)), out)
    return True


@compiled
def _transpose(a, out):
    """out (m, n) = a (n, m) transposed, in 32 x 32 tiles: the rows of a tile that are read
    and the ones that are written both stay in the cache, where an element-by-element
    transpose would fetch a cache line for every number it writes."""
    n, m = a.shape
    for i0 in range(0, n, 32):
        for j0 in range(0, m, 32):
            for i in range(i0, min(i0 + 32, n)):
                for j in range(j0, min(j0 + 32, m)):
                    out[j, i] = a[i, j]
