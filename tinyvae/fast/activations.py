"""The activations of ``core/layers.py``, writing their output over their input.

Each class computes what the plain one of the same name computes, to the bit
(``tests/test_perf_paths.py``), but writes Y over X in ``forward`` and dX over dY in
``backward`` (where it can), instead of allocating new arrays. That is safe only when
nobody else reads X or dY afterwards: the networks (``core/networks.py``) use these between
two layers with parameters, whose ``forward`` and ``backward`` give fresh arrays each time
(``X @ W + b`` forward, ``dY @ W.T`` backward). Built alone, use the plain ones. (They
import only ``arrays.py``, to stay low in the import levels ``tests/test_layering.py``
counts.)
"""

from __future__ import annotations

from tinyvae.core.arrays import array_module


class ReLU:
    params: dict = {}
    grads: dict = {}

    def forward(self, X):
        self.Y = array_module(X).maximum(X, 0, out=X)
        return self.Y

    def backward(self, dY):
        return array_module(dY).multiply(dY, self.Y > 0, out=dY)


class LeakyReLU:
    params: dict = {}
    grads: dict = {}

    def __init__(self, alpha: float = 0.01):
        self.alpha = alpha

    def forward(self, X):
        self.slope = (X > 0).astype(X.dtype)  # layers.slope: 1 or alpha
        self.slope *= 1 - self.alpha
        self.slope += self.alpha
        return array_module(X).multiply(X, self.slope, out=X)

    def backward(self, dY):
        return array_module(dY).multiply(dY, self.slope, out=dY)


class Tanh:
    params: dict = {}
    grads: dict = {}

    def forward(self, X):
        self.Y = array_module(X).tanh(X, out=X)
        return self.Y

    def backward(self, dY):
        return dY * (1 - self.Y * self.Y)


class Sigmoid:
    params: dict = {}
    grads: dict = {}

    def forward(self, X):
        xp = array_module(X)
        self.Y = xp.multiply(X, 0.5, out=X)  # layers.sigmoid, each step written into X
        xp.tanh(self.Y, out=self.Y)
        self.Y += 1
        self.Y *= 0.5
        return self.Y

    def backward(self, dY):
        return dY * self.Y * (1 - self.Y)


IN_PLACE = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}
