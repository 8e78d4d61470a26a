"""Checkers for the exercises of lesson 2, backpropagation.

Each ``check_<exercise>(your_function)`` runs your function on test inputs, compares the
answer with tinyvae or with a reference written here, and prints one line through
``grading.run_check``: not attempted yet, not right yet (naming the usual mistake where it
is recognised), or correct. Solutions call the checkers with ``strict=True``, which raises
unless the answer passes.
"""

from __future__ import annotations

import numpy as np
from lesson_utils import (
    Wrong,
    exercise,
    expect_array,
    expect_close,
    expect_gradient,
    expect_tuple,
    run_check,
    seeded,
)

from tinyvae.core import distributions as dist
from tinyvae.core.layers import sigmoid


@exercise(2, "residual_backward")
def check_residual_backward(fn, strict=False):
    """``fn(X, W, b, dY) -> (dX, dW, db)`` for the residual layer Y = X + tanh(X W + b)."""

    def test():
        rng = seeded(6)
        X, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 3)) * 0.7
        b, dY = rng.standard_normal(3) * 0.5, rng.standard_normal((4, 3))
        out = expect_tuple(fn(X.copy(), W.copy(), b.copy(), dY.copy()), ("dX", "dW", "db"))
        for got, name, shape in zip(out, ("dX", "dW", "db"), (X.shape, W.shape, b.shape)):
            if np.shape(got) != shape:
                raise Wrong(
                    f"{name} has shape {np.shape(got)}, should be {shape}: each gradient has "
                    "the shape of what it is the gradient of."
                )
        dX, dW, db = out

        def loss():  # sum(Y * dY), whose gradient with respect to Y is dY
            return float(((X + np.tanh(X @ W + b)) * dY).sum())

        T = np.tanh(X @ W + b)  # (B, n)
        dA = dY * (1 - T**2)  # (B, n): the gradient at the tanh's input
        expect_gradient(
            dX,
            loss,
            X,
            "dX",
            [
                (
                    "the skip path is missing. X reaches Y twice, directly and through the "
                    "tanh, and the gradients of the two paths add.",
                    dA @ W.T,
                ),
                (
                    "the tanh's derivative is missing on the inner path: multiply dY by "
                    "tanh'(XW + b) before going back through W.",
                    dY + dY @ W.T,
                ),
                ("tanh'(a) = 1 - tanh(a)^2, not 1 - tanh(a).", dY + (dY * (1 - T)) @ W.T),
            ],
        )
        expect_gradient(
            dW,
            loss,
            W,
            "dW",
            [
                ("the tanh's derivative is missing: dW = X^T (dY * tanh'(XW + b)).", X.T @ dY),
                ("tanh'(a) = 1 - tanh(a)^2, not 1 - tanh(a).", X.T @ (dY * (1 - T))),
            ],
        )
        expect_gradient(
            db,
            loss,
            b,
            "db",
            [
                (
                    "db should sum over the batch, not average: b is added to every row.",
                    dA.mean(axis=0),
                ),
                ("the tanh's derivative is missing.", dY.sum(axis=0)),
            ],
        )

    run_check("residual_backward", test, strict)


@exercise(2, "SoftplusLayer")
def check_softplus_layer(cls, strict=False):
    """``cls()`` with ``forward(X)`` = log(1 + e^X) and ``backward(dY)`` = dY * sigmoid(X)."""

    def test():
        rng = seeded(7)
        X = rng.standard_normal((3, 4)) * 3
        X[0, :2] = [800.0, -800.0]  # far out: a naive log(1 + exp(x)) overflows here
        dY = rng.standard_normal((3, 4))
        layer = cls()
        with np.errstate(all="ignore"):
            Y = layer.forward(X.copy())
            dX = layer.backward(dY.copy())
        if np.shape(Y) == X.shape and not np.all(np.isfinite(np.asarray(Y, dtype=np.float64))):
            raise Wrong(
                "forward(X) gives inf or NaN at x = 800 or -800, where e^x overflows: "
                "write log(1 + e^x) as max(x, 0) + log1p(exp(-|x|))."
            )
        Y = expect_array(Y, X.shape, "forward(X)")
        dX = expect_array(dX, X.shape, "backward(dY)")
        expect_close(
            Y,
            dist.softplus(X),
            "forward(X)",
            hint="Write log(1 + e^x) as max(x, 0) + log1p(exp(-|x|)).",
        )
        expect_close(
            dX,
            dY * sigmoid(X),
            "backward(dY)",
            hint="d/dx log(1 + e^x) = e^x / (1 + e^x) = sigmoid(x); multiply by dY.",
        )

    run_check("SoftplusLayer", test, strict)


@exercise(2, "central_difference")
def check_central_difference(fn, strict=False):
    """``fn(f, x, h) -> grad``: central differences of a scalar f, one element at a time."""

    def test():
        x = seeded(8).standard_normal((3, 4))
        saved = x.copy()
        f = lambda v: float(np.sum(np.sin(v) * np.arange(1, 13).reshape(3, 4)))
        got = expect_array(fn(f, x, 1e-3), x.shape, "the gradient")
        if not np.array_equal(x, saved):
            raise Wrong("x was changed by your function: restore each element after perturbing it.")
        want = np.cos(x) * np.arange(1, 13).reshape(3, 4)
        error = np.abs(got - want).max()
        if 1e-5 < error < 1e-1:
            raise Wrong(
                f"the error is {error:.1e}, about what a one-sided difference "
                "(f(x+h) - f(x)) / h gives (error ~ h); the central one, "
                "(f(x+h) - f(x-h)) / 2h, has error ~ h^2 = 1e-6."
            )
        expect_close(got, want, "the gradient", atol=1e-5)

    run_check("central_difference", test, strict)
