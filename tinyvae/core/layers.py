"""Layers with a hand-written forward and backward, side by side.

The contract (as in numpy-ml) for every layer:

* ``forward(X)`` computes the output and caches exactly what ``backward`` needs;
* ``backward(dY)`` takes dL/dY, returns dL/dX, and *assigns* (never adds) the
  gradients of the layer's own parameters into ``layer.grads``.

Shapes use ``B`` for the batch size, ``n_in``/``n_out`` for feature sizes.

Ownership rule for speed: an activation built with ``inplace=True`` writes its output over
its input X, and its dX over the incoming dY, instead of allocating new arrays. That is
safe only when nobody else reads X or dY afterwards. :class:`MLP` builds its activations
that way because there both arrays are fresh outputs of the neighbouring ``Linear``
(``X @ W + b`` forward, ``dY @ W.T`` backward). Built alone, an activation never
overwrites what it is given.
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

    ``init`` draws the initial weights, once, from the host generator ``rng`` (so that
    every backend starts from the same numbers):

    * ``"pytorch"``: W and b uniform in :math:`\pm 1/\sqrt{n_{in}}`, as ``torch.nn.Linear``;
    * ``"he"``: W normal with variance :math:`2 / n_{in}`, b = 0 (for ReLU layers);
    * ``"glorot"``: W uniform in :math:`\pm\sqrt{6 / (n_{in} + n_{out})}`, b = 0.

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

    def __init__(self, inplace: bool = False):
        self.inplace = inplace  # overwrite X and dY (see the module docstring)

    def forward(self, X):
        self.Y = array_module(X).maximum(X, 0, out=X if self.inplace else None)
        return self.Y

    def backward(self, dY):
        xp = array_module(dY)
        return xp.multiply(dY, self.Y > 0, out=dY if self.inplace else None)


class LeakyReLU:
    r""":math:`y = x` for :math:`x > 0`, else :math:`\alpha x`; the slope is 1 or :math:`\alpha`."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, alpha: float = 0.01, inplace: bool = False):
        self.alpha, self.inplace = alpha, inplace

    def forward(self, X):
        # The slope (1 or alpha) as a float array: multiplying by it is much faster than
        # ``where`` with a mask that flips at random from one element to the next.
        self.slope = (X > 0).astype(X.dtype)  # (B, n): 1 where x > 0, else 0 ...
        self.slope *= 1 - self.alpha
        self.slope += self.alpha  # ... now 1 or alpha
        return array_module(X).multiply(X, self.slope, out=X if self.inplace else None)

    def backward(self, dY):
        return array_module(dY).multiply(dY, self.slope, out=dY if self.inplace else None)


class Tanh:
    r""":math:`y = \tanh x`, so :math:`\partial y / \partial x = 1 - y^2`."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, inplace: bool = False):
        self.inplace = inplace  # overwrite X (see the module docstring)

    def forward(self, X):
        self.Y = array_module(X).tanh(X, out=X if self.inplace else None)
        return self.Y

    def backward(self, dY):
        return dY * (1 - self.Y * self.Y)


class Sigmoid:
    r""":math:`y = \sigma(x) = 1 / (1 + e^{-x})`, so :math:`\partial y / \partial x = y (1 - y)`."""

    params: dict = {}
    grads: dict = {}

    def __init__(self, inplace: bool = False):
        self.inplace = inplace  # overwrite X (see the module docstring)

    def forward(self, X):
        self.Y = sigmoid(X, out=X if self.inplace else None)
        return self.Y

    def backward(self, dY):
        return dY * self.Y * (1 - self.Y)


def sigmoid(x, out=None):
    r"""Numerically stable :math:`\sigma(x) = \tfrac12 (1 + \tanh(x/2))`: no overflow for any x.

    ``out``: an array to write the result into (it may be ``x`` itself)."""
    xp = array_module(x)
    if out is None:
        return 0.5 * (xp.tanh(0.5 * x) + 1)
    xp.multiply(x, 0.5, out=out)  # the same formula, each step written into ``out``
    xp.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}
INITS = ("pytorch", "he")  # an MLP's: "he" is He for hidden layers and Glorot for the last


class Network:
    """What every network of layers shares: ``self.layers`` are its layers with parameters,
    in order, and each parameter is named ``prefix.i.W`` / ``prefix.i.b`` after its layer i."""

    def named_params(self, prefix: str):
        """``{"prefix.0.W": W, "prefix.0.b": b, "prefix.1.W": ...}``: layers with weights numbered."""
        return {f"{prefix}.{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.params.items()}

    def named_grads(self, prefix: str):
        return {f"{prefix}.{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.grads.items()}

    def bind(self, prefix: str, flat):
        """Point every layer's params and grads at their views in a FlatParameters buffer."""
        for i, layer in enumerate(self.layers):
            for k in layer.params:
                layer.params[k] = flat.params[f"{prefix}.{i}.{k}"]
                layer.grads[k] = flat.grads[f"{prefix}.{i}.{k}"]


class MLP(Network):
    """Linear layers with an activation between them (none after the last).

    ``MLP([784, 400, 40], "relu")`` is Linear(784, 400) -> ReLU -> Linear(400, 40).
    Deeper networks are one argument away: ``MLP([784, 512, 256, 40], "tanh")``.

    ``init``: "pytorch" draws every Linear as ``torch.nn.Linear`` does; "he" draws the
    hidden layers with He (Glorot for tanh and sigmoid) and the last one with Glorot.
    ``self.layers`` holds the Linear layers only, so ``layers[i]`` is the one whose
    parameters are named ``prefix.i.W`` and ``prefix.i.b``.
    """

    def __init__(self, sizes, activation: str = "relu", rng=None, dtype="float32", init="pytorch"):
        if activation not in ACTIVATIONS:
            choices = ", ".join(ACTIVATIONS)
            raise ValueError(f"unknown activation {activation!r}: choose one of {choices}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
        hidden_init = "he" if activation in ("relu", "leaky_relu") else "glorot"
        rng = rng if rng is not None else np.random.default_rng(0)
        self.layers, self.activations = [], []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            layer_init = init if init == "pytorch" else "glorot" if last else hidden_init
            self.layers.append(Linear(n_in, n_out, layer_init, rng, dtype))
            if not last:  # in place: X and dY are always a Linear's fresh output here
                self.activations.append(ACTIVATIONS[activation](inplace=True))

    def forward(self, X):
        """X (B, sizes[0]) -> (B, sizes[-1]): Linear, activation, Linear, ..., Linear."""
        X = self.layers[0].forward(X)
        for activation, layer in zip(self.activations, self.layers[1:]):
            X = layer.forward(activation.forward(X))
        return X

    def backward(self, dY, need_input_grad: bool = True):
        """Backpropagate dY through every layer, last to first; returns dX (or None)."""
        for layer, activation in zip(self.layers[:0:-1], self.activations[::-1]):
            dY = activation.backward(layer.backward(dY))
        return self.layers[0].backward(dY, need_input_grad)
