"""Layers with a hand-written forward and backward, side by side.

The contract (as in numpy-ml) for every layer:

* ``forward(X)`` computes the output and caches exactly what ``backward`` needs;
* ``backward(dY)`` takes dL/dY, returns dL/dX, and *assigns* (never adds) the
  gradients of the layer's own parameters into ``layer.grads``.

Shapes use ``B`` for the batch size, ``n_in``/``n_out`` for feature sizes.

The networks built from these (``networks.py``) use the activations of
``tinyvae/fast/activations.py``, which compute the same numbers writing over their input.
"""

from __future__ import annotations

import numpy as np

from tinyvae.core.arrays import array_module
from tinyvae.core.initialization import initial_weights


class Linear:
    r"""Affine map :math:`Y = X W + b`.

    Parameters ``W (n_in, n_out)`` and ``b (n_out,)`` live in ``self.params``; their
    gradients in ``self.grads`` (same keys, same shapes). ``W`` is (n_in, n_out), the
    transpose of PyTorch's ``weight``, so that a batch of rows multiplies it as ``X @ W``.

    ``init`` ("pytorch", "he" or "glorot") draws the initial weights, once, from the host
    generator ``rng``, with fan_in = n_in and fan_out = n_out (``initialization.py``).

    Backward, by the chain rule:

    .. math::
        \frac{\partial L}{\partial W} = X^\top \frac{\partial L}{\partial Y}, \quad
        \frac{\partial L}{\partial b} = \sum_{\text{batch}} \frac{\partial L}{\partial Y}, \quad
        \frac{\partial L}{\partial X} = \frac{\partial L}{\partial Y} W^\top
    """

    def __init__(self, n_in: int, n_out: int, init: str = "pytorch", rng=None, dtype="float32"):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params = initial_weights(init, (n_in, n_out), n_in, n_out, rng, dtype)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.X = self.ones = None

    def forward(self, X):
        """X (B, n_in) -> Y (B, n_out); caches X for dW."""
        self.X = X
        Y = X @ self.params["W"]  # (B, n_out)
        Y += self.params["b"]  # in place: no second (B, n_out) temporary
        return Y

    def backward(self, dY, need_input_grad: bool = True):
        """dY (B, n_out) -> dX (B, n_in), or None when the input needs no gradient."""
        xp = array_module(dY)
        xp.matmul(self.X.T, dY, out=self.grads["W"])  # (n_in, n_out), written in place
        # (n_out,): the sum over the batch as ones (B,) @ dY, one BLAS call that is several
        # times faster than dY.sum(axis=0) on a (128, 784) float32 array.
        xp.matmul(self._ones(xp, len(dY)), dY, out=self.grads["b"])
        return dY @ self.params["W"].T if need_input_grad else None

    def _ones(self, xp, n):
        """A vector of n ones on dY's device, kept from one call to the next."""
        if self.ones is None or len(self.ones) != n or array_module(self.ones) is not xp:
            self.ones = xp.ones(n, dtype=self.params["b"].dtype)
        return self.ones


class ReLU:
    r""":math:`y = \max(x, 0)`, so :math:`\partial y / \partial x = [x > 0]`."""

    params: dict = {}
    grads: dict = {}

    def forward(self, X):
        self.Y = array_module(X).maximum(X, 0)
        return self.Y

    def backward(self, dY):
        return dY * (self.Y > 0)


class LeakyReLU:
    r""":math:`y = x` for :math:`x > 0`, else :math:`\alpha x`; the slope is 1 or :math:`\alpha`."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, alpha: float = 0.01):
        self.alpha = alpha

    def forward(self, X):
        self.slope = slope(X, self.alpha)  # (B, n): 1 or alpha
        return X * self.slope

    def backward(self, dY):
        return dY * self.slope


def slope(X, alpha):
    """1 where x > 0, else alpha, as a float array like X: multiplying by it is much faster
    than ``where`` with a mask that flips at random from one element to the next."""
    s = (X > 0).astype(X.dtype)  # 1 or 0 ...
    s *= 1 - alpha
    s += alpha  # ... now 1 or alpha
    return s


class Tanh:
    r""":math:`y = \tanh x`, so :math:`\partial y / \partial x = 1 - y^2`."""

    params: dict = {}
    grads: dict = {}

    def forward(self, X):
        self.Y = array_module(X).tanh(X)
        return self.Y

    def backward(self, dY):
        return dY * (1 - self.Y * self.Y)


class Sigmoid:
    r""":math:`y = \sigma(x) = 1 / (1 + e^{-x})`, so :math:`\partial y / \partial x = y (1 - y)`."""

    params: dict = {}
    grads: dict = {}

    def forward(self, X):
        self.Y = sigmoid(X)
        return self.Y

    def backward(self, dY):
        return dY * self.Y * (1 - self.Y)


def sigmoid(x):
    r"""Numerically stable :math:`\sigma(x) = \tfrac12 (1 + \tanh(x/2))`: no overflow for any x."""
    return 0.5 * (array_module(x).tanh(0.5 * x) + 1)


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}
