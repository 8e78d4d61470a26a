r"""Adam's update made fast: one call that picks the fastest way this machine has.

``core/optim.py``'s ``Adam`` states the maths; this file only makes it quick. The update, with the bias
corrections folded into two numbers :math:`\alpha_t` and :math:`\hat\epsilon_t` (see
``optim.Adam``), is, element by element,

.. math:: m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
          v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
          \theta \leftarrow \theta - \alpha_t\, m / (\sqrt v + \hat\epsilon_t)

and :func:`adam_update` runs it in one of three ways:

* on a GPU (CuPy arrays): one fused kernel, one pass over the buffer, no temporaries;
* on the CPU with Numba installed: one compiled loop (``adam_loop.py``);
* on the CPU without it (or with ``TINYVAE_KERNELS=numpy``, or ``compiled=False``): NumPy,
  a dozen in-place passes, over the buffer block by block so that each block stays in the
  CPU cache (:func:`adam_numpy`).

Both CPU ways give the same bits at every step (``tests/test_perf_paths.py``), and both
clear the moments of subnormal numbers every ``FLUSH_EVERY`` steps (:func:`flush_subnormals`).
"""

from __future__ import annotations

import functools

import numpy as np

from tinyvae.core.arrays import array_module
from tinyvae.fast import adam_loop, numba_jit

BLOCK = 2**15  # elements per NumPy block: the 5 arrays of a block (640 KB) stay in the cache
FLUSH_EVERY = 10  # steps between two flush_subnormals


def adam_update(theta, g, m, v, beta1, beta2, alpha, eps_hat, t, scratch, compiled=True):
    """Adam's step ``t`` (from 1) on flat arrays (P,), in place: theta, m and v are updated.

    ``scratch``: an array like theta for the NumPy path to work in (no new arrays per step).
    ``compiled=False`` asks for NumPy even when the compiled loop is there (not on a GPU).
    """
    b1, b2 = float(beta1), float(beta2)
    xp = array_module(g)
    if xp is not np:  # CuPy: one kernel, compiled on first use
        _cupy_adam(xp)(g, b1, 1 - b1, b2, 1 - b2, alpha, eps_hat, theta, m, v)
        return
    flush = t % FLUSH_EVERY == 0
    loop = compiled_adam_loop() if compiled else None
    if loop is not None:  # one loop over the buffer instead of a dozen
        c = g.dtype.type  # the scalars in the buffer's dtype: a float32 run stays float32
        tiny = np.finfo(g.dtype).tiny
        loop(g, c(b1), c(1 - b1), c(b2), c(1 - b2), c(alpha), c(eps_hat), flush, c(tiny),
             theta, m, v)  # fmt: skip
        return
    for start in range(0, g.size, BLOCK):
        block = slice(start, start + BLOCK)
        adam_numpy(theta[block], g[block], m[block], v[block], b1, b2, alpha, eps_hat, flush,
                   scratch[block])  # fmt: skip


def adam_numpy(theta, g, m, v, b1, b2, alpha, eps_hat, flush, s):
    """The NumPy update of one block: each line is one pass, written in place (``s``: scratch).

    ``b1`` and ``b2`` are Python floats: NumPy then rounds them to the arrays' dtype (a
    float64 scalar would turn a float32 update into a float64 one, rounded differently)."""
    if flush:  # here, where the block is in the cache for the update anyway
        flush_subnormals(m, s)
        flush_subnormals(v, s)
    np.multiply(g, 1 - b1, out=s)  # m = b1 m + (1 - b1) g
    m *= b1
    m += s
    # A gradient beyond sqrt(max float), 1.8e19 in float32 (a diverging run), squares to
    # inf: v becomes inf and that weight's step m / (sqrt(v) + eps_hat) is 0, not NaN. The
    # compiled loop, the GPU kernel and PyTorch's Adam do the same, without a warning.
    with np.errstate(over="ignore"):
        np.multiply(g, g, out=s)  # v = b2 v + (1 - b2) g^2
    s *= 1 - b2
    v *= b2
    v += s
    np.sqrt(v, out=s)  # s = alpha m / (sqrt(v) + eps_hat)
    s += eps_hat
    np.divide(m, s, out=s)
    s *= alpha
    theta -= s


def flush_subnormals(a, scratch):
    """Set the entries of ``a`` smaller in size than the smallest normal float to 0, in place.

    Where a gradient stays exactly 0 (a pixel that is blank in every image of the batch),
    Adam's m shrinks by beta1 each step until it falls below about 1e-38 (float32), into the
    *subnormal* numbers, on which x86 CPUs compute 10-100 times slower. A value that small
    moves no weight (it is divided by at least eps_hat), so setting it to 0 changes nothing
    but the time. ``scratch``: an array like ``a`` to work in.
    """
    xp = array_module(a)
    xp.abs(a, out=scratch)
    a[scratch < xp.finfo(a.dtype).tiny] = 0


@functools.cache
def compiled_adam_loop():
    """``adam_loop.adam_update``, or None without Numba or with ``TINYVAE_KERNELS=numpy``.

    Compiled on first use, not with tinyvae, so a program that never steps Adam on the
    CPU does not wait for Numba to load. The answer is kept for the rest of the process:
    set the variable before the first step (``compiled_adam_loop.cache_clear()`` makes
    it look again)."""
    return numba_jit.compiled(adam_loop.adam_update)


@functools.cache
def _cupy_adam(cupy):
    """The whole Adam update as one GPU kernel, built by ``cupy`` (the arrays' module) and
    compiled on first use. Every T is the arrays' dtype; the scalars are rounded to it.

    The brackets set the order of the roundings, the NumPy passes' order, and ``--fmad=false``
    stops the compiler from fusing a multiply and an add into one rounding; so each line
    rounds as the CPU's does. (The CPU also clears subnormal moments every FLUSH_EVERY
    steps; this kernel keeps them, which moves no weight measurably.)"""
    return cupy.ElementwiseKernel(
        "T g, T b1, T one_minus_b1, T b2, T one_minus_b2, T alpha, T eps_hat",
        "T theta, T m, T v",
        """
        m = b1 * m + one_minus_b1 * g;
        v = b2 * v + one_minus_b2 * (g * g);
        theta -= alpha * (m / (sqrt(v) + eps_hat));
        """,
        "tinyvae_adam",
        options=("--fmad=false",),
    )
