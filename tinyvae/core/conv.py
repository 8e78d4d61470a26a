r"""Convolution and transposed convolution, forward and backward side by side, as matrix products.

Images are NCHW: X (B, C, H, W). A k x k convolution with stride s and padding p reads, for
each output pixel (i, j), the k x k window of the zero-padded input whose top-left corner is
(s i, s j); along each side it gives ``(H + 2p - k) // s + 1`` pixels (:func:`output_size`).

**im2col** copies every window into one column of a matrix, so that the convolution is one
matrix product, which BLAS does fast:

    cols = im2col(X)         (k*k*C, H_out*W_out*B)   one column per output pixel
    Y    = W.T @ cols + b    (F, H_out*W_out*B)        W: (k*k*C, F), inputs first, as Linear's

im2col is linear in X: a copy, of some pixels several times (windows overlap when s < k)
and of the padding's zeros. Its **adjoint** ``col2im``, the transposed matrix, *adds* each
entry of cols back into the pixel it was copied from, so that
:math:`\langle \mathrm{im2col}(X), G \rangle = \langle X, \mathrm{col2im}(G) \rangle` for all X
and G. By the chain rule a gradient goes back through im2col as col2im of itself: that is
the input gradient of a convolution. **Transposed convolution** is the adjoint of
convolution, that input gradient used as a layer: ``col2im(W @ X)``. It maps a small image
to a larger one (7 x 7 -> 14 x 14 for k = 4, s = 2, p = 1), which is what a decoder needs.

Memory: the layers index their arrays (B, C, H, W) but keep them as (C, H, W, B) in memory,
the batch innermost (``Y`` is a transposed view). Then every window slice that im2col and
col2im copy is a run of B contiguous numbers instead of a few scattered ones, which makes
them several times faster; the matrix products read the same memory as (C, H*W*B) with no
copy. Indexing does not see the difference.

Speed: with Numba installed, im2col and col2im run as compiled loops that visit each entry
once (``tinyvae/fast/conv.py``), instead of the k*k passes over memory below; the result is
the same to the bit (``tests/test_perf_paths.py``). The NumPy code here is what they compute.
"""

from __future__ import annotations

import numpy as np

from tinyvae.core.arrays import array_module
from tinyvae.core.initialization import initial_weights
from tinyvae.fast import conv as fast_conv
from tinyvae.fast import numba_jit


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Pixels along one side after a convolution: ``(size + 2 padding - kernel) // stride + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(X, kernel: int, stride: int, padding: int):
    """X (B, C, H, W) -> cols (k*k*C, H_out*W_out*B): the column of output pixel (i, j) of
    image b holds its window, rows in (row u in the window, column v, channel c) order.

    One strided copy per window position (u, v): cols[u, v, c, i, j, b] is the zero-padded
    pixel (s i + u, s j + v) of channel c of image b. :func:`col2im` runs the same loop,
    adding in the other direction."""
    xp, (B, C, H, W), k, s, p = array_module(X), X.shape, kernel, stride, padding
    Ho, Wo = output_size(H, k, s, p), output_size(W, k, s, p)
    fast = fast_conv.im2col(X, k, s, p, numba_jit.compiled)  # compiled copies, or None
    if fast is not None:
        return fast
    cols = xp.empty((k, k, C, Ho, Wo, B), dtype=X.dtype)
    padded = xp.zeros((C, H + 2 * p, W + 2 * p, B), dtype=X.dtype)  # the batch innermost
    padded[:, p : p + H, p : p + W, :] = X.transpose(1, 2, 3, 0)
    for u in range(k):
        for v in range(k):  # every output pixel's (u, v) entry: rows u, u+s, ... of padded
            cols[u, v] = padded[:, u : u + s * Ho : s, v : v + s * Wo : s, :]
    return cols.reshape(k * k * C, Ho * Wo * B)


def col2im(cols, shape, kernel: int, stride: int, padding: int):
    """The adjoint of :func:`im2col`: cols (k*k*C, H_out*W_out*B) -> (B, C, H, W) for
    ``shape`` = (B, C, H, W). Each entry is added to the pixel that im2col copied it from,
    so a pixel in several windows receives their sum; entries on the padding are dropped."""
    xp, (B, C, H, W), k, s, p = array_module(cols), shape, kernel, stride, padding
    Ho, Wo = output_size(H, k, s, p), output_size(W, k, s, p)
    cols = cols.reshape(k, k, C, Ho, Wo, B)
    fast = fast_conv.col2im(cols, shape, k, s, p, numba_jit.compiled)  # or None
    if fast is not None:
        return fast
    padded = xp.zeros((C, H + 2 * p, W + 2 * p, B), dtype=cols.dtype)
    for u in range(k):
        for v in range(k):
            padded[:, u : u + s * Ho : s, v : v + s * Wo : s, :] += cols[u, v]
    # one (C, H, W, B) block, as the compiled loop gives: sums over it then run in one order
    out = padded[:, p : p + H, p : p + W, :].copy() if p else padded  # p = 0: it is one already
    return out.transpose(3, 0, 1, 2)  # (B, C, H, W), a view


