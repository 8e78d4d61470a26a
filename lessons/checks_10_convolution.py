"""Checkers for the exercises of lesson 10 (convolution): ``check_<exercise>(your_function)``.

They work like those of the other lessons, with one difference: each answer here is a
gradient (or an adjoint, which is the same thing), so each checker runs ``tinyvae``'s own
gradient check, ``tinyvae.core.gradcheck.check_gradient``, on the student's function:
central finite differences of a scalar built from the forward pass, in float64, element by
element. It prints one line through ``lesson_utils.run_check``: not attempted yet, not right
yet (naming the usual mistake where it is recognised), or correct. Solutions call the
checkers with ``strict=True``, which raises unless the answer passes.

The lesson's single-channel convention: an image ``x`` (H, W), a kernel ``w`` (k, k), stride
s, no padding, and

    y[i, j] = sum_{u, v} x[s i + u, s j + v] w[u, v],    (H - k) // s + 1 rows of y
"""

from __future__ import annotations

import numpy as np
from lesson_utils import Wrong, exercise, expect_array, known_mistakes, run_check, seeded

from tinyvae.core import gradcheck

TOLERANCE = 1e-6  # relative error of a right float64 gradient is about 1e-10


def out_size(n, k, s):
    return (n - k) // s + 1


def im2col_reference(x, k, s):
    """x (H, W) -> (k*k, Ho*Wo): column (i, j) is the window under output pixel (i, j)."""
    Ho, Wo = out_size(x.shape[0], k, s), out_size(x.shape[1], k, s)
    cols = np.empty((k, k, Ho, Wo))
    for u in range(k):
        for v in range(k):
            cols[u, v] = x[u : u + s * Ho : s, v : v + s * Wo : s]
    return cols.reshape(k * k, Ho * Wo)


def conv_reference(x, w, s):
    """y (Ho, Wo) = the convolution (a correlation, as in deep learning) of x with w."""
    k = w.shape[0]
    Ho, Wo = out_size(x.shape[0], k, s), out_size(x.shape[1], k, s)
    return (w.reshape(1, -1) @ im2col_reference(x, k, s)).reshape(Ho, Wo)


def gradient_error(forward, array, answer):
    """tinyvae's gradient check: relative error between ``answer`` and central differences
    of the scalar ``forward(array)`` (``array`` perturbed in place, then restored)."""
    return gradcheck.check_gradient(lambda: forward(array), array, answer)


CASES = [((6, 7), 3, 1), ((7, 8), 4, 2), ((9, 9), 3, 3)]  # (H, W), k, s: overlaps, touches, gaps


@exercise(10, "col2im")
def check_col2im(fn, strict=False):
    """``fn(cols, shape, k, s) -> (H, W)``: the adjoint of im2col, the gradient of
    ``x -> sum(im2col(x) * cols)``."""

    def test():
        for n, case in enumerate(CASES):
            _col2im_case(fn, *case, seeded(40 + n))

    run_check("col2im", test, strict)


def _col2im_case(fn, shape, k, s, rng):
    x = rng.standard_normal(shape)
    G = rng.standard_normal(im2col_reference(x, k, s).shape)
    got = expect_array(fn(G.copy(), shape, k, s), shape, f"col2im for {shape}, k={k}, s={s}")
    error = gradient_error(lambda a: (im2col_reference(a, k, s) * G).sum(), x, got)
    if error > TOLERANCE:
        if _assigns(fn, x, G.shape, k, s):
            raise Wrong(
                "a pixel that several windows share must receive the sum of their entries: "
                "add (+=) into the image, do not assign (=)."
            )
        raise Wrong(
            f"it is not the gradient of sum(im2col(x) * cols) for {shape}, k={k}, s={s} "
            f"(relative error {error:.2g} against finite differences): each entry "
            "cols[u*k + v, i*Wo + j] belongs to pixel (s*i + u, s*j + v)."
        )


