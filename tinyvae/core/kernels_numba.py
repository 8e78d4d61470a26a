r"""Compiled CPU loops, for the places where NumPy's one-operation-at-a-time costs most:
Adam's update, and the convolution's im2col and col2im (at the end of this file).

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

Numba is optional (``pip install "tinyvae[fast]"``). ``kernels.adam_update`` and
``conv.im2col``/``conv.col2im`` use this module when Numba can be imported, and their NumPy
code otherwise, or when the environment variable ``TINYVAE_KERNELS=numpy`` is set;
``tests/test_perf_paths.py`` checks that both give the same bits. Without Numba this module
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