def as_matrix(X):
    """(B, C, H, W) -> (C, H*W*B): a view when X is (C, H, W, B) in memory, else a copy."""
    return X.transpose(1, 2, 3, 0).reshape(X.shape[1], -1)


def as_images(M, B, H, W):
    """(C, H*W*B) -> (B, C, H, W), a view: the inverse of :func:`as_matrix`."""
    return M.reshape(M.shape[0], H, W, B).transpose(3, 0, 1, 2)


def sum_over_pixels(M, out):
    """M (F, N) -> its row sums (F,), written into ``out``: the bias gradient, as one BLAS
    product with a vector of ones (several times faster than ``M.sum(axis=1)``)."""
    xp = array_module(M)
    return xp.matmul(M, xp.ones(M.shape[1], dtype=M.dtype), out=out)


class Conv2d:
    r"""Convolution: X (B, C, H, W) -> Y (B, F, H_out, W_out), ``F = out_channels``.

    ``W`` is (k, k, C, F): ``W.reshape(k*k*C, F)`` is the matrix, inputs first as in
    ``Linear``; ``b`` is (F,). ``init`` as :func:`initial_weights`, with fan_in = k k C (the
    numbers one output reads) and fan_out = k k F; "pytorch" is ``torch.nn.Conv2d``'s.

    With cols = im2col(X) (k k C, N) and dY as a matrix (F, N), N = H_out W_out B:

    .. math::
        Y = W^\top \mathrm{cols} + b, \quad
        \frac{\partial L}{\partial W} = \mathrm{cols}\, \frac{\partial L}{\partial Y}^{\!\top}, \quad
        \frac{\partial L}{\partial b} = \sum_{\text{pixels}} \frac{\partial L}{\partial Y}, \quad
        \frac{\partial L}{\partial X} = \mathrm{col2im}\Big(W \frac{\partial L}{\partial Y}\Big)

    dW sums, over the output pixels, each one's gradient times the window it read: the
    kernel's gradient is the *correlation* of the input with dY. dX spreads each output's
    gradient back over its window (a convolution of dY with the flipped kernel, in signal
    processing's words; col2im does it without flipping anything).
    """

    def __init__(self, in_channels, out_channels, kernel=4, stride=2, padding=1,
                 init="pytorch", rng=None, dtype="float32"):  # fmt: skip
        self.kernel, self.stride, self.padding = int(kernel), int(stride), int(padding)
        k, C, F = self.kernel, int(in_channels), int(out_channels)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params = initial_weights(init, (k, k, C, F), k * k * C, k * k * F, rng, dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.cols = self.X_shape = None

    def forward(self, X):
        """X (B, C, H, W) -> Y (B, F, H_out, W_out); caches im2col(X) for dW."""
        (B, _, H, W), k, s, p = X.shape, self.kernel, self.stride, self.padding
        self.X_shape, self.cols = X.shape, im2col(X, k, s, p)  # (k*k*C, N)
        F = self.params["W"].shape[-1]
        Y = self.params["W"].reshape(-1, F).T @ self.cols  # (F, N)
        Y += self.params["b"][:, None]
        return as_images(Y, B, output_size(H, k, s, p), output_size(W, k, s, p))

    def backward(self, dY, need_input_grad: bool = True):
        """dY (B, F, H_out, W_out) -> dX (B, C, H, W), or None when the input needs none."""
        xp, F = array_module(dY), dY.shape[1]
        dY = as_matrix(dY)  # (F, N)
        xp.matmul(self.cols, dY.T, out=self.grads["W"].reshape(-1, F))  # (k*k*C, F)
        sum_over_pixels(dY, out=self.grads["b"])  # (F,)
        if not need_input_grad:
            return None
        d_cols = self.params["W"].reshape(-1, F) @ dY  # (k*k*C, N)
        return col2im(d_cols, self.X_shape, self.kernel, self.stride, self.padding)


class ConvTranspose2d:
    r"""Transposed convolution: X (B, C, H, W) -> Y (B, F, H_out, W_out), the adjoint of a
    convolution from F channels to C, so ``H_out = (H - 1) s - 2p + k + output_padding``:
    the size that a k x k convolution with stride s and padding p maps back to H. When
    several sizes do, ``output_padding`` (0 to s - 1, or a pair for rows and columns) picks
    one, as in PyTorch.

    ``W`` is (C, k, k, F): ``W.reshape(C, k*k*F)`` is the matrix, inputs first; ``b`` is
    (F,). For "pytorch" init fan_in = k k F, as PyTorch computes it for ``ConvTranspose2d``
    (from its weight's second axis), and fan_out = k k C.

    It is :class:`Conv2d`'s input gradient used as a layer, so its own input gradient is a
    convolution. With X as a matrix (C, N), N = H W B, and cols = im2col(dY) (k k F, N):

    .. math::
        Y = \mathrm{col2im}(W^\top X) + b, \quad
        \frac{\partial L}{\partial W} = X\, \mathrm{cols}^\top, \quad
        \frac{\partial L}{\partial b} = \sum_{\text{pixels}} \frac{\partial L}{\partial Y}, \quad
        \frac{\partial L}{\partial X} = W\, \mathrm{cols}

    With the same numbers, ``ConvTranspose2d(F, C)`` holding ``W.transpose(3, 0, 1, 2)``
    computes what ``Conv2d(C, F).backward`` holding ``W`` returns as dX.
    """

    def __init__(self, in_channels, out_channels, kernel=4, stride=2, padding=1,
                 output_padding=0, init="pytorch", rng=None, dtype="float32"):  # fmt: skip
        self.kernel, self.stride, self.padding = int(kernel), int(stride), int(padding)
        pair = (
            output_padding if isinstance(output_padding, (tuple, list)) else (output_padding,) * 2
        )
        self.output_padding = tuple(int(n) for n in pair)  # (rows, columns)
        if not all(0 <= n < self.stride for n in self.output_padding):
            raise ValueError(f"output_padding must be 0 to stride - 1, got {output_padding}")
        k, C, F = self.kernel, int(in_channels), int(out_channels)
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params = initial_weights(init, (C, k, k, F), k * k * F, k * k * C, rng, dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.X = None

    def output_shape(self, input_shape):
        """(B, C, H, W) -> (B, F, H_out, W_out)."""
        (B, _, H, W), F = input_shape, self.params["W"].shape[-1]
        k, s, p, (extra_h, extra_w) = self.kernel, self.stride, self.padding, self.output_padding
        return B, F, (H - 1) * s - 2 * p + k + extra_h, (W - 1) * s - 2 * p + k + extra_w

    def forward(self, X):
        """X (B, C, H, W) -> Y (B, F, H_out, W_out); caches X as a matrix (C, N) for dW."""
        self.X, C = as_matrix(X), X.shape[1]  # (C, N)
        cols = self.params["W"].reshape(C, -1).T @ self.X  # (k*k*F, N): each pixel's window
        Y = col2im(cols, self.output_shape(X.shape), self.kernel, self.stride, self.padding)
        Y += self.params["b"][:, None, None]
        return Y

    def backward(self, dY, need_input_grad: bool = True):
        """dY (B, F, H_out, W_out) -> dX (B, C, H, W), or None when the input needs none."""
        xp, C, (B, _, Ho, Wo) = array_module(dY), self.X.shape[0], dY.shape
        k, s, p = self.kernel, self.stride, self.padding
        cols = im2col(dY, k, s, p)  # (k*k*F, N)
        xp.matmul(self.X, cols.T, out=self.grads["W"].reshape(C, -1))  # (C, k*k*F)
        sum_over_pixels(as_matrix(dY), out=self.grads["b"])  # (F,)
        if not need_input_grad:
            return None
        dX = self.params["W"].reshape(C, -1) @ cols  # (C, N)
        return as_images(dX, B, output_size(Ho, k, s, p), output_size(Wo, k, s, p))


def same_layout(dY, X):
    """dY, reshaped to X's shape, in a new array laid out in memory as X is (NumPy and CuPy's
    ``empty_like`` keep the order of X's strides): the activation before a reshape then
    multiplies two arrays that run in the same order, several times faster than across."""
    out = array_module(dY).empty_like(X)
    out[...] = dY.reshape(X.shape)
    return out


class Flatten:
    """(B, C, H, W) -> (B, C*H*W) in (channel, row, column) order; backward reshapes back."""

    params: dict = {}
    grads: dict = {}

    def forward(self, X):
        self.X = X  # for its shape and memory layout only
        return X.reshape(X.shape[0], -1)

    def backward(self, dY):
        return same_layout(dY, self.X)


class Reshape:
    """(B, n) -> (B, *shape), e.g. (B, 3136) -> (B, 64, 7, 7); backward flattens back."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, X):
        self.X = X  # for its shape and memory layout only
        return X.reshape(X.shape[0], *self.shape)

    def backward(self, dY):
        return same_layout(dY, self.X)
