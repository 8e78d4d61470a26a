"""Solutions to the exercises of lesson 10 (convolution). Run: python course/solutions/10_convolution.py"""

import numpy as np

WRITTEN = [  # model answers of the written questions, in the lesson's order (graded by hand)
    "Each dW[u, v] sums x[s i + u, s j + v] dy[i, j] over the outputs (i, j): the window of x "
    "is read at the same offset (u, v) as the kernel, without flipping, which is a correlation "
    "of x with dy (with stride s). A convolution would read x at (s i - u, s j - v).",
    "No flip: input pixel (i, j) of y adds y[i, j] w[u, v] to output pixel (s i + u, s j + v), "
    "the same w[u, v] that read that pixel in the forward pass. The adjoint undoes the "
    "indexing of the forward correlation, so the kernel keeps its orientation; a flipped "
    "kernel appears only when the operation is written as a full convolution of y.",
]


def col2im_1ch(cols, shape, k, s):
    """cols (k*k, Ho*Wo) -> (H, W): every entry added back to the pixel im2col copied it from."""
    Ho, Wo = (shape[0] - k) // s + 1, (shape[1] - k) // s + 1
    cols = cols.reshape(k, k, Ho, Wo)
    x = np.zeros(shape)
    for u in range(k):
        for v in range(k):  # entry (u, v) of window (i, j) came from pixel (s i + u, s j + v)
            x[u : u + s * Ho : s, v : v + s * Wo : s] += cols[u, v]
    return x


def kernel_gradient(x, dy, k, s):
    """dW[u, v] = sum_{i, j} x[s i + u, s j + v] dy[i, j]: a correlation of x with dy."""
    Ho, Wo = dy.shape
    dW = np.empty((k, k))
    for u in range(k):
        for v in range(k):
            dW[u, v] = (x[u : u + s * Ho : s, v : v + s * Wo : s] * dy).sum()
    return dW


def conv_transpose_1ch(y, w, s, shape):
    """Each y[i, j] spreads over its window: out[s i + u, s j + v] += y[i, j] w[u, v]."""
    k, out = w.shape[0], np.zeros(shape)
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            out[s * i : s * i + k, s * j : s * j + k] += y[i, j] * w
    return out


def check_all():
    import _path  # noqa: F401  (makes lessons/ importable)
    import checks_10_convolution as C

    C.check_col2im(col2im_1ch, strict=True)
    C.check_kernel_gradient(kernel_gradient, strict=True)
    C.check_conv_transpose(conv_transpose_1ch, strict=True)


if __name__ == "__main__":
    check_all()