def _assigns(fn, x, cols_shape, k, s):
    """True when ``fn``, given cols of ones, returns 1 on every pixel a window covers, where
    the right answer counts the windows that share the pixel (the gradient of
    sum(im2col(x)), by differences: exact with h = 1, the function being linear)."""
    ones = np.asarray(fn(np.ones(cols_shape), x.shape, k, s), dtype=np.float64)
    counts = gradcheck.numerical_gradient(lambda: im2col_reference(x, k, s).sum(), x, h=1.0)
    return ones.shape == x.shape and counts.max() > 1 and np.allclose(ones, np.minimum(counts, 1))


@exercise(10, "kernel_gradient")
def check_kernel_gradient(fn, strict=False):
    """``fn(x, dy, k, s) -> (k, k)``: the gradient of ``sum(conv(x, w, s) * dy)`` with
    respect to the kernel w."""

    def test():
        for n, case in enumerate(CASES):
            _kernel_gradient_case(fn, *case, seeded(50 + n))

    run_check("kernel_gradient", test, strict)


def _kernel_gradient_case(fn, shape, k, s, rng):
    x, w = rng.standard_normal(shape), rng.standard_normal((k, k))
    dy = rng.standard_normal((out_size(shape[0], k, s), out_size(shape[1], k, s)))
    got = expect_array(fn(x.copy(), dy.copy(), k, s), (k, k), f"dW for k={k}, s={s}")
    error = gradient_error(lambda a: (conv_reference(x, a, s) * dy).sum(), w, got)
    if error > TOLERANCE:
        right = (im2col_reference(x, k, s) @ dy.reshape(-1)).reshape(k, k)
        no_stride = np.array([[(x[u : u + dy.shape[0], v : v + dy.shape[1]] * dy).sum()
                               for v in range(k)] for u in range(k)])  # fmt: skip
        known_mistakes(got, [
            (right[::-1, ::-1], "the kernel's gradient is a correlation of x with dy, not a "
             "convolution: dW[u, v] = sum over (i, j) of x[s*i + u, s*j + v] * dy[i, j], "
             "with no flip."),
            (no_stride, f"with stride {s}, output pixel (i, j) read x from row s*i + u, not "
             "i + u: step through x by s."),
        ])  # fmt: skip
        raise Wrong(
            f"dW is not the gradient of sum(conv(x, w) * dy) for k={k}, s={s} (relative "
            f"error {error:.2g} against finite differences)."
        )


@exercise(10, "conv_transpose")
def check_conv_transpose(fn, strict=False):
    """``fn(y, w, s, shape) -> shape``: the transposed convolution, the gradient of
    ``x -> sum(conv(x, w, s) * y)`` with respect to x."""

    def test():
        for n, case in enumerate(CASES):
            _conv_transpose_case(fn, *case, seeded(60 + n))

    run_check("conv_transpose", test, strict)


def _conv_transpose_case(fn, shape, k, s, rng):
    x, w = rng.standard_normal(shape), rng.standard_normal((k, k))
    y = rng.standard_normal((out_size(shape[0], k, s), out_size(shape[1], k, s)))
    got = fn(y.copy(), w.copy(), s, shape)
    got = expect_array(got, shape, f"the transposed convolution to {shape}, s={s}")
    error = gradient_error(lambda a: (conv_reference(a, w, s) * y).sum(), x, got)
    if error > TOLERANCE:
        flipped = lambda: (conv_reference(x, w[::-1, ::-1], s) * y).sum()  # linear in x: h = 1
        known_mistakes(got, [(gradcheck.numerical_gradient(flipped, x, h=1.0), (
            "in this indexing nothing is flipped: input pixel (i, j) adds y[i, j] * w[u, v] "
            "to output (s*i + u, s*j + v), with the same w[u, v] that read it in the "
            "convolution."
        ))])  # fmt: skip
        raise Wrong(
            f"it is not the gradient of sum(conv(x, w) * y) with respect to x for {shape}, "
            f"k={k}, s={s} (relative error {error:.2g} against finite differences)."
        )
