"""im2col and col2im as loops that visit each entry once, for Numba to compile.

NumPy's im2col and col2im (``core/conv.py``) are loops of k*k strided copies, each one pass
over memory; col2im also fills a padded buffer with zeros first, and each of its k*k passes
reads and writes a quarter of it again. :func:`im2col_loop` and :func:`col2im_loop` are the
same loops written out per element, with the same result to the bit: im2col only copies, and
col2im adds each pixel's entries in the same (u, v) order, starting from 0, as NumPy's passes
do (``tests/test_perf_paths.py``).

``core/conv.py`` asks :func:`im2col` and :func:`col2im` first, handing them
``numba_jit.compiled``. They return None where the loops cannot help, and the NumPy passes
run instead: without Numba (or with ``TINYVAE_KERNELS=numpy``), on CuPy (whose copies run
on the GPU already), and for an im2col input that is not one (C, H, W, B) block in memory,
which NumPy copies faster. This file imports nothing from tinyvae, so that the convolution
layers stay low in the import levels that ``tests/test_layering.py`` counts.
"""

from __future__ import annotations

import numpy as np


def batch_innermost(X):
    """Whether X (B, C, H, W) is one (C, H, W, B) block in memory, as the layers keep images."""
    return X.transpose(1, 2, 3, 0).flags.c_contiguous


def im2col(X, k: int, s: int, p: int, compile):
    """``core.conv.im2col(X, k, s, p)``, (k*k*C, H_out*W_out*B), by the loop that
    ``compile`` (``numba_jit.compiled``) gives; None without one."""
    if not isinstance(X, np.ndarray) or not batch_innermost(X):
        return None
    loop = compile(im2col_loop)
    if loop is None:
        return None
    B, C, H, W = X.shape
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    cols = np.empty((k, k, C, Ho, Wo, B), dtype=X.dtype)
    loop(X.transpose(1, 2, 3, 0), k, s, p, cols)  # X's memory, (C, H, W, B)
    return cols.reshape(k * k * C, Ho * Wo * B)


def col2im(cols, shape, k: int, s: int, p: int, compile):
    """``core.conv.col2im(cols, shape, k, s, p)``, (B, C, H, W), by the loop that ``compile``
    gives; None without one. ``cols`` comes as (k, k, C, H_out, W_out, B)."""
    loop = compile(col2im_loop) if isinstance(cols, np.ndarray) else None
    if loop is None:
        return None
    B, C, H, W = shape
    out = np.empty((C, H, W, B), dtype=cols.dtype)
    loop(cols, k, s, p, out)
    return out.transpose(3, 0, 1, 2)  # (B, C, H, W), a view


def im2col_loop(X, k, s, p, cols):
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


def col2im_loop(cols, k, s, p, out):
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
